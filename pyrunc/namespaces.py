"""Namespace kinds: clone flags for new ones, setns for joined ones (by path)."""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

FLAGS: dict[str, int] = {
    "mount": CLONE_NEWNS,
    "cgroup": CLONE_NEWCGROUP,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "user": CLONE_NEWUSER,
    "pid": CLONE_NEWPID,
    "network": CLONE_NEWNET,
    "time": CLONE_NEWTIME,
}

# setns order for joined namespaces: the user namespace first (it owns the others), the mount
# namespace last (after it, host paths are no longer what they were). pid and time namespaces
# are joined by the parent around the clone (they only apply to children).
JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "mount")


class NamespacePlan:
    """Which namespaces are new (clone/unshare flags) and which are joined (open fds)."""

    __slots__ = ("new", "join", "kinds")

    def __init__(self) -> None:
        self.new: set[str] = set()
        self.join: dict[str, int] = {}
        self.kinds: set[str] = set()

    @property
    def clone_flags(self) -> int:
        """Flags for clone(); cgroup and time namespaces are made later (see plan)."""
        flags = 0
        for kind in self.new - {"cgroup", "time"}:
            flags |= FLAGS[kind]
        return flags

    def close(self) -> None:
        from pyrunc import syscall

        sys_ = syscall.get()
        for fd in self.join.values():
            try:
                sys_.close(fd)
            except OSError:
                pass
        self.join.clear()


NSFS_MAGIC = 0x6E736673


def open_namespace_file(path: str, field: str, kind: str) -> int:
    """An fd of the namespace file `path` names (a host path of the config's), of type `kind`.

    Looked at through O_PATH first: only a file on nsfs is then opened (through our own fd),
    so a FIFO there cannot hang create and a device node is never opened (S12's rule for
    host-side opens of paths a less trusted party chose). A namespace of another type is
    refused here, naming the field, rather than by setns(2) in the child after the clone."""
    from pyrunc import syscall

    sys_ = syscall.get()
    try:
        probe = sys_.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise ConfigError(f"config.json: {field}: {path}: {reason}") from None
    try:
        own = f"/proc/self/fd/{probe}"
        if sys_.statfs_type(own) != NSFS_MAGIC:
            raise ConfigError(f"config.json: {field}: {path}: not a namespace file")
        fd = sys_.open(own, os.O_RDONLY | os.O_CLOEXEC)
        try:
            flag = sys_.namespace_type(fd)
        except BaseException:
            sys_.close(fd)
            raise
        if flag != FLAGS[kind]:
            sys_.close(fd)
            found = next((k for k, v in FLAGS.items() if v == flag), f"type {flag:#x}")
            raise ConfigError(f"config.json: {field}: {path}: a {found} namespace, not {kind}")
        return fd
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise ConfigError(f"config.json: {field}: {path}: {reason}") from None
    finally:
        sys_.close(probe)


def resolve(namespaces: tuple) -> NamespacePlan:
    """Open the namespaces to join (host paths, resolved by the runtime) and list the new ones."""
    plan = NamespacePlan()
    try:
        for i, ns in enumerate(namespaces):
            kind = ns.type
            plan.kinds.add(kind)
            if not ns.path:
                plan.new.add(kind)
                continue
            plan.join[kind] = open_namespace_file(ns.path, f"linux.namespaces[{i}].path", kind)
    except BaseException:
        plan.close()
        raise
    return plan


# /proc/<pid>/ns names, in the order an outside process joins a container's namespaces
PROC_NS = (("ipc", "ipc"), ("uts", "uts"), ("network", "net"), ("cgroup", "cgroup"),
           ("mount", "mnt"))


def open_process_namespaces(
    pid: int, with_user: bool = False
) -> tuple[list[tuple[int, int, str]], int]:
    """Fds of the namespaces of `pid` that differ from ours: ([(fd, flag, kind)], pid ns fd).

    Used to run something inside a running container (hooks, exec). The pid namespace is
    returned apart: setns(CLONE_NEWPID) only applies to children, see ``_executor.spawn``.
    """
    from pyrunc import syscall

    sys_ = syscall.get()
    joined: list[tuple[int, int, str]] = []
    pid_fd = -1
    try:
        kinds = ((("user", "user"),) if with_user else ()) + PROC_NS + (("pid", "pid"),)
        for kind, name in kinds:
            path = f"/proc/{pid}/ns/{name}"
            if sys_.readlink(path) == sys_.readlink(f"/proc/self/ns/{name}"):
                continue
            fd = sys_.open(path, os.O_RDONLY | os.O_CLOEXEC)
            if kind == "pid":
                pid_fd = fd
            else:
                joined.append((fd, FLAGS[kind], kind))
    except OSError:
        for fd, _, _ in joined:
            sys_.close(fd)
        if pid_fd >= 0:
            sys_.close(pid_fd)
        raise
    return joined, pid_fd


def mapped_userns(uid_map: str, gid_map: str) -> int:
    """An fd of a fresh user namespace with these maps, for idmapped mounts.

    A throwaway process is cloned into a new user namespace; it waits at a sync point while its
    maps are written and the namespace is opened, then it is told to go away.
    """
    from pyrunc import _executor
    from pyrunc.instructions import sync

    pid, sock = _executor.spawn([sync("userns", "wait for the maps")], CLONE_NEWUSER)
    try:
        os.read(sock, 64)
        # the runtime's /proc and our own unreaped child (no container is involved yet)
        for name, text in (("uid_map", uid_map), ("gid_map", gid_map)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(sock)  # EOF: the process exits
        os.waitpid(pid, 0)
