# Two commands on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
SIMULATOR_PORT ?= 8787

.PHONY: run test test-postgres bench bench-runner bench-interface bench-import bench-sync bench-callbacks bench-scale bench-admin bench-reporting install system-packages server-packages messages clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $$(bin/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

install: $(VENV)/.installed

# Debian packages the tests use: Chromium for the browser tests, gettext to
# compile the translations. Installed only when missing.
system-packages:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v msgfmt >/dev/null || missing="$$missing gettext"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing from Debian's packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

messages: install
	@if [ ! -d locale ]; then :; \
	elif command -v msgfmt >/dev/null; then $(VENV)/bin/django-admin compilemessages --ignore=.venv -v0; \
	else echo "gettext is not installed: the interface stays in English (apt-get install gettext)"; fi

# A local .env with DEBUG on, a fresh secret key and callback credentials.
.env:
	@printf 'DEBUG=true\nSECRET_KEY=%s\nVIBES_CALLBACK_PASSWORD=%s\nVIBES_DELIVERY_RECEIPT_URL=http://vibes:%s@127.0.0.1:$(PORT)/vibes/callbacks/\n' \
	  "$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')" \
	  "$$(head -c 18 /dev/urandom | base64 | tr -d '/+=\n')" > .env
	@pw=$$(sed -n 's/^VIBES_CALLBACK_PASSWORD=//p' .env); sed -i "s/vibes:[^@]*@/vibes:$$pw@/" .env
	@echo "Wrote .env for local use"

# The local Vibes simulator runs beside the app, mirrors the demo's subscribers,
# confirms pending participants after 20 s and posts its callbacks to the app
# with the credentials from .env; it stops when runserver does (Ctrl-C included).
run: install .env
	$(MAKE) --no-print-directory messages
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py seed_demo
	@echo
	@echo "  App:        http://127.0.0.1:$(PORT)/   (admin: http://127.0.0.1:$(PORT)/admin/)"
	@echo "  Log in as:  demo / demo-password"
	@echo "  Vibes:      local simulator on http://127.0.0.1:$(SIMULATOR_PORT) (people confirm subscriptions after 20 s)"
	@echo "  Schedules:  scheduled campaigns are started every minute"
	@echo
	@export VIBES_PLATFORM_URL=http://127.0.0.1:$(SIMULATOR_PORT) VIBES_CONNECT_URL=http://127.0.0.1:$(SIMULATOR_PORT); \
	$(PY) manage.py vibes_simulator --port $(SIMULATOR_PORT) --seed-from-db --confirm-after 20 & simulator=$$!; \
	(while sleep 60; do $(PY) manage.py run_due_campaigns; $(PY) manage.py run_triggers; done) & scheduler=$$!; \
	trap 'kill $$simulator $$scheduler 2>/dev/null; wait $$simulator 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# Settings are read with DEBUG=true (plain static files, no HTTPS redirect);
# pytest-django still runs every test with DEBUG off.
test: install system-packages
	$(MAKE) --no-print-directory messages
	DEBUG=true SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} $(PY) -m pytest $(PYTEST_ARGS)

# The whole suite again on PostgreSQL, plus the tests that start two Celery
# workers on Redis; both servers run on loopback in a temporary folder.
test-postgres: install system-packages server-packages
	$(MAKE) --no-print-directory messages
	DEBUG=true SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} bin/with-test-services $(PY) -m pytest $(PYTEST_ARGS)

server-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing from Debian's packages"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Benchmarks, all in benchmarks/ (see the README): the runner's
# (LEADS=1000000 make bench), the interface's (the pytest files of benchmarks/,
# outside the test paths: median server times on a tree of 10,000 campaigns),
# the CSV import's (ROWS=1000000 make bench-import) and the subscriber sync's.
# Each also runs alone; `python -m benchmarks.simbench` times the simulator.
LEADS ?= 100000
ROWS ?= 100000
bench: bench-runner bench-interface bench-import bench-sync bench-admin

bench-runner: install
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} DEBUG=true $(PY) manage.py bench_campaign --leads $(LEADS)

# The list-driven subscriber sync: LEADS leads, 30% of that as subscribers on one list.
bench-sync: install
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} DEBUG=true $(PY) manage.py bench_sync --leads $(LEADS)

bench-interface: install
	DEBUG=true SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} $(PY) -m pytest benchmarks -q

bench-import: install
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} DEBUG=true $(PY) manage.py bench_import --rows $(ROWS)

# Vibes callbacks posted at rising rates to gunicorn (4 workers) on a throwaway
# PostgreSQL, applied by a Celery worker on Redis: RATES per second, each for
# BENCH_SECONDS; APPLY=request|thread|celery says where callbacks are applied.
RATES ?= 100,200,300,500,700
BENCH_SECONDS ?= 10
APPLY ?= celery
bench-callbacks: install server-packages
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} bin/with-test-services $(PY) -m benchmarks.callbacks \
	  --rates $(RATES) --seconds $(BENCH_SECONDS) --apply $(APPLY)

# Every screen on a world of SCALE_LEADS people (a million by default; not part of
# `make bench`): SCALE_ARGS="--reuse" measures the world the last run built again,
# SCALE_ARGS="--database-url postgres://…" builds it on PostgreSQL.
SCALE_LEADS ?= 1000000
bench-scale: install
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} DEBUG=true $(PY) manage.py bench_scale --leads $(SCALE_LEADS) $(SCALE_ARGS)

# The SMS figures of REPORTING_ROWS result rows (ten million by default; not part of `make bench`):
# REPORTING_ARGS="--reuse" measures the world the last run built again.
REPORTING_ROWS ?= 10000000
bench-reporting: install
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} DEBUG=true $(PY) manage.py bench_reporting --rows $(REPORTING_ROWS) $(REPORTING_ARGS)

# The admin's large lists (LEADS people and their traffic, built set-based): server times per page.
bench-admin: install
	SECRET_KEY=$${SECRET_KEY:-bench-only-secret-key} DEBUG=true $(PY) manage.py bench_admin --leads $(LEADS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
