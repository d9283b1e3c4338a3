#!/usr/bin/env bash
# Build the offline base image for emulator nodes: Debian bookworm minbase with python3, made by
# debootstrap and `docker import`, for machines where no image registry is reachable.
# Where a registry is reachable, skip this and pass --base debian:bookworm-slim to the image build.
#
# usage: docker/build_base.sh [TAG] [ROOTFS_DIR]   (default TAG scission-node-base:bookworm)
# Idempotent: does nothing when TAG already exists. Takes about a minute.
set -euo pipefail

TAG="${1:-scission-node-base:bookworm}"
ROOTFS="${2:-}"
PACKAGES="python3,python3-venv,ca-certificates,iproute2,ethtool,procps"

if docker image inspect "$TAG" >/dev/null 2>&1; then
    echo "build_base: $TAG exists" >&2
    exit 0
fi
command -v debootstrap >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}
cleanup=""
if [ -z "$ROOTFS" ]; then
    ROOTFS="$(mktemp -d /var/tmp/scission-node-rootfs.XXXXXX)"
    cleanup="$ROOTFS"
fi
trap '[ -n "$cleanup" ] && rm -rf "$cleanup"' EXIT
if [ ! -x "$ROOTFS/usr/bin/python3" ]; then
    echo "build_base: debootstrap bookworm into $ROOTFS" >&2
    debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" >&2
fi
echo "build_base: importing $TAG" >&2
tar -C "$ROOTFS" -c . | docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase --include=$PACKAGES bookworm" \
    - "$TAG" >/dev/null
echo "build_base: built $TAG" >&2
