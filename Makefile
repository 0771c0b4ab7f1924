# One entry point for set-up, tests and the demo. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
UV_VERSION := 0.13.9
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: venv protos protos-check lint test demo emulator bench pins clean reliability

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

test: venv
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

demo: venv
	$(PY) scripts/demo.py

bench: venv
	$(PY) benchmarks/bench_client.py
	$(PY) benchmarks/bench_emulator.py

emulator: venv
	$(BIN)/puddle-emulator --db .puddle-emulator.sqlite

# The deployment run: PostgreSQL, two triggerers, faults, the browser (docs/reliability.md); ~10 min.
# Installs PostgreSQL and chromium with apt-get when they are missing.
reliability: venv
	scripts/reliability_deps.sh
	$(PY) -m reliability $(RELIABILITY_ARGS)

# Re-resolve the dev pin set from the ranges in pyproject.toml.
pins: venv
	$(BIN)/uv pip compile -q --python $(PY) pyproject.toml --extra dev -o requirements-dev.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
