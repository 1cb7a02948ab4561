"""The init plan's vocabulary: operation codes shared with the executor in ``_fast.pyx``.

An operation is a plain tuple ``(code, description, numbers, strings, argv, envp, ids)``; the
description is what an error message names when the operation fails in the child.
"""

from __future__ import annotations

CLOSE = 1
SETNS = 2
SYNC = 3
UNSHARE = 4
MOUNT = 5
ROOT = 6
MKNOD = 7
SYMLINK = 8
PIVOT = 9
HOSTNAME = 10
DOMAINNAME = 11
WRITE_PROC = 12
LOOPBACK = 13
MASK = 14
READONLY = 15
RLIMIT = 16
NO_NEW_PRIVS = 17
SETGROUPS = 18
SETUSER = 19
DROP_BOUNDING = 20
CAPSET = 21
UMASK = 22
CHDIR = 23
FIND_EXEC = 24
READY = 25
WAIT_START = 26
CLOEXEC_FROM = 27
EXEC = 28
OPEN_DEVNULL = 29
SETSID = 30
REMOUNT_ROOT = 31
SET_PROPAGATION = 32
KEYRING = 33
CONSOLE = 34
DUP2 = 35
SCHEDULER = 36
IOPRIO = 37
AFFINITY = 38
MEMPOLICY = 39
PERSONALITY = 40
SECCOMP = 41
MOUNT_SETATTR = 42
MOVE_MOUNT = 43
CLOSE_OTHERS = 44
TMPFS = 45
FIX_STDIO = 46
HOOK = 47
HIDE_MOUNT = 48
DUMPABLE = 49
RECV_SOURCES = 50

# How OP_MOUNT finds its target.
TGT_ABSOLUTE = 0
TGT_DIR = 1
TGT_FILE = 2
TGT_EXISTING = 3
# flags or-ed into the target mode of a config mount (S14)
TGT_NOT_PROC = 0x100   # refuse a target that resolved onto procfs (a mount inside /proc)
TGT_ORDINARY = 0x200   # the final component must be a directory, never a symlink (proc, sysfs)

Op = tuple


def op(
    code: int,
    desc: str,
    *nums: int,
    s: tuple[str | bytes | None, ...] = (),
    argv: list[str] | None = None,
    envp: list[str] | None = None,
    ids: list[int] | bytes | None = None,
) -> Op:
    """Build one operation; numbers fill a..g, strings s1..s4."""
    return (code, desc, nums, s, argv, envp, ids)
