#!/usr/bin/env bash
# The whole test suite, set-up included: what .ci/run calls and the README names.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
python3 -m ruff check pyrunc tests
exec python3 -m pytest tests -q "$@"
