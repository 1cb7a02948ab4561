"""`events`: stats once (`--stats`) or a stream of stats and OOM events until the container
stops. The lock is only held while reading the state, so `delete` is never held up."""

from __future__ import annotations

import sys

from pyrunc.cgroups.manager import Cgroups, from_runtime
from pyrunc.errors import CgroupError, StateError
from pyrunc.procfs import process_alive
from pyrunc.state import StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.cgroups.events import StatsEvent


def _load(store: StateStore, container_id: str) -> tuple[Cgroups, int, str]:
    lock, container = store.lock(container_id, exclusive=False)
    with lock:
        if container.status == "stopped":
            raise StateError(f"container with id {container_id} is not running")
        cg = from_runtime(container.runtime)
        if cg is None:
            raise CgroupError(f"container {container_id} has no cgroups")
        return cg, container.pid, container.runtime.get("init_start_time", "")


def stats(store: StateStore, container_id: str) -> StatsEvent:
    """One `{"type": "stats", ...}` event."""
    from pyrunc.cgroups.events import stats_event

    cg, _, _ = _load(store, container_id)
    return stats_event(container_id, cg)


def events(store: StateStore, container_id: str, interval: float, stats_only: bool) -> None:
    from pyrunc.cgroups import events as ev

    cg, pid, start_time = _load(store, container_id)
    out = sys.stdout
    if stats_only:
        ev.emit(ev.stats_event(container_id, cg), out.write)
        return
    if interval <= 0:
        raise StateError("duration interval must be greater than 0")
    ev.stream(container_id, cg, interval, lambda: process_alive(pid, start_time), out.write,
              out.flush)
