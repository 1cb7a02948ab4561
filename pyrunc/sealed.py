"""S1: the processes pyrunc puts into a container run from an interpreter they cannot write.

Every process pyrunc starts in a container (the init until `start`, `exec`'d processes, hooks
that join the container) is a clone of the Python interpreter until its execve, so its
/proc/<pid>/exe is the interpreter binary. A container process able to open that link
(CAP_SYS_PTRACE) could keep it and, once no interpreter runs, overwrite the host's Python
(CVE-2019-5736). So `create`, `run` and `exec` only run from an executable that cannot be
written through that link:

- the **protected interpreter** (what runc >= 1.2 does for itself): a read-only overlayfs whose
  lower layers are the interpreter's directory and an empty one, mounted once per boot at
  `/run/pyrunc-exe/<key>/` (key: a hash of the directory; outside the default state root
  /run/pyrunc, where it would take a container id); it stays until reboot (or `umount`). Its
  files are overlay inodes on a read-only mount: opening them for writing fails with EROFS, and
  a file handle taken from them does not name the host's file. The `pyrunc` launcher
  (src/launcher.c) execs the interpreter from there when it exists, so these commands start one
  interpreter, not two;
- otherwise (the first command after boot, a `python -m pyrunc`, a kernel without overlayfs), the
  command re-executes itself once, from the protected interpreter (mounting it first) or, where
  that cannot be had, from a sealed memfd copy of the interpreter.
"""

from __future__ import annotations

import os
import sys

PROTECTED_ROOT = "/run/pyrunc-exe"
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


def protected_executable(real_executable: str) -> str:
    """Where the protected copy of `real_executable` (a resolved path) appears once mounted.

    src/launcher.c computes the same path; tests/test_packaging.py checks that they agree.
    """
    try:
        from _sha256 import sha256  # the C module itself: hashlib would load OpenSSL
    except ImportError:  # Python >= 3.12 names it _sha2
        from hashlib import sha256

    directory, name = os.path.split(real_executable)
    key = sha256(directory.encode()).hexdigest()[:16]
    return f"{PROTECTED_ROOT}/{key}/{name}"


def running_sealed() -> bool:
    """True when our executable is the sealed memfd or the protected overlay.

    A read-only mount alone is not enough: a bind mount still names the host's inode, which a
    process with CAP_DAC_READ_SEARCH could reopen by handle through a writable mount of the same
    filesystem (runc's reason for moving from a read-only bind mount to overlayfs).
    """
    try:
        exe = os.readlink("/proc/self/exe")
        if exe.startswith("/memfd:pyrunc-python"):
            return True
        return exe.startswith(PROTECTED_ROOT + "/") and _is_protected(exe)
    except OSError:
        return False


# set for the re-executed command when it mounted the overlay just now, for its --debug line
MOUNTED_ENV = "_PYRUNC_OVERLAY_MOUNTED"


def overlays() -> list[tuple[str, str]]:
    """The protected interpreter overlays mounted here: (mount point, interpreter directory)."""
    from pyrunc import mountinfo

    found = []
    for mount in mountinfo.read():
        if mount.fstype == "overlay" and mount.mount_point.startswith(PROTECTED_ROOT + "/"):
            lower = next((o[len("lowerdir="):] for o in mount.superopts.split(",")
                          if o.startswith("lowerdir=")), "")  # fmt: skip
            found.append((mount.mount_point, lower.split(":")[0]))
    return found


def remove_overlays(only: str | None = None) -> list[str]:
    """Unmount every protected interpreter overlay, or only the one of the directory or mount
    point `only` (lazily: a pyrunc running from one keeps it until it exits), and remove its
    directory; the mount points removed. The next create, run or exec mounts its own again."""
    from pyrunc import syscall

    removed = []
    for mountpoint, directory in overlays():
        if only is not None and os.path.abspath(only) not in (mountpoint, directory):
            continue
        syscall.get().umount(mountpoint, 2)  # MNT_DETACH
        try:
            os.rmdir(mountpoint)
        except OSError:
            pass
        removed.append(mountpoint)
    return removed


def protect(real_executable: str) -> str:
    """Mount the protected interpreter if it is not there yet; its path. Raises OSError."""
    import fcntl

    target = protected_executable(real_executable)
    mountpoint = os.path.dirname(target)
    empty = os.path.join(PROTECTED_ROOT, ".empty")
    os.makedirs(empty, mode=0o700, exist_ok=True)
    os.makedirs(mountpoint, mode=0o700, exist_ok=True)
    lock = os.open(PROTECTED_ROOT, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two first commands after boot: one mounts
        if not _is_protected(target):
            from pyrunc import syscall

            lower = f"lowerdir={os.path.dirname(real_executable)}:{empty}"
            flags = 1 | 2 | 4  # MS_RDONLY | MS_NOSUID | MS_NODEV
            syscall.get().mount("overlay", mountpoint, "overlay", flags, lower)
            os.environ[MOUNTED_ENV] = f"{os.path.dirname(real_executable)} at {mountpoint}"
        if not _is_protected(target):
            raise OSError(f"{target} is not on a read-only mount")
    finally:
        os.close(lock)
    return target


def _is_protected(path: str) -> bool:
    try:
        return os.access(path, os.X_OK) and bool(os.statvfs(path).f_flag & os.ST_RDONLY)
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
    """Replace this process by the same command run from a protected interpreter (never
    returns): the overlay when it can be mounted, else a sealed memfd copy."""
    import pyrunc

    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))
    path = [package_parent] + [p for p in sys.path if p and p != package_parent]
    code = f"import sys; sys.path[:0] = {path!r}; from pyrunc.cli import run; run()"
    args = ["-I", "-S", "-c", code, *argv]
    real = os.path.realpath("/proc/self/exe")
    try:
        protected = protect(real)
    except OSError:
        # argv[0] stays the real interpreter path: Python finds its prefix (and venv) from it
        os.execve(sealed_copy(), [sys.executable, *args], dict(os.environ))
    else:
        os.execv(protected, [protected, *args])
