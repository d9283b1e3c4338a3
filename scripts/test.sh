#!/usr/bin/env bash
# Set up, start what the tests need (the Docker Engine included), then run the whole test suite.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
if [ -f scripts/ensure_docker.sh ]; then
  bash scripts/ensure_docker.sh || { echo "test: could not start a Docker Engine" >&2; exit 1; }
fi
# Headless Chromium for the report tests (Debian's package; Playwright drives it, downloads nothing).
if ! command -v chromium >/dev/null 2>&1; then
  as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root apt-get update -q && as_root apt-get install -y -q chromium || { echo "test: could not install chromium" >&2; exit 1; }
fi
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit "$status"
