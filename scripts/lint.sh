#!/usr/bin/env bash
# make lint: style, types and the import contracts of pyproject.toml ([tool.importlinter]).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
ruff check .
ruff format --check .
mypy
# lint-imports reads the installed package; src/ first so a fresh checkout is what is checked
PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" lint-imports --no-cache
