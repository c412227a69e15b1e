"""The production configuration: `check --deploy` is clean, gunicorn serves
the app and whitenoise its static files, with DEBUG off."""

import os
import socket
import subprocess
import sys

import pytest
import requests
from django.conf import settings

from tests.waiting import DEADLINE, stop, wait_for_server

pytestmark = pytest.mark.timeout(300)


def production_env(tmp_path):
    return {
        **os.environ,
        "ENV_FILE": str(tmp_path / "no.env"),  # nothing from a developer's .env
        "DEBUG": "false",
        "SECRET_KEY": "a-production-like-secret-key-that-is-long-enough-0123456789-abcdefghij",
        "ALLOWED_HOSTS": "127.0.0.1,sms.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "VIBES_CALLBACK_PASSWORD": "production-callback-password",
    }


def manage(env, *args):
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, cwd=settings.BASE_DIR, capture_output=True, text=True
    )


def test_check_deploy_is_clean_with_debug_off(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_secret_key_only_comes_from_the_environment(tmp_path):
    env = {key: value for key, value in production_env(tmp_path).items() if key != "SECRET_KEY"}
    result = manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_checking_the_migrations_needs_no_secret_key(tmp_path):
    env = {key: value for key, value in production_env(tmp_path).items() if key != "SECRET_KEY"}
    result = manage(env, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_gunicorn_serves_the_app_and_whitenoise_the_static_files(tmp_path):
    env = production_env(tmp_path)
    assert manage(env, "migrate", "-v0").returncode == 0
    assert manage(env, "collectstatic", "--no-input", "-v0").returncode == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "smscampaigns.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
        ],
        env=env,
        cwd=settings.BASE_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # gunicorn listens before its workers have loaded the app: the first
        # answer can take a while on a busy machine.
        wait_for_server(base, process=server)
        # Behind the TLS proxy: X-Forwarded-Proto says the request came over HTTPS.
        https = {"X-Forwarded-Proto": "https"}
        login = requests.get(
            f"{base}/accounts/login/", headers=https, timeout=DEADLINE, allow_redirects=False
        )
        assert login.status_code == 200
        assert "Strict-Transport-Security" in login.headers
        insecure = requests.get(f"{base}/accounts/login/", timeout=DEADLINE, allow_redirects=False)
        assert insecure.status_code == 301 and insecure.headers["Location"].startswith("https://")
        css = requests.get(f"{base}/static/admin/css/base.css", headers=https, timeout=DEADLINE)
        assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]
        assert "max-age" in requests.get(
            f"{base}/static/admin/css/base.css", headers=https, timeout=DEADLINE
        ).headers.get("Cache-Control", "")
    finally:
        stop(server)
