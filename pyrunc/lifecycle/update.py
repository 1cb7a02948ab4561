"""`update`: apply a LinuxResources document to a live container's cgroups.

As with runc, the device rules of the document are not applied (they were set at create); every
other absent field is left untouched, and a field this host cannot apply is an error naming it.
"""

from __future__ import annotations

from pyrunc.cgroups import layout, resources
from pyrunc.cgroups.manager import from_runtime
from pyrunc.errors import CgroupError, StateError
from pyrunc.log import get_logger
from pyrunc.state import StateStore


def update(store: StateStore, container_id: str, document: bytes | str | dict,
           source: str = "resources") -> None:
    from pyrunc.spec.loader import load_resources

    res = load_resources(document, source)
    lock, container = store.lock(container_id)
    with lock:
        if container.status == "stopped":
            raise StateError("container not running")
        cg = from_runtime(container.runtime)
        if cg is None:
            raise CgroupError(f"container {container_id} has no cgroups")
        plan = resources.plan(res, cg.host(layout.detect()), update=True)
        for warning in plan.warnings:
            get_logger().warning(warning)
        if res.devices:
            get_logger().debug("update: device rules are kept as created (as runc)")
        cg.apply(plan)
