"""The init plan's instruction set: operation codes, their modes and flags, and one typed
builder per operation, the only way to make one.

The codes are shared with the executor, ``pyrunc/_executor.pyx``: setup.py writes
``pyrunc/_ops.pxi`` from this module (``pxi()``), which the executor includes, and
tests/test_ops.py holds the built extension to it (the same codes, a handler in its table for
each) and every other module to the builders. Each code's comment says
what its numbers (a..g), strings (s1..s4), argv/envp (v1, v2) and ids mean: the wire format the
builders fill in and the executor reads.

An operation is an `Op`, a plain tuple ``(code, description, numbers, strings, argv, envp,
ids)`` (typed for the checker); the description is what an error message names when the
operation fails in the child. The builders write the whole tuple out: no generic constructor
exists, and tests/test_ops.py fails on a tuple made anywhere else.
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
PIVOT = 9             # s1=rootfs a=PIVOT_* mode
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
CHDIR = 23            # s1=path a=CHDIR_* mode
FIND_EXEC = 24        # s1=name s2=PATH a=LOOKUP_* (a hook outside the container: magic
                      # links allowed)
READY = 25            # tell the parent the init is ready, wait for its go-ahead
WAIT_START = 26       # a=O_PATH fd of the exec fifo
CLOEXEC_FROM = 27     # a=first fd to mark close-on-exec
EXEC = 28             # v1=argv v2=env
OPEN_DEVNULL = 29     # the container's /dev/null, for masks and stdio: a=DEVNULL_*
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

# How OP_PIVOT enters the rootfs.
PIVOT_ROOT = 0         # pivot_root(2) into it (own mount namespace)
PIVOT_MOVE = 1         # --no-pivot: MS_MOVE it over "/" and chroot
PIVOT_CHROOT = 2       # no mount namespace of its own (the runtime's is shared): chroot only

# When OP_CHDIR may fail (runc's two tries around the drop of privileges).
CHDIR_PLAIN = 0        # any error is fatal
CHDIR_BEFORE_DROP = 1  # as root: a permission error leaves it to the try after the drop
CHDIR_AFTER_DROP = 2   # as the user, unless the try before the drop succeeded

# Whether OP_OPEN_DEVNULL must find the container's /dev/null.
DEVNULL_OPTIONAL = 0   # stdio alone: without one, stdio stays as it is
DEVNULL_REQUIRED = 1   # masked paths are bound to it

# Where OP_FIND_EXEC may look.
LOOKUP_CONTAINER = 0   # the container's executable: never through a /proc magic link
LOOKUP_HOST = 1        # a hook run outside the container: magic links (a /proc/PID/exe) allowed

# How OP_MOUNT, OP_MOVE_MOUNT and OP_TMPFS find their target.
TGT_ABSOLUTE = 0       # a plain path (setup of "/" and the rootfs itself)
TGT_DIR = 1            # inside the root; create missing directories
TGT_FILE = 2           # inside the root; create missing parents and an empty file
TGT_EXISTING = 3       # inside the root; must exist
TGT_MODE_MASK = 0xFF   # the mode's bits; the flags below are or-ed into it
# flags or-ed into the target mode of a config mount (S14)
TGT_NOT_PROC = 0x100   # refuse a target that resolved onto procfs (a mount inside /proc)
TGT_ORDINARY = 0x200   # the final component must be a directory, never a symlink (proc, sysfs)


MODE_PREFIXES = ("PIVOT_", "CHDIR_", "DEVNULL_", "LOOKUP_", "TGT_")  # modes and flags, not codes


# The field indices of an Op, for the few readers (narration, the seccomp listener check).
FIELDS = ("code", "desc", "numbers", "strings", "argv", "envp", "ids")

TYPE_CHECKING = False
if TYPE_CHECKING:  # the typing module costs ~10 ms to import; every create loads this module
    from typing import TypeAlias

    Op: TypeAlias = tuple[
        int,                          # code
        str,                          # desc: what an error in the child names
        tuple[int, ...],              # numbers a..g (the missing ones 0)
        tuple[str | bytes | None, ...],  # strings s1..s4 (the missing ones None)
        list[str] | None,             # argv (v1)
        list[str] | None,             # envp (v2)
        list[int] | bytes | None,     # ids, or a blob
    ]
else:
    Op = tuple  # a plain tuple: the fastest thing to build, and what the executor unpacks


def describe(op: Op) -> str:
    """An operation readably, by its code's name (test failures, --debug)."""
    name = next((k for k, v in globals().items() if v == op[0] and k.isupper()
                 and type(v) is int and not k.startswith(MODE_PREFIXES)), str(op[0]))
    extra = "".join(f", {k}={v!r}" for k, v in zip(FIELDS[4:], op[4:], strict=True)
                    if v is not None)
    return f"{name}({op[1]!r}, {op[2]!r}, {op[3]!r}{extra})"


# --- the builders, by code ----------------------------------------------------------------------
# Strings are container paths unless said otherwise; `desc` names the step in error messages.


def close(fd: int, desc: str) -> Op:
    return (CLOSE, desc, (fd,), (), None, None, None)


# Join the namespace `fd` is open on (CLONE_NEW* `nstype`); the fd is closed after.
def setns(fd: int, nstype: int, desc: str) -> Op:
    return (SETNS, desc, (fd, nstype), (), None, None, None)


# Tell the parent `tag` and wait for its answer.
def sync(tag: str, desc: str = "sync with the runtime") -> Op:
    return (SYNC, desc, (), (tag,), None, None, None)


def unshare(flags: int, desc: str) -> Op:
    return (UNSHARE, desc, (flags,), (), None, None, None)


# mount(2) onto `target`, found as `target_mode` (a TGT_ mode, or-ed TGT_ flags) says;
# `received` >= 0: the source is the received-th fd of `recv_sources`, not the path `source`.
def mount(source: str | None, target: str, flags: int, target_mode: int, desc: str, *,
          fstype: str | None = None, data: str | None = None, received: int = -1) -> Op:
    return (MOUNT, desc, (flags, target_mode, received + 1), (source, target, fstype, data),
            None, None, None)


# Remember `path` (a host path) as the root that container paths resolve in.
def root(path: str, desc: str) -> Op:
    return (ROOT, desc, (), (path,), None, None, None)


def mknod(path: str, mode: int, major: int, minor: int, uid: int, gid: int,
          desc: str | None = None) -> Op:
    return (MKNOD, desc or f"mknod {path}", (mode, major, minor, uid, gid), (path,),
            None, None, None)


# `link` (in the root) pointing to `target`.
def symlink(target: str, link: str, desc: str | None = None) -> Op:
    return (SYMLINK, desc or f"symlink {link}", (), (target, link), None, None, None)


# Enter `rootfs` (a host path) as a PIVOT_* `mode` says.
def pivot(rootfs: str, mode: int, desc: str) -> Op:
    return (PIVOT, desc, (mode,), (rootfs,), None, None, None)


def hostname(name: str, desc: str | None = None) -> Op:
    return (HOSTNAME, desc or f"sethostname {name}", (), (name,), None, None, None)


def domainname(name: str, desc: str | None = None) -> Op:
    return (DOMAINNAME, desc or f"setdomainname {name}", (), (name,), None, None, None)


# Write `data` to `path`, relative to the container's verified procfs root (S14).
def write_proc(path: str, data: str, desc: str) -> Op:
    return (WRITE_PROC, desc, (), (path, data), None, None, None)


def loopback(desc: str = "bring up the loopback interface") -> Op:
    return (LOOPBACK, desc, (), (), None, None, None)


def mask(path: str, desc: str | None = None) -> Op:
    return (MASK, desc or f"mask {path}", (), (path,), None, None, None)


def readonly(path: str, desc: str | None = None) -> Op:
    return (READONLY, desc or f"make {path} read-only", (), (path,), None, None, None)


def rlimit(resource: int, soft: int, hard: int, desc: str) -> Op:
    return (RLIMIT, desc, (resource, soft, hard), (), None, None, None)


def no_new_privs(desc: str = "set no_new_privs") -> Op:
    return (NO_NEW_PRIVS, desc, (), (), None, None, None)


def setgroups(gids: list[int], desc: str = "setgroups") -> Op:
    return (SETGROUPS, desc, (), (), None, None, gids)


# setresgid/setresuid, keeping the capabilities (capset comes after).
def setuser(uid: int, gid: int, desc: str) -> Op:
    return (SETUSER, desc, (uid, gid), (), None, None, None)


# Drop every capability up to `last_cap` whose bit is not in `keep`.
def drop_bounding(keep: int, last_cap: int, desc: str) -> Op:
    return (DROP_BOUNDING, desc, (keep, last_cap), (), None, None, None)


def capset(effective: int, permitted: int, inheritable: int, ambient: int, last_cap: int,
           desc: str = "set capabilities") -> Op:
    return (CAPSET, desc, (effective, permitted, inheritable, ambient, last_cap), (),
            None, None, None)


def umask(mask: int, desc: str = "umask") -> Op:
    return (UMASK, desc, (mask,), (), None, None, None)


# chdir to `path` in the root (created if missing), failing as a CHDIR_* `mode` says.
def chdir(path: str, mode: int, desc: str) -> Op:
    return (CHDIR, desc, (mode,), (path,), None, None, None)


# Look `name` up in `path_env` (the process's PATH) as a LOOKUP_* mode allows.
def find_exec(name: str, path_env: str | None, lookup: int, desc: str) -> Op:
    return (FIND_EXEC, desc, (lookup,), (name, path_env), None, None, None)


def ready(desc: str = "report ready") -> Op:
    return (READY, desc, (), (), None, None, None)


# Wait on the exec fifo (an O_PATH fd) for `start`.
def wait_start(fifo_fd: int, desc: str = "wait for start") -> Op:
    return (WAIT_START, desc, (fifo_fd,), (), None, None, None)


def cloexec_from(first_fd: int, desc: str) -> Op:
    return (CLOEXEC_FROM, desc, (first_fd,), (), None, None, None)


# The last operation: execve the executable `find_exec` found.
def execve(argv: list[str], envp: list[str], desc: str = "exec") -> Op:
    return (EXEC, desc, (), (), argv, envp, None)


# Open the container's /dev/null (checked to be 1:3, S7); a DEVNULL_* `mode`.
def open_devnull(mode: int, desc: str) -> Op:
    return (OPEN_DEVNULL, desc, (mode,), (), None, None, None)


def setsid(desc: str = "setsid") -> Op:
    return (SETSID, desc, (), (), None, None, None)


# A bind remount of "/" with `flags`.
def remount_root(flags: int, desc: str) -> Op:
    return (REMOUNT_ROOT, desc, (flags,), (), None, None, None)


# `path` is absolute in the init's current mount namespace.
def set_propagation(path: str, flags: int, desc: str) -> Op:
    return (SET_PROPAGATION, desc, (flags,), (path,), None, None, None)


def keyring(name: str, desc: str = "join a new session keyring") -> Op:
    return (KEYRING, desc, (), (name,), None, None, None)


# A new pty whose master goes to the console socket; the slave becomes stdio.
def console(socket_fd: int, rows: int, columns: int, desc: str = "set up the console") -> Op:
    return (CONSOLE, desc, (socket_fd, rows, columns), (), None, None, None)


def dup2(old_fd: int, new_fd: int, desc: str) -> Op:
    return (DUP2, desc, (old_fd, new_fd), (), None, None, None)


# sched_setattr(2).
def scheduler(policy: int, flags: int, nice: int, priority: int, runtime: int, deadline: int,
              period: int, desc: str) -> Op:
    return (SCHEDULER, desc, (policy, flags, nice, priority, runtime, deadline, period), (),
            None, None, None)


# ioprio_set(2) with class << 13 | priority.
def ioprio(value: int, desc: str) -> Op:
    return (IOPRIO, desc, (value,), (), None, None, None)


def affinity(cpus: list[int], desc: str) -> Op:
    return (AFFINITY, desc, (), (), None, None, cpus)


# set_mempolicy(2); `mode` carries the MPOL_F_* flags.
def mempolicy(mode: int, nodes: list[int], desc: str) -> Op:
    return (MEMPOLICY, desc, (mode,), (), None, None, nodes)


def personality(persona: int, desc: str) -> Op:
    return (PERSONALITY, desc, (persona,), (), None, None, None)


# Load the BPF `program` with SECCOMP_FILTER_FLAG_* `flags`; a listener's fd goes to the parent.
def seccomp(program: bytes, flags: int, desc: str = "load the seccomp filter") -> Op:
    return (SECCOMP, desc, (flags,), (), None, None, program)


def mount_setattr(target: str, attr_set: int, attr_clr: int, desc: str,
                  recursive: bool = True) -> Op:
    return (MOUNT_SETATTR, desc, (attr_set, attr_clr, int(recursive)), (target,), None, None, None)


# Attach the detached mount tree `tree_fd` (an idmapped one) at `target`.
def move_mount(tree_fd: int, target: str, target_mode: int, desc: str) -> Op:
    return (MOVE_MOUNT, desc, (tree_fd, 0, target_mode), (target,), None, None, None)


# Close every fd from `first_fd` on but those in `keep`.
def close_others(first_fd: int, keep: list[int], desc: str) -> Op:
    return (CLOSE_OTHERS, desc, (first_fd,), (), None, None, keep)


# A tmpfs at `target` (a directory, TGT_* flags `target_flags` or-ed), its root taking the covered
# directory's mode, and with `copyup` its content.
def tmpfs(source: str, target: str, flags: int, data: str, copyup: bool, target_flags: int,
          desc: str) -> Op:
    return (TMPFS, desc, (flags, int(copyup), target_flags), (source, target, "tmpfs", data),
            None, None, None)


# stdio becomes the process user's (runc).
def fix_stdio(uid: int, desc: str = "fix stdio permissions") -> Op:
    return (FIX_STDIO, desc, (uid,), (), None, None, None)


# Run a hook from the init, the state JSON on its stdin with the init's pid between `state_head`
# and `state_tail`; `timeout` 0: none.
def hook(path: str, argv: list[str], envp: list[str], state_head: str, state_tail: str,
         timeout: int, desc: str) -> Op:
    return (HOOK, desc, (timeout,), (path, state_head, state_tail), argv, envp, None)


# Unmount (else cover) the full procfs or sysfs at `path`, an absolute host path.
def hide_mount(path: str, desc: str) -> Op:
    return (HIDE_MOUNT, desc, (), (path,), None, None, None)


def dumpable(on: bool, desc: str) -> Op:
    return (DUMPABLE, desc, (int(on),), (), None, None, None)


# Receive `count` bind mount sources the runtime opened, one fd per message.
def recv_sources(count: int, desc: str) -> Op:
    return (RECV_SOURCES, desc, (count,), (), None, None, None)


# --- the codes, for the executor's build ----------------------------------------------------------


def codes() -> dict[str, int]:
    """{name: value} of every operation code (OP_name in the executor) and mode or flag
    (TGT_name, PIVOT_name, ...), as this module defines them."""
    return {("" if k.startswith(MODE_PREFIXES) else "OP_") + k: v for k, v in globals().items()
            if k.isupper() and type(v) is int}  # fmt: skip


def pxi() -> str:
    """The Cython declarations of `codes()`, and `op_codes()` returning them as compiled."""
    values = codes()
    def group(name: str) -> int:  # the codes first, then each op's modes together
        return next((i for i, p in enumerate(MODE_PREFIXES, 1) if name.startswith(p)), 0)

    names = sorted(values, key=lambda k: (group(k), values[k]))
    body = "".join(f"    {n} = {values[n]}\n" for n in names)
    listing = "".join(f"        {n!r}: {n},\n" for n in names)
    return ("# generated by setup.py from pyrunc/instructions.py (instructions.pxi()): edit that"
            " file\n"
            f"cdef enum:\n{body}\n\ndef op_codes():\n"
            f"    \"\"\"The codes as this extension was compiled with (tests/test_ops.py).\"\"\"\n"
            f"    return {{\n{listing}    }}\n")
