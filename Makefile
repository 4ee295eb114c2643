# The one place a newcomer learns the commands. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WEB_WORKERS ?= 2
WEB_THREADS ?= 4

export NUMBA_CACHE_DIR := $(CURDIR)/var/numba-cache
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install run serve setup test test-fast lint format check bench loadtest worker clean parity

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@

install: $(BIN)/.installed

# Migrate, verify and index the bundled market data, collect static files, warm the engines;
# on an empty SQLite database, a staff user (one-time password printed) and demo content.
setup: install
	@mkdir -p var
	DJANGO_SETTINGS_MODULE=backfolio.settings.base $(BIN)/python manage.py migrate --noinput
	DJANGO_SETTINGS_MODULE=backfolio.settings.base $(BIN)/python manage.py load_market_data
	DJANGO_SETTINGS_MODULE=backfolio.settings.base $(BIN)/python manage.py collectstatic --noinput -v 0
	DJANGO_SETTINGS_MODULE=backfolio.settings.base $(BIN)/python manage.py warm_engines
	DJANGO_SETTINGS_MODULE=backfolio.settings.base $(BIN)/python manage.py first_start

# The embedded default: SQLite, local artifacts, in-process Dramatiq workers. Ctrl-C stops it.
run: setup serve

# gunicorn.conf.py: the master loads the app and warms the engines once, workers fork from it.
serve:
	DJANGO_SETTINGS_MODULE=backfolio.settings.base $(BIN)/gunicorn -c gunicorn.conf.py backfolio.wsgi \
		--bind $(HOST):$(PORT) --workers $(WEB_WORKERS) --threads $(WEB_THREADS) \
		--access-logfile -

# A separate worker process, for when REDIS_URL points at a shared broker.
worker: install
	$(BIN)/python manage.py rundramatiq --processes 2 --threads 2

test: install
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

check: install
	DJANGO_SETTINGS_MODULE=backfolio.settings.test $(BIN)/python manage.py check
	DJANGO_SETTINGS_MODULE=backfolio.settings.test $(BIN)/python manage.py makemigrations --check --dry-run

# A long property-based search for backtests on which the two engines disagree; the smallest
# counterexample found is saved to tests/properties/parity_regressions.json (a regular test).
PARITY_EXAMPLES ?= 500
parity: install
	PARITY_EXAMPLES=$(PARITY_EXAMPLES) $(BIN)/pytest -q -s -p no:cacheprovider \
		tests/properties/test_engine_parity.py -k parity_search

# `make bench` runs every benchmark; `make bench BENCH="pages walk_forward"` only those named.
bench: install
	$(BIN)/python -m benchmarks.run $(BENCH)

loadtest: install
	$(BIN)/python -m benchmarks.loadtest

clean:
	rm -rf var/media var/staticfiles .pytest_cache
