# vdx — the two commands of the README, and a few helpers.
#   make run    start the all-in-one node on embedded defaults (SQLite, in-process bus)
#   make test   install what the tests need and run the whole suite (SQLite, then PostgreSQL + NATS)

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint deps bench clean

$(STAMP): pyproject.toml
	@scripts/ensure-python.sh $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

deps: $(STAMP)

run: deps
	$(VENV)/bin/vdx serve --demo

lint: deps
	scripts/lint.sh

test: deps
	scripts/test.sh

bench: deps
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .tmp test-artifacts .pytest_cache .mypy_cache .ruff_cache
