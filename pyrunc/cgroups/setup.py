"""`create`'s part: make the container's cgroups, apply `linux.resources`, add the init.

Called just after the init passed its "namespaces" sync point: it is in its new namespaces and
mounts what needs no cgroup meanwhile (plan.py), but waits at its "cgroup" sync point before it
unshares its cgroup namespace (whose root becomes the cgroup it is put in here), mounts a cgroup
filesystem or a device, makes its devices, and before the hooks run.
"""

from __future__ import annotations

from pyrunc.cgroups import layout as layout_mod
from pyrunc.cgroups import paths, resources
from pyrunc.cgroups.manager import Cgroups, from_runtime
from pyrunc.errors import CgroupError, ConfigError

TYPE_CHECKING = False  # typing costs ~9 ms to import; the hot commands use this module
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyrunc.cgroups.manager import CgroupRecord
    from pyrunc.spec.compiled import Linux, Spec
    from pyrunc.state import RuntimeRecord


def setup(spec: Spec, container_id: str, pid: int, runtime: RuntimeRecord, *,
          root: str | None = None, rootless: bool = False,
          intent: Callable[[CgroupRecord | None], None] | None = None) -> Cgroups | None:
    """Create/join, check, write the resources, add `pid`. What is made is recorded in
    `runtime["cgroup"]` as it is made, so `destroy_recorded` can undo a failure half-way;
    `intent` gets what is about to be made before anything is (None: no cgroups at all).
    `rootless`: only a cgroup2 subtree the caller may write, else none (cgroups.rootless)."""
    linux = _linux(spec)
    lay = layout_mod.detect()
    if rootless:
        from pyrunc.cgroups import rootless as rl

        path = rl.target(spec, container_id, root)
        if path is None or lay.unified is None:  # target() found none either
            rl.refuse_resources(spec)
            if intent is not None:
                intent(None)
            return None
        lay = layout_mod.Layout("v2", [lay.unified], lay.v2_controllers)
        return _setup_in(lay, spec, path, pid, runtime, rootless=True, intent=intent)
    if not lay.hierarchies:
        if linux.resources is not None:
            raise CgroupError("linux.resources: this host has no cgroup hierarchy mounted")
        if intent is not None:
            intent(None)
        return None
    path = paths.resolve(linux.cgroups_path, container_id, root)
    return _setup_in(lay, spec, path, pid, runtime, intent=intent)


def _linux(spec: Spec) -> Linux:
    if spec.linux is None:  # compile_plan refused it before
        raise ConfigError("config.json: linux: required on Linux")
    return spec.linux


def _setup_in(lay: layout_mod.Layout, spec: Spec, path: str, pid: int, runtime: RuntimeRecord, *,
              rootless: bool = False,
              intent: Callable[[CgroupRecord | None], None] | None = None) -> Cgroups:
    linux = _linux(spec)
    record: CgroupRecord = {}
    runtime["cgroup"] = record
    cg = Cgroups.create(lay, path, record, own=not linux.cgroups_path, intent=intent)
    cg.check_usable()
    plan = resources.plan(linux.resources, cg.host(lay))
    if rootless:
        # an unprivileged caller cannot attach a device program (runc skips it too): the
        # container's devices are what its user namespace lets it open
        plan.device_rules = None
    if plan.warnings:
        from pyrunc.log import get_logger

        for w in plan.warnings:
            get_logger().warning(w)
    cg.apply(plan)
    cg.add_pid(pid)
    # {hierarchy: directory}: what `exec` joins its process to
    runtime["cgroup_paths"] = {d["key"]: d["dir"] for d in cg.dirs}
    if cg.freezer_file:
        runtime["freezer_state"] = cg.freezer_file
    return cg


def destroy_recorded(runtime: RuntimeRecord | None) -> None:
    """Undo `setup` after a failed create (the init is already dead): remove what was made."""
    if not runtime:
        return
    cg = from_runtime(runtime)
    if cg is not None:
        cg.destroy(timeout=2.0)


def container_path(spec: Spec, container_id: str, root: str | None = None,
                   rootless: bool = False) -> str | dict[str, str]:
    """The container's cgroup path (the same in every hierarchy), as `setup` will make it, for
    `rootfs.CgroupMounts` to bind the container's own cgroups before the init exists; for a
    rootless container {hierarchy key: path}, which differ."""
    if rootless:
        from pyrunc.cgroups.rootless import mount_paths

        return mount_paths(spec, container_id, root)
    return paths.resolve(spec.linux.cgroups_path if spec.linux else None, container_id, root)
