#!/usr/bin/env bash
# Set up, start what the tests need (the Docker Engine included), then run the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
if [ -f scripts/ensure_docker.sh ]; then
  bash scripts/ensure_docker.sh || { echo "test: could not start a Docker Engine" >&2; exit 1; }
fi
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
