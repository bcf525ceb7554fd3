# Quaymaster: `make run` starts the platform on its embedded default (SQLite, database queue);
# `make test` sets up everything (virtualenv, real services) and runs the suite and linters.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SERVICES := platform/services
PYTEST_ARGS ?=

.PHONY: run test test-postgres test-sqlite lint format services services-down install clean bench fuzz scale-out

# `make install` and `make run` print one line per step; the steps' whole output is added to
# $(SETUP_LOG), and the end of a step's output is shown only if it fails. VERBOSE=1 shows it all.
VAR_DIR := $(or $(QUAYMASTER_VAR_DIR),var)
SETUP_LOG := $(VAR_DIR)/log/setup.log
STEP := QUAYMASTER_VERBOSE=$(VERBOSE) $(PYTHON) platform/step.py --log $(SETUP_LOG)

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(STEP) "Creating the virtualenv…" -- $(PYTHON) -m venv $(VENV)
	@$(STEP) "Updating pip…" -- $(BIN)/python -m pip install --progress-bar off --upgrade pip
	@$(STEP) "Installing dependencies (takes a few minutes the first time)…" -- \
	  $(BIN)/python -m pip install --progress-bar off -e '.[dev]'
	@touch $(STAMP)

# The embedded default: SQLite under var/, the database queue, every Procfile process.
# The demo jobs (jobs/demo.py) are loaded here only, beside any modules already configured.
comma := ,
DEMO_ENV := env -u DATABASE_URL QUAYMASTER_JOB_MODULES="$(if $(QUAYMASTER_JOB_MODULES),$(QUAYMASTER_JOB_MODULES)$(comma))jobs.demo"

# wait_ready starts honcho and prints where to log in once the web process answers /healthz
# (past READY_TIMEOUT seconds it says where to look, and keeps waiting).
READY_TIMEOUT ?= 60
PROCESSES := $(shell sed -n 's/^\([A-Za-z0-9_-]*\):.*/\1/p' platform/Procfile | paste -sd, - | sed 's/,/, /g')

run: $(STAMP)
	@$(STEP) "Migrating the database…" -- $(DEMO_ENV) $(BIN)/python manage.py migrate --no-input
	@$(STEP) "Loading demo data…" -- \
	  $(DEMO_ENV) $(BIN)/python manage.py bootstrap_demo --no-login-line
	@echo "Starting $(PROCESSES)… (the login line follows once the web process answers)"
	@$(DEMO_ENV) PATH="$(abspath $(BIN)):$$PATH" \
	  $(BIN)/python manage.py wait_ready --timeout $(READY_TIMEOUT) -- \
	  $(BIN)/honcho --procfile platform/Procfile --app-root . start

services:
	$(SERVICES) up

services-down:
	$(SERVICES) down

# With QUAYMASTER_REQUIRE_SERVICES=1 (as in CI) a service that does not start fails the run;
# otherwise the tests that need it are skipped with the reason. The PostgreSQL pass, the SQLite
# pass and the linters run side by side (each pass has its own databases; the PostgreSQL pass
# mostly waits on brokers), each one's output printed whole when it ends.
test: $(STAMP)
	@if $(SERVICES) up; then :; \
	elif [ "$${QUAYMASTER_REQUIRE_SERVICES:-0}" = "1" ]; then \
	  echo "platform/services up failed and QUAYMASTER_REQUIRE_SERVICES=1" >&2; exit 1; \
	else echo "some services did not start: their tests will be skipped" >&2; fi
	@if platform/install-chromium; then :; \
	elif [ "$${QUAYMASTER_REQUIRE_SERVICES:-0}" = "1" ]; then \
	  echo "Chromium could not be installed and QUAYMASTER_REQUIRE_SERVICES=1" >&2; exit 1; \
	else echo "Chromium is missing: the browser tests will be skipped" >&2; fi
	$(MAKE) --no-print-directory --jobs 3 --output-sync=target test-postgres test-sqlite lint

test-postgres: $(STAMP)
	eval "$$($(SERVICES) env)" && $(BIN)/python -m pytest $(PYTEST_ARGS)

# The embedded default once more: SQLite, without the tests that need PostgreSQL or engines
# (the browser tests ran in the PostgreSQL pass).
test-sqlite: $(STAMP)
	eval "$$($(SERVICES) env)" && env -u DATABASE_URL \
	  $(BIN)/python -m pytest -m "not postgres and not e2e and not browser" $(PYTEST_ARGS)

# Benchmarks against the real services; every figure beside a peer measured in the same run.
# `make bench SCENARIO=relay`, `make bench BENCH_ARGS=--quick`.
bench: $(STAMP)
	$(SERVICES) up
	$(BIN)/python -m bench $(if $(SCENARIO),--scenario $(SCENARIO),) $(BENCH_ARGS)

# The long API fuzz run (tests/fuzz; `make test` runs its smoke version): FUZZ_SCALE times the
# examples, schemathesis's boundary cases too, as an admin and as a business user, on PostgreSQL
# and then SQLite. Seeded, so a run repeats: `make fuzz FUZZ_SCALE=50 FUZZ_SEED=7`.
FUZZ_SCALE ?= 10
FUZZ_SEED ?= 15
FUZZ_ENV := QUAYMASTER_FUZZ_SCALE=$(FUZZ_SCALE) QUAYMASTER_FUZZ_SEED=$(FUZZ_SEED)

fuzz: $(STAMP)
	$(SERVICES) up
	eval "$$($(SERVICES) env)" && $(FUZZ_ENV) \
	  $(BIN)/python -m pytest tests/fuzz --timeout 0 $(PYTEST_ARGS)
	eval "$$($(SERVICES) env)" && env -u DATABASE_URL $(FUZZ_ENV) \
	  $(BIN)/python -m pytest tests/fuzz --timeout 0 $(PYTEST_ARGS)

# The long scale-out run (tests/e2e/test_scale_out.py; `make test` runs its short version): two
# web, two relays and four runworkers on a queue per engine, SCALE_OUT_SECONDS of record writes
# at SCALE_OUT_RATE per second, a relay and a worker killed and restarted mid-run, with the
# production takeover settings (relay lease 15 s, visibility timeout 30 s, Kafka session 45 s).
# Every knob is a SCALE_OUT_* variable (tests/e2e/scale_out.py); the report and the processes'
# logs go to var/scale-out/<date>-<time>/.
SCALE_OUT_SECONDS ?= 300
SCALE_OUT_RATE ?= 40
SCALE_OUT_ENV := SCALE_OUT_SECONDS=$(SCALE_OUT_SECONDS) SCALE_OUT_RATE=$(SCALE_OUT_RATE) \
  SCALE_OUT_LEASE_SECONDS=$${SCALE_OUT_LEASE_SECONDS:-15} \
  SCALE_OUT_VISIBILITY_TIMEOUT=$${SCALE_OUT_VISIBILITY_TIMEOUT:-30} \
  SCALE_OUT_KAFKA_SESSION_MS=$${SCALE_OUT_KAFKA_SESSION_MS:-45000} \
  SCALE_OUT_DRAIN_SECONDS=$${SCALE_OUT_DRAIN_SECONDS:-300} \
  SCALE_OUT_DIR=$${SCALE_OUT_DIR:-var/scale-out}

scale-out: $(STAMP)
	$(SERVICES) up
	eval "$$($(SERVICES) env)" && $(SCALE_OUT_ENV) \
	  $(BIN)/python -m pytest tests/e2e/test_scale_out.py -s --timeout 0 $(PYTEST_ARGS)

# lint-imports checks the layering contracts in pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache staticfiles
