# The two commands: `make demo` (set up if needed, run the main job) and `make test` (set up if needed,
# run every test). `make setup` only sets up; `make lint`, `make bench` are for developers.
SHELL := /bin/bash
ENV := source env.sh &&
OUT ?= out/demo

.PHONY: setup demo test lint bench clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	@$(ENV) python3 scripts/demo.py --out $(OUT)

test: setup
	@$(ENV) ruff check ml_model_service scripts && \
	  python3 -m pytest -c ml_model_service/pytest.ini --rootdir ml_model_service ml_model_service/test $(PYTEST_ARGS)

lint: setup
	@$(ENV) ruff check ml_model_service scripts

bench: setup
	@$(ENV) python3 scripts/benchmark.py

clean:
	rm -rf build install log .venv out
