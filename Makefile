# pilotlight: `make demo` (offline plan + local drill) and `make test` (lint, types, tests).
# Each target creates .venv and installs what it needs; only Python 3.11+ and make are required.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_RUN := $(VENV)/.installed-runtime
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: demo test plan drill lint typecheck unit bench soak clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_RUN): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(STAMP_DEV): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(STAMP_RUN)

demo: $(STAMP_DEV)
	$(PY) -m automation plan
	$(PY) -m automation drill --local

drill: $(STAMP_DEV)
	$(PY) -m automation drill --local

plan: $(STAMP_RUN)
	$(PY) -m automation plan

lint: $(STAMP_DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP_DEV)
	$(VENV)/bin/pyright

# The suite on every core (pytest-xdist); each test module runs whole on one worker, so a module's
# fixtures (moto, PostgreSQL servers, the drill) start once. `make unit PYTEST_WORKERS=0` runs in one process.
# It prints the 25 slowest tests: the CI time budget (15 minutes) is watched from them.
PYTEST_WORKERS ?= auto
unit: $(STAMP_DEV)
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadscope --durations=25

test: lint typecheck unit

# The safety checker's long run: 1,000 random schedules of 30 operations (docs/safety.md).
SOAK_SCHEDULES ?= 1000
soak: $(STAMP_DEV)
	$(PY) -m tests.safety.driver --schedules $(SOAK_SCHEDULES) --length 30

bench: $(STAMP_DEV)
	$(PY) benchmarks/failover_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache reports
