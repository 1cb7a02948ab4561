"""S1: the commands that put processes into a container run from a sealed copy of the interpreter.

Every process pyrunc starts in a container (the init until `start`, `exec`'d processes, hooks
that join the container) is a clone of the Python interpreter until its execve, so its
/proc/<pid>/exe is the interpreter binary. A container process able to open that link
(CAP_SYS_PTRACE) could keep it and, once no interpreter runs, overwrite the host's Python
(CVE-2019-5736). So `create`, `run` and `exec` re-execute themselves, once, from a sealed memfd
copy of the interpreter executable: the link then names an anonymous file that cannot be
written. The executable is small (libpython is a shared library), so the copy is cheap; the
cost is one more interpreter start, without `site` (sys.path is handed over as it is).
"""

from __future__ import annotations

import os
import sys

SEALED_COMMANDS = frozenset(("create", "run", "exec"))
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


def running_sealed() -> bool:
    """True when our executable is already a sealed memfd."""
    try:
        return os.readlink("/proc/self/exe").startswith("/memfd:pyrunc-python")
    except OSError:
        return False


def sealed_copy() -> int:
    """A memfd holding the interpreter executable, sealed against any change."""
    import fcntl

    fd = os.memfd_create("pyrunc-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    with open("/proc/self/exe", "rb") as src:
        while chunk := src.read(1 << 20):
            os.write(fd, chunk)
    seals = 0
    for name in _SEALS:
        seals |= getattr(fcntl, name)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


def reexec_sealed(argv: list[str]) -> None:
    """Replace this process by the same command run from the sealed copy (never returns)."""
    import pyrunc

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))
    path = [package_parent] + [p for p in sys.path if p and p != package_parent]
    code = (
        f"import sys; sys.path[:0] = {path!r}; from pyrunc.cli import run; run()"
    )
    fd = sealed_copy()
    # argv[0] stays the real interpreter path: Python finds its prefix (and venv) from it
    os.execve(fd, [sys.executable, "-I", "-S", "-c", code, *argv], dict(os.environ))
