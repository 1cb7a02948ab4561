"""The no-root tests: the runtime's parent side against `fakes.RecordingSyscall`.

Every test here gets a fresh fake installed as `pyrunc.syscall`'s current one (so nothing
reaches the host's cgroups, processes or mounts even by mistake) and runs as any user in a few
seconds; tests/run.sh runs this directory as nobody before the root suite.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyrunc import syscall
from pyrunc.cgroups import layout
from pyrunc.state import StateStore
from unit.fakes import RecordingSyscall


@pytest.fixture(autouse=True)
def fake() -> Iterator[RecordingSyscall]:
    """The fake host, with no cgroups mounted (`fake.layout("hybrid")` mounts some)."""
    fake = RecordingSyscall()
    old = syscall.replace(fake)
    layout._cached = None  # detected per process: per test here
    try:
        yield fake
    finally:
        syscall.replace(old)
        layout._cached = None


@pytest.fixture
def store(fake: RecordingSyscall) -> StateStore:
    """A --root on the fake host (its files are the fake's, as everything else here)."""
    return StateStore("/run/unit-root")
