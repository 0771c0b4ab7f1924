# One entry point for set-up, tests and the demo. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
COMPAT_VENV := .venv-compat
# The lowest Airflow pyproject.toml allows; make test-compat runs the suite against it.
AIRFLOW_FLOOR := 3.3.0
BIN := $(VENV)/bin
PY := $(BIN)/python
UV_VERSION := 0.13.9
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: venv protos protos-check lint test test-compat demo emulator bench bench-full pins clean reliability

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "uv==$(UV_VERSION)" || $(BIN)/pip install -q uv
	$(BIN)/uv pip install -q --python $(PY) -r requirements-dev.txt
	$(BIN)/uv pip install -q --python $(PY) --no-deps -e .
	touch $@

protos: venv
	$(PY) scripts/gen_protos.py

protos-check: venv
	$(PY) scripts/gen_protos.py --check

lint: venv
	$(BIN)/ruff check airflow_puddle tests example_dags scripts benchmarks reliability
	$(BIN)/mypy
	$(BIN)/mypy benchmarks

test: venv
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

# The suite against the lowest Airflow allowed (requirements-compat.txt), in a venv of its own.
test-compat: $(COMPAT_VENV)/.installed
	$(COMPAT_VENV)/bin/pytest -q -ra $(PYTEST_ARGS)

$(COMPAT_VENV)/.installed: pyproject.toml requirements-compat.txt
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install -q "uv==$(UV_VERSION)" || $(COMPAT_VENV)/bin/pip install -q uv
	$(COMPAT_VENV)/bin/uv pip install -q --python $(COMPAT_VENV)/bin/python -r requirements-compat.txt
	$(COMPAT_VENV)/bin/uv pip install -q --python $(COMPAT_VENV)/bin/python --no-deps -e .
	touch $@

demo: venv
	$(PY) scripts/demo.py

# Figures, not tests: the quick runs (a few minutes); bench-full adds N = 5,000 waits and longer runs.
bench: venv
	$(PY) benchmarks/run_all.py --quick

bench-full: venv
	$(PY) benchmarks/run_all.py

emulator: venv
	$(BIN)/puddle-emulator --db .puddle-emulator.sqlite

# The deployment run: PostgreSQL, two triggerers, faults, the browser (docs/reliability.md), on LocalExecutor
# and on CeleryExecutor (Redis, two Celery workers); ~20 min. RELIABILITY_ARGS="--executor local" (or celery): ~10 min.
# Installs PostgreSQL, chromium and redis-server with apt-get when they are missing.
reliability: venv
	scripts/reliability_deps.sh
	$(PY) -m reliability $(RELIABILITY_ARGS)

# Re-resolve the dev pin set from the ranges in pyproject.toml, and the compat set with Airflow at its floor.
pins: venv
	$(BIN)/uv pip compile -q --python $(PY) pyproject.toml --extra dev -o requirements-dev.txt
	echo "apache-airflow==$(AIRFLOW_FLOOR)" > .compat-constraint.txt
	$(BIN)/uv pip compile -q --no-header --no-annotate --python $(PY) pyproject.toml --extra dev \
		-c .compat-constraint.txt -o requirements-compat.txt
	sed -i '1i # Tested pin set with Airflow at the floor pyproject.toml allows (make test-compat). Regenerate: make pins' \
		requirements-compat.txt
	rm -f .compat-constraint.txt

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .pytest_cache .mypy_cache .ruff_cache
