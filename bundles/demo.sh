#!/usr/bin/env bash
# Set up pyrunc on a fresh machine, build the busybox bundle and run a container that prints.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
bash bundles/make-busybox.sh bundles/busybox
pyrunc delete --force demo 2>/dev/null || true
exec pyrunc run -b bundles/busybox demo
