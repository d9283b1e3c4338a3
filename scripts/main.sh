#!/usr/bin/env bash
# The main job: set up .venv, make sure a Docker Engine answers (installing and starting it as the tests do),
# then `testbed tour`: predict the top configurations of mobilenetv2, simulate them under a bandwidth dip, run
# them on an emulated three-tier topology, compare predicted, simulated and measured, and write one
# self-contained HTML report (it prints `report: PATH`). Without root or an engine it says so in one line and
# does the rest (no measured column). Extra arguments go to `testbed tour` (e.g. --out DIR, --no-docker).
set -euo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
stage() { local s=$((SECONDS - START)); printf '[main %d:%02d] %s\n' $((s / 60)) $((s % 60)) "$*"; }

stage "setup: .venv (scripts/setup.sh)"
bash scripts/setup.sh
mkdir -p results

# The emulator needs root; the tour itself says, in one line, when it cannot measure and goes on without.
if [ "$(id -u)" -eq 0 ]; then
  stage "docker: making sure a Docker Engine answers (scripts/ensure_docker.sh, log results/ensure_docker.log)"
  bash scripts/ensure_docker.sh >results/ensure_docker.log 2>&1 || true
fi

stage "tour: predict, simulate under a dip, measure on three emulated tiers, compare, report (testbed tour)"
.venv/bin/testbed tour "$@"
stage "done"
