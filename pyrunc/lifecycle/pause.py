"""`pause` and `resume`: the freezer (v1 freezer.state, v2 cgroup.freeze). Hot path: no spec
model, the freezer is found from state.json."""

from __future__ import annotations

from pyrunc.cgroups.manager import Cgroups, from_runtime
from pyrunc.errors import CgroupError, StateError
from pyrunc.state import Container, StateStore


def _cgroups(container: Container) -> Cgroups:
    cg = from_runtime(container.runtime)
    if cg is None or cg.freezer_file is None:
        raise CgroupError(f"container {container.id} has no freezer cgroup")
    return cg


def pause(store: StateStore, container_id: str) -> None:
    lock, container = store.lock(container_id)
    with lock:
        # runc pauses created and running containers alike
        if container.status not in ("running", "created"):
            raise StateError("container not running")
        _cgroups(container).freeze()


def resume(store: StateStore, container_id: str) -> None:
    lock, container = store.lock(container_id)
    with lock:
        if container.status != "paused":
            raise StateError("container not paused")
        _cgroups(container).thaw()
