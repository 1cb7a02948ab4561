#!/usr/bin/env bash
# The whole test suite, set-up included: what .ci/run calls and the README names.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
python3 -m ruff check pyrunc tests oci-conformance
# the OCI conformance suite against pyrunc, runc and crun: fails on any pyrunc regression
python3 oci-conformance/run.py --check-regressions
exec python3 -m pytest tests -q "$@"
