"""Browser tests: Debian's Chromium driven by Playwright, against `live_server`.

One browser for the session's browser tests (the machine is small); each
test gets a fresh context (cookies, storage) and page. A failing test leaves a screenshot
in test-artifacts/ (git-ignored).
"""

import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PASSWORD = "pw-browser-test-1"
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"
# How long an action, a navigation or an expectation may wait for the page to
# get there. Each polls its state; only a page that never gets there waits it
# out, so it can be generous for a loaded machine.
WAIT_MS = 30_000


def chromium_path() -> str:
    return shutil.which("chromium") or "/usr/bin/chromium"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # Keep each phase's report on the test, for the page fixture's teardown.
    setattr(item, f"report_{report.when}", report)
    return report


class Chromium:
    """One Chromium for the session's browser tests, started on first use.

    Playwright's sync API keeps an event loop running in the main thread, and
    Django refuses ORM calls under a running loop: while Chromium runs,
    DJANGO_ALLOW_ASYNC_UNSAFE lets the tests' own (synchronous) ORM calls
    through. Both end as soon as the browser tests are over (see
    pytest_runtest_teardown), so neither the rest of the suite nor the
    processes it starts see the variable. Started again if another browser
    test comes later.
    """

    def __init__(self):
        self._playwright = None
        self._browser = None
        self._saved_env = None

    def get(self):
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._saved_env = os.environ.get(ASYNC_UNSAFE)
            os.environ[ASYNC_UNSAFE] = "true"
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True, timeout=2 * WAIT_MS
            )
        return self._browser

    def stop(self):
        if self._browser is not None:
            self._browser.close()
            self._playwright.stop()
            self._browser = self._playwright = None
            if self._saved_env is None:
                os.environ.pop(ASYNC_UNSAFE, None)
            else:
                os.environ[ASYNC_UNSAFE] = self._saved_env


_chromium = Chromium()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    if nextitem is None or Path(nextitem.path).parent != Path(item.path).parent:
        _chromium.stop()
    return result


@pytest.fixture(scope="session")
def browser():
    yield _chromium
    _chromium.stop()


@pytest.fixture
def page(request, browser, live_server):
    # The database exists by now (live_server needs it): start Chromium after it.
    context = browser.get().new_context(viewport={"width": 1440, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(WAIT_MS)
    expect.set_options(timeout=WAIT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def marketer(django_user_model, marketers_group):
    """A staff user of the "Marketers" group: what a marketer usually may do."""
    user = django_user_model.objects.create_user("marketer", password=PASSWORD, is_staff=True)
    user.groups.add(marketers_group)
    return user


@pytest.fixture
def logged_in(page, marketer):
    """The page, logged in as a marketer through the login form."""
    page.goto("/")
    page.get_by_label("Username").fill(marketer.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/marketing-activities/")
    return page
