# The two commands of the README: `make demo` and `make test`.
# Both create .venv from the project's own files the first time.
PYTHON ?= python3
VENV ?= .venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

.PHONY: demo test bench lint
demo: $(VENV)/.installed
	$(VENV)/bin/pg-audit demo

test: $(VENV)/.installed
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The benchmark suite (about 7 minutes on 2 cores); BENCH_ARGS=--smoke for seconds.
bench: $(VENV)/.installed
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
