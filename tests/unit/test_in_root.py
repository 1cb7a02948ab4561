"""Lookups inside a container's root (pyrunc/csrc/inroot.c) while the host renames.

openat2's scoped lookups (RESOLVE_IN_ROOT, RESOLVE_BENEATH) fail with EAGAIN when a rename or
mount anywhere on the host races a ".." step. A runtime that took that for an answer failed a
container's mount through an image's relative symlink at random on a busy host ("mount tmpfs to
/rel/other: resource temporarily unavailable"), and read a rootfs file as missing.
"""

from __future__ import annotations

import re
from pathlib import Path

from pyrunc import _linux
from unit.renamer import renaming

CSRC = Path(__file__).resolve().parents[2] / "pyrunc" / "csrc"


def test_a_dotdot_lookup_is_retried_while_the_host_renames(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "f").write_bytes(b"found\n")
    # ".." above the root stays at the root: every step here is a ".." the kernel checks
    path = b"/a/b/c/../../../../../../a/b/c/../c/../../b/c/f"
    assert _linux.read_in_root(str(root).encode(), path) == b"found\n"
    with renaming(tmp_path / "spin"):
        missed = sum(_linux.read_in_root(str(root).encode(), path) is None for _ in range(2000))
    assert missed == 0


def test_every_openat2_goes_through_the_retrying_wrapper() -> None:
    """The mechanism, not one path: no C file calls the syscall but the wrapper itself."""
    calls = {c.name: len(re.findall(r"\bSYS_openat2\b", c.read_text()))
             for c in CSRC.glob("*.c")}  # fmt: skip
    assert calls.pop("syscalls.c") == 1
    assert set(calls.values()) == {0}
    for pyx in CSRC.parent.glob("*.pyx"):
        assert "SYS_openat2" not in pyx.read_text(), pyx.name
