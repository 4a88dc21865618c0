# vicirec — the two commands the README leads with:
#   make demo   set everything up and run the pipeline on the embedded defaults
#   make test   run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# The desk's server, as docs/deployment.md runs it (the browser test starts it from there, too).
GUNICORN_ARGS = vicirec.wsgi --chdir $(CURDIR) --bind 127.0.0.1:8000 --workers 2 --threads 8 --no-control-socket
# make demo's printed commands carry VICIREC_HOME when it was given, so they open the same demo.
HOMEVAR = $(if $(VICIREC_HOME),VICIREC_HOME=$(VICIREC_HOME) )

.PHONY: setup demo test lint bench soak

# What the codec benchmark's corpus and baselines need: espeak-ng and sox make the call audio, lame is
# VICIdial's own MP3 encoder, sox also VICIdial's GSM.
$(VENV)/.bench-deps:
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null && command -v lame >/dev/null || \
	  { echo "Installing espeak-ng, sox and lame (codec benchmark)…"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq espeak-ng sox lame >/dev/null; }
	@mkdir -p $(VENV) && touch $@

# System headers for mysqlclient (built from source: it ships no Linux wheels).
$(VENV)/.system-deps:
	@pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null || \
	  { echo "Installing libmariadb-dev and pkg-config (needed to build mysqlclient)…"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq libmariadb-dev pkg-config >/dev/null; }
	@/sbin/ldconfig -p | grep -q 'libopus\.so\.0' || \
	  { echo "Installing libopus0 (the Opus encoder)…"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq libopus0 >/dev/null; }
	@mkdir -p $(VENV) && touch $@

# Debian's headless Chromium and its WebDriver, for the compliance desk's browser tests.
$(VENV)/.browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { echo "Installing chromium and chromium-driver (browser tests)…"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@mkdir -p $(VENV) && touch $@

$(VENV)/.installed: requirements.lock pyproject.toml $(VENV)/.system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	@touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) manage.py migrate -v0
	$(PY) manage.py demo
	$(PY) manage.py run_lifecycle
	$(PY) manage.py cost_forecast
	@echo "VICIdial purges one lead (GDPR setting on); vicirec finishes the erasure in the archive:"
	$(PY) manage.py demo --gdpr-purge
	$(PY) manage.py erase_recordings
	$(PY) manage.py collectstatic --noinput -v0
	@echo
	@echo "Done: the demo's recordings are cataloged and archived, and one lead's recordings erased (see above)."
	@echo "Open the desk (styled, as in production: gunicorn with WhiteNoise, docs/deployment.md):"
	@echo "  $(HOMEVAR)$(abspath $(PY)) $(CURDIR)/manage.py createsuperuser"
	@echo "  $(HOMEVAR)VICIREC_DEMO_NO_2FA=1 $(abspath $(VENV))/bin/gunicorn $(GUNICORN_ARGS)"
	@echo "  then browse http://127.0.0.1:8000/admin/"
	@echo "VICIREC_DEMO_NO_2FA=1 is for the demo only: it lets superusers and Legal approvers sign in without"
	@echo "an authenticator code (production: manage.py enrol_totp USER; check --deploy refuses the switch)."

# vicirec's own database for each pass of the suite: SQLite (the embedded default), then MariaDB and
# PostgreSQL as production runs them (claims, row locks and conditional updates differ between them).
# `make test TEST_DATABASES=sqlite` runs the first pass only.
TEST_DATABASES ?= sqlite mysql://root@127.0.0.1:3306/vicirec_own postgres://postgres@127.0.0.1:5432/vicirec_own

test: setup $(VENV)/.browser-deps
	@for db in $(TEST_DATABASES); do \
	  echo "== vicirec's own database: $$db"; \
	  if [ "$$db" = sqlite ]; then $(VENV)/bin/pytest || exit $$?; \
	  else VICIREC_TEST_DATABASE_URL=$$db $(VENV)/bin/pytest || exit $$?; fi; \
	done

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports

bench: setup $(VENV)/.bench-deps
	$(PY) bench/run.py

# The soak (docs/reliability.md): the reliability suite and tests/soak at full size on SQLite, and the
# database-fault part on MariaDB and PostgreSQL, in four passes side by side (tests/soak/run.py); one line
# of figures at the end (tests/soak/figures.py). The broker part starts its own redis-server.
SOAK_DATABASES ?= mysql://root@127.0.0.1:3306/vicirec_own postgres://postgres@127.0.0.1:5432/vicirec_own

$(VENV)/.soak-deps:
	@command -v redis-server >/dev/null || \
	  { echo "Installing redis-server (the soak's broker outages)…"; \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	    $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq redis-server >/dev/null; }
	@mkdir -p $(VENV) && touch $@

soak: setup $(VENV)/.soak-deps
	$(PY) tests/soak/run.py $(SOAK_DATABASES)
