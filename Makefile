# sanad — the two commands are `make run` and `make test`; everything else is a step of theirs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SANAD := $(VENV)/bin/sanad
STAMP := $(VENV)/.installed
PGURL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
DEMO_PEOPLE ?= 2000
export SANAD_HOME ?= $(CURDIR)/var

.PHONY: install system-deps run test test-sqlite lint bench postgres clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

# Debian packages the product needs: Chromium for browser tests, fonts for card rendering.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf; then \
		echo "installing Debian packages (chromium, fonts)…"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	fi

run: install
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

test: install system-deps postgres
	SANAD_TEST_POSTGRES_URL=$(PGURL) $(PY) -m pytest -n 2 --dist loadgroup -q
	$(MAKE) lint

lint: install
	$(VENV)/bin/ruff check sanad tests
	$(VENV)/bin/mypy sanad

bench: install
	$(SANAD) bench dedup

clean:
	rm -rf var bench/results/*.json tests/artifacts
