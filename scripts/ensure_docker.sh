#!/usr/bin/env bash
# Make sure a Docker Engine answers: install docker.io when needed, start dockerd in the background, wait.
# Also installs the host tools the emulator wires links with (iproute2, ethtool) when missing.
# Idempotent; safe to call from CI and from tests. Exit 0 when `docker info` works, 1 otherwise.
set -euo pipefail

missing=""
command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || missing="$missing iproute2"
command -v ethtool >/dev/null 2>&1 || missing="$missing ethtool"
if [ -n "$missing" ]; then
    echo "ensure_docker: installing$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

WAIT_S="${DOCKER_WAIT_S:-60}"
LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"

if docker info >/dev/null 2>&1; then
    exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
    echo "ensure_docker: installing docker.io" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "ensure_docker: starting dockerd (log: $LOG)" >&2
    # setsid: dockerd must outlive this script and the caller's process group (Ctrl-C in a test run).
    setsid nohup dockerd >"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$WAIT_S"); do
    if docker info >/dev/null 2>&1; then
        echo "ensure_docker: engine answers" >&2
        exit 0
    fi
    sleep 1
done
echo "ensure_docker: Docker Engine did not answer within ${WAIT_S}s; see $LOG" >&2
exit 1
