"""Cgroups for a rootless container: only a cgroup2 subtree the caller may write (delegated to
it, as systemd's Delegate=yes or an administrator's chown does), else none at all.

runc's rootless cgroup manager is the reference: without a writable cgroup, a config that asks
for resources is refused with a clear line, one that does not (the device rules aside, which a
rootless container cannot have enforced anyway) runs without cgroups. v1 hierarchies and any
cgroup the caller does not own are never touched: the container's processes simply stay in
the caller's cgroups there.
"""

from __future__ import annotations

import os

from pyrunc import syscall
from pyrunc.cgroups import layout as layout_mod
from pyrunc.cgroups import paths
from pyrunc.errors import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.spec.compiled import Spec

# LinuxResources fields that need a cgroup; `devices` is left out (see the module docstring)
_RESOURCE_FIELDS = ("memory", "cpu", "pids", "block_io", "hugepage_limits", "network", "rdma",
                    "unified")


def own_cgroups() -> dict[str, str]:
    """{hierarchy key: cgroup path} of this process ("" is cgroup2), from /proc/self/cgroup."""
    out: dict[str, str] = {}
    for line in layout_mod.read_text("/proc/self/cgroup").splitlines():
        _, key, path = line.split(":", 2)
        out[key] = path
    return out


def requested(resources: object | None) -> list[str]:
    """The linux.resources fields the config sets, devices aside (empty values are unset)."""
    if resources is None:
        return []
    out = []
    for name in _RESOURCE_FIELDS:
        value = getattr(resources, name, None)
        if value is None or value == () or value == {}:
            continue
        if hasattr(value, "__slots__") and all(
            getattr(value, s, None) in (None, (), {}) for s in value.__slots__
        ):
            continue  # {"memory": {}}: nothing asked
        out.append(name)
    return out


def _writable(directory: str) -> bool:
    """The caller may make cgroups in `directory` and move processes out of it."""
    sys_ = syscall.get()
    return (sys_.access(directory, os.W_OK | os.X_OK)
            and sys_.access(os.path.join(directory, "cgroup.procs"), os.W_OK))


def target(spec: Spec, container_id: str, root: str | None) -> str | None:
    """The container's cgroup2 path if the caller may have one, else None.

    A relative or absent linux.cgroupsPath goes below the caller's own cgroup2 cgroup (as runc
    nests it), an absolute one is taken as is; either way the nearest existing ancestor must be
    writable by the caller, and so must the caller's own cgroup (the init is moved out of it).
    """
    lay = layout_mod.detect()
    h = lay.unified
    if h is None:
        return None
    own = own_cgroups().get("")
    if own is None:
        return None
    cgroups_path = spec.linux.cgroups_path if spec.linux else None
    path = paths.resolve(cgroups_path, container_id, root)
    if not (cgroups_path or "").startswith("/"):
        path = own.rstrip("/") + path
    own_dir = h.dir(own)
    if not _writable(own_dir):
        return None
    d = os.path.dirname(h.dir(path))
    while not syscall.get().isdir(d) and d.startswith(h.mount + "/"):
        d = os.path.dirname(d)
    if not _writable(d):
        return None
    return path


def refuse_resources(spec: Spec) -> None:
    """No cgroup for this rootless container: resources it asks for cannot be applied."""
    asked = requested(spec.linux.resources if spec.linux else None)
    if asked:
        raise CgroupError(
            f"config.json: linux.resources.{asked[0]}: a rootless container can only have "
            "resources in a cgroup2 subtree delegated to the caller, and there is none "
            "(the caller's cgroup is not writable by it)"
        )


def mount_paths(spec: Spec, container_id: str, root: str | None) -> dict[str, str]:
    """{hierarchy key: cgroup path} the init will be in, for the container's /sys/fs/cgroup:
    its own cgroup2 cgroup if it gets one, the caller's cgroups everywhere else."""
    out = own_cgroups()
    path = target(spec, container_id, root)
    if path is not None:
        out[""] = path
    return out
