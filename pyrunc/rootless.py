"""Rootless: pyrunc run by an unprivileged user (runc's rootless mode is the reference).

Two separate questions, as in runc:

- *rootless EUID*: the caller is not root (euid != 0). Then the state root defaults to
  `$XDG_RUNTIME_DIR/pyrunc`, the id maps of a new user namespace are written the way an
  unprivileged process may (its own id directly, anything more through the setuid
  newuidmap/newgidmap helpers), and the container needs a user namespace.
- *rootless cgroups* (`--rootless auto|true|false`): cgroups are used only where the caller may
  write them; otherwise the container has none, which is refused only when the config asks
  for resources. auto means: not root, or root in a user namespace that is not the host's.

Imported by the hot commands (for the default root): the standard library and pyrunc.syscall
(os alone) only, nothing heavy.
"""

from __future__ import annotations

import os

from pyrunc import syscall
from pyrunc.errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.spec.compiled import Spec

DEFAULT_ROOT = "/run/pyrunc"  # pyrunc.state.DEFAULT_ROOT
_TRUE = ("1", "t", "T", "true", "TRUE", "True")  # what Go's strconv.ParseBool takes (runc)
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def in_user_namespace() -> bool:
    """True when this process is not in the host's (initial) user namespace."""
    try:
        fields = syscall.get().read("/proc/self/uid_map").decode().split()
    except OSError:
        return False
    return fields != ["0", "0", "4294967295"]


def honor_xdg_runtime_dir() -> bool:
    """runc's rule: not root, or root in a user namespace whose $USER is not root."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        return False
    if syscall.get().geteuid() != 0:
        return True
    if not in_user_namespace():
        return False
    return os.environ.get("USER", "") != "root"


def default_root() -> str:
    """The state root when --root is not given: $XDG_RUNTIME_DIR/pyrunc for a rootless caller
    (made 0700 with the sticky bit, so that the XDG clean-up does not prune it), else
    /run/pyrunc."""
    if not honor_xdg_runtime_dir():
        return DEFAULT_ROOT
    root = os.path.join(os.environ["XDG_RUNTIME_DIR"], "pyrunc")
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        os.chmod(root, 0o1700)
    except OSError as e:
        raise PyruncError(f"cannot create root directory {root}: {e.strerror}") from None
    return root


def parse_flag(value: str | bool | None) -> bool | None:
    """--rootless: True, False or None (auto)."""
    if value is None or isinstance(value, bool):
        return value
    if value == "" or value.lower() == "auto":
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise PyruncError(f"invalid --rootless value {value!r}: want true, false or auto")


def rootless_cgroups(value: str | bool | None = None) -> bool:
    """Whether cgroups are used only where the caller may write them (--rootless)."""
    flag = parse_flag(value)
    if flag is not None:
        return flag
    return syscall.get().geteuid() != 0 or in_user_namespace()


def _map_text(mappings: tuple) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


def _own_id_only(mappings: tuple, own: int) -> bool:
    """One mapping of exactly our own id: what an unprivileged process may write itself."""
    return len(mappings) == 1 and mappings[0].size == 1 and mappings[0].host_id == own


def write_id_maps(pid: int, uid_mappings: tuple, gid_mappings: tuple) -> None:
    """uid_map and gid_map of the user namespace `pid` just made, as the caller may write them.

    Root writes both files itself. An unprivileged caller writes a single mapping of its own
    uid (gid) itself (the gid one after denying setgroups, which the kernel requires), and
    hands anything else to the setuid newuidmap/newgidmap helpers, which check the ranges
    against /etc/subuid and /etc/subgid (what podman sets up for a rootless user).

    Safe from redirection (S4/S14): the path is in the runtime's own /proc, which nothing of the
    container can mount over (the init mounts in its own namespace, beneath the rootfs, after
    making "/" private; without a mount namespace still only beneath the rootfs), and the pid
    is our own child, unreaped while it waits at the sync point, so it cannot be reused.
    """
    for kind, mappings in (("uid", uid_mappings), ("gid", gid_mappings)):
        if not mappings:
            field = "uidMappings" if kind == "uid" else "gidMappings"
            raise PyruncError(f"config.json: linux.{field}: required with a new user namespace")
    sys_ = syscall.get()
    unprivileged = sys_.geteuid() != 0
    for kind, mappings, own in (
        ("uid", uid_mappings, sys_.geteuid()),
        ("gid", gid_mappings, sys_.getegid()),
    ):
        if unprivileged and not _own_id_only(mappings, own):
            _run_helper(f"new{kind}map", pid, mappings)
            continue
        if unprivileged and kind == "gid":
            _write_proc(pid, "setgroups", "deny")
        _write_proc(pid, f"{kind}_map", _map_text(mappings))


def _write_proc(pid: int, name: str, text: str) -> None:
    try:
        syscall.get().write(f"/proc/{pid}/{name}", text)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise PyruncError(f"write {name} of the init: {reason}") from None


def _run_helper(helper: str, pid: int, mappings: tuple) -> None:
    """newuidmap/newgidmap PID ID HOSTID SIZE...; its own message on failure."""
    import shutil
    import subprocess

    path = shutil.which(helper, path=os.environ.get("PATH") or "/usr/bin:/bin")
    kind = helper[3:6]
    if path is None:
        raise PyruncError(
            f"config.json: linux.{kind}Mappings: more than the caller's own {kind} needs "
            f"{helper} (Debian's uidmap package), which is not installed"
        )
    argv = [path, str(pid)]
    for m in mappings:
        argv += [str(m.container_id), str(m.host_id), str(m.size)]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, close_fds=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise PyruncError(
            f"{helper} {pid}: {detail[-1] if detail else f'exit status {proc.returncode}'}"
        )


def check_rootless_config(spec: Spec) -> None:
    """What an unprivileged caller's config must have (runc's rootless validation): a user
    namespace with both maps, and uid=/gid= mount options only for ids mapped in it."""
    from pyrunc.errors import ConfigError

    linux = spec.linux
    if linux is None or not any(ns.type == "user" for ns in linux.namespaces or ()):
        raise ConfigError(
            "config.json: linux.namespaces: a rootless container requires a user namespace "
            "(pyrunc is not run as root; see `pyrunc spec --rootless`)"
        )
    new_userns = any(ns.type == "user" and not ns.path for ns in linux.namespaces)
    if not new_userns:
        return
    for field, mappings in (("uidMappings", linux.uid_mappings),
                            ("gidMappings", linux.gid_mappings)):
        if not mappings:
            raise ConfigError(
                f"config.json: linux.{field}: a rootless container requires at least one mapping"
            )
    for i, mount in enumerate(spec.mounts or ()):
        for option in mount.options or ():
            key, eq, value = option.partition("=")
            if not eq or key not in ("uid", "gid") or not value.isdigit():
                continue
            mappings = linux.uid_mappings if key == "uid" else linux.gid_mappings
            n = int(value)
            if not any(m.container_id <= n < m.container_id + m.size for m in mappings):
                raise ConfigError(
                    f"config.json: mounts[{i}].options: {option}: {key} {n} is not mapped in "
                    "the user namespace of this rootless container"
                )
