#!/usr/bin/env bash
# Create the project's virtualenv, installing Debian's python3-venv first on a fresh machine.
set -euo pipefail
venv=${1:-.venv}
[ -x "$venv/bin/python" ] && exit 0
if ! python3 -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq python3 python3-venv python3-pip >/dev/null
  python3 -m venv "$venv"
fi
