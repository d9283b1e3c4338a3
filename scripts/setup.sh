#!/usr/bin/env bash
# Create or refresh .venv at the repo root with this project and everything it needs (Debian 12, Python 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
if [ -z "$PY" ] || ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "setup: Python >= 3.11 is required (apt-get install python3)" >&2
  exit 1
fi
# Debian splits venv/ensurepip out of python3.
if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  as_root apt-get update -q
  as_root apt-get install -y -q python3-venv python3-pip
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
  "$PY" -m venv --clear .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# The test extra brings tox: `.venv/bin/tox -e tests|lint|sweep` reuses these packages (toxfile.py).
.venv/bin/python -m pip install -q -e '.[tf,test,dask]'
[ -x .venv/bin/tox ] || { echo "setup: tox did not install into .venv" >&2; exit 1; }
echo "setup: .venv ready ($(.venv/bin/python --version)); console scripts in .venv/bin: scission emulator testbed tox"
