"""The init plan's vocabulary: operation codes shared with the executor in ``_fast.pyx``.

The one list of them: setup.py writes ``pyrunc/_ops.pxi`` from this module (``pxi()``), which
``_fast.pyx`` includes, and tests/test_ops.py holds the built extension to it. Each code's
comment says what its numbers (a..g), strings (s1..s4), argv/envp (v1, v2) and ids mean.

An operation is a plain tuple ``(code, description, numbers, strings, argv, envp, ids)``; the
description is what an error message names when the operation fails in the child.
"""

from __future__ import annotations

CLOSE = 1             # a=fd
SETNS = 2             # a=fd b=nstype
SYNC = 3              # s1=tag: tell the parent, wait for it to answer
UNSHARE = 4           # a=flags
MOUNT = 5             # s1=source s2=target s3=fstype s4=data a=flags b=target mode
                      # c=k+1: the source is the k-th fd of OP_RECV_SOURCES
ROOT = 6              # s1=rootfs: remember it as the root for in-root resolution
MKNOD = 7             # s1=path in root a=mode b=major c=minor d=uid e=gid
SYMLINK = 8           # s1=link target s2=path in root
PIVOT = 9             # s1=rootfs a=1 for MS_MOVE+chroot instead of pivot_root
HOSTNAME = 10         # s1
DOMAINNAME = 11       # s1
WRITE_PROC = 12       # s1=path (procfs only) s2=data
LOOPBACK = 13
MASK = 14             # s1=path
READONLY = 15         # s1=path
RLIMIT = 16           # a=resource b=soft c=hard
NO_NEW_PRIVS = 17
SETGROUPS = 18        # ids
SETUSER = 19          # a=uid b=gid, keeping capabilities
DROP_BOUNDING = 20    # a=mask of capabilities to keep b=last cap
CAPSET = 21           # a=effective b=permitted c=inheritable d=ambient e=last cap
UMASK = 22            # a
CHDIR = 23            # s1
FIND_EXEC = 24        # s1=name s2=PATH a=host side (a hook outside the container:
                      # magic links allowed)
READY = 25            # tell the parent the init is ready, wait for its go-ahead
WAIT_START = 26       # a=O_PATH fd of the exec fifo
CLOEXEC_FROM = 27     # a=first fd to mark close-on-exec
EXEC = 28             # v1=argv v2=env
OPEN_DEVNULL = 29     # the container's /dev/null: for masks (a=1: required), and stdio
SETSID = 30
REMOUNT_ROOT = 31     # a=flags: remount "/" (bind) with them
SET_PROPAGATION = 32  # s1=absolute path a=flags
KEYRING = 33          # s1=name of a new session keyring
CONSOLE = 34          # a=console socket b=rows c=columns
DUP2 = 35             # a=old fd b=new fd
SCHEDULER = 36        # a=policy b=flags c=nice d=priority e=runtime f=deadline g=period
IOPRIO = 37           # a=ioprio value
AFFINITY = 38         # ids=cpus
MEMPOLICY = 39        # a=mode|flags ids=nodes
PERSONALITY = 40      # a=persona
SECCOMP = 41          # blob=BPF program a=flags
MOUNT_SETATTR = 42    # s1=target in root a=attributes to set b=to clear c=recursive
MOVE_MOUNT = 43       # s1=target in root a=detached mount fd c=target mode
CLOSE_OTHERS = 44     # a=first fd ids=fds to keep
TMPFS = 45            # s1=source s2=target in root s3=fstype s4=data a=flags b=tmpcopyup
                      # c=TGT_* flags of the target
FIX_STDIO = 46        # a=uid: stdio becomes the process user's (runc)
HOOK = 47             # s1=path v1=argv v2=env s2,s3=state around the pid a=timeout
HIDE_MOUNT = 48       # s1=absolute path of a full procfs/sysfs: unmounted, else covered
DUMPABLE = 49         # a=0 or 1 (a rootless parent writing the new user namespace's maps)
RECV_SOURCES = 50     # a=count: bind sources the runtime opened, one fd per message

# How OP_MOUNT finds its target.
TGT_ABSOLUTE = 0       # a plain path (setup of "/" and the rootfs itself)
TGT_DIR = 1            # inside the root; create missing directories
TGT_FILE = 2           # inside the root; create missing parents and an empty file
TGT_EXISTING = 3       # inside the root; must exist
TGT_MODE_MASK = 0xFF   # the mode's bits; the flags below are or-ed into it
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


def codes() -> dict[str, int]:
    """{name: value} of every operation code (OP_name in the executor) and target mode or flag
    (TGT_name), as this module defines them."""
    return {("" if k.startswith("TGT_") else "OP_") + k: v for k, v in globals().items()
            if k.isupper() and type(v) is int}  # fmt: skip


def pxi() -> str:
    """The Cython declarations of `codes()`, and `op_codes()` returning them as compiled."""
    values = codes()
    names = sorted(values, key=lambda k: (k.startswith("TGT_"), values[k]))
    body = "".join(f"    {n} = {values[n]}\n" for n in names)
    listing = "".join(f"        {n!r}: {n},\n" for n in names)
    return ("# generated by setup.py from pyrunc/instructions.py (instructions.pxi()): edit that"
            " file\n"
            f"cdef enum:\n{body}\n\ndef op_codes():\n"
            f"    \"\"\"The codes as this extension was compiled with (tests/test_ops.py).\"\"\"\n"
            f"    return {{\n{listing}    }}\n")
