# sanad — the two commands are `make run` and `make test`; everything else is a step of theirs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SANAD := $(VENV)/bin/sanad
STAMP := $(VENV)/.installed
PGURL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
DEMO_PEOPLE ?= 2000
export SANAD_HOME ?= $(CURDIR)/var

.PHONY: install vendor-js system-deps run test test-slow lint bench postgres clean

install: $(STAMP) vendor-js

# Browser libraries from npm, copied into the static files at install time (the checkpoint
# page's QR decoder): the browser never fetches code from elsewhere. Re-runs only when
# package.json changes; offline once node_modules is there.
VENDOR_JS := sanad/web/static/vendor/jsQR.js
vendor-js: $(VENDOR_JS)

$(VENDOR_JS): package.json
	@test -f node_modules/jsqr/dist/jsQR.js || npm install --no-audit --no-fund --ignore-scripts --loglevel=error
	@mkdir -p $(dir $@)
	cp node_modules/jsqr/dist/jsQR.js $@
	@touch $@

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,accel]'
	@touch $(STAMP)

# Debian packages the product needs: Chromium for browser tests, fonts for card rendering,
# poppler for print-and-scan checks, wrk for the API load benchmark, SoftHSM2 for the PKCS#11
# key-encryption-key tests.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || ! test -f /usr/share/fonts/opentype/fonts-hosny-amiri/Amiri-Regular.ttf || ! test -f /usr/share/fonts/opentype/ocr-b/OCRB.otf || ! command -v pdftoppm >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1 || ! command -v softhsm2-util >/dev/null 2>&1; then \
		echo "installing Debian packages (chromium, fonts, poppler-utils, wrk, softhsm2)…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core fonts-hosny-amiri fonts-ocr-b poppler-utils wrk softhsm2 >/dev/null; \
	fi

run: install system-deps
	$(SANAD) init
	@if [ "$$($(SANAD) person count)" = "0" ]; then \
		echo "seeding a demo population of $(DEMO_PEOPLE) synthetic people…"; \
		$(SANAD) demo --people $(DEMO_PEOPLE) --duplicates 40 --seed 7; \
	fi
	$(SANAD) serve --host 127.0.0.1 --port 8000

# PostgreSQL is a real dependency of the test suite: start it if it is down, fail clearly if not.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { \
		echo "PostgreSQL is down; starting it…"; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start || true; \
		for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; }
	@pg_isready -q -h 127.0.0.1 -p 5432 || { echo "ERROR: PostgreSQL is not reachable at 127.0.0.1:5432 (see docs/operations.md)"; exit 1; }

# The default suite (SQLite + PostgreSQL + Chromium), then lint. Tests marked `slow` (the
# >=5,000-request schemathesis run, SIGKILL-the-worker, full CLI round trips, the accuracy
# fixture) have faster variants of the same behaviour in the default run; `make test-slow`
# runs them too.
test: install system-deps postgres
	SANAD_TEST_POSTGRES_URL=$(PGURL) $(PY) -m pytest -n 2 -q -m "not slow"
	$(MAKE) lint

test-slow: install system-deps postgres
	SANAD_TEST_POSTGRES_URL=$(PGURL) $(PY) -m pytest -n 2 -q -m slow

lint: install
	$(VENV)/bin/ruff check sanad tests
	$(VENV)/bin/mypy sanad tests
	$(PY) scripts/audit_deps.py

bench: install
	$(SANAD) bench dedup

clean:
	rm -rf var tests/artifacts
