#!/usr/bin/env bash
# The whole test suite, set-up included: what .ci/run calls and the README names.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup.sh
python3 -m ruff check pyrunc tests oci-conformance
python3 -m mypy pyrunc  # configured in pyproject.toml; must report no errors
# the extensions' .pyi stubs against the built modules: names, parameters, defaults
python3 -m mypy.stubtest --mypy-config-file pyproject.toml \
    --allowlist typings/stubtest-allowlist.txt pyrunc._executor pyrunc._linux pyrunc._seccomp
# the OCI conformance suite against pyrunc, runc and crun: fails on any pyrunc regression
python3 oci-conformance/run.py --check-regressions
# the no-root tests (tests/unit: the parent's side against a fake of pyrunc.syscall) as nobody,
# so that one that needs a privilege fails here. Nothing is written to the checkout (no cache,
# no bytecode). When nobody cannot reach the interpreter or the checkout (python under /root),
# it gets CAP_DAC_READ_SEARCH alone: reading, never writing, signalling or mounting.
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if ! "${nobody[@]}" python3 -c 'import pytest, pyrunc' 2>/dev/null; then
    nobody+=(--inh-caps=-all,+dac_read_search --ambient-caps=-all,+dac_read_search
             --bounding-set=-all,+dac_read_search)
fi
PYTHONDONTWRITEBYTECODE=1 "${nobody[@]}" python3 -m pytest tests/unit -q -p no:cacheprovider
# everything, as root (tests/unit again too: a few seconds, and `pytest tests` stays the one
# command that runs every test)
exec python3 -m pytest tests -q "$@"
