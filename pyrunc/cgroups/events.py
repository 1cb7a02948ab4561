"""`events`: runc's JSON event stream, `{"type":"stats",...}` every interval and
`{"type":"oom","id":...}` as OOM notifications arrive.

OOM notifications: on v1 the kernel signals an eventfd registered through
`cgroup.event_control` against `memory.oom_control` (one event per OOM condition, as runc
reports); on v2 the `oom_kill` counter of `memory.events` is watched.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from pyrunc import syscall
from pyrunc.cgroups.manager import Cgroups
from pyrunc.cgroups.stats import stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, TypedDict

    from pyrunc.cgroups.stats import Stats

    class OomEvent(TypedDict):
        type: Literal["oom"]
        id: str

    class StatsEvent(TypedDict):
        """runc's types.Event of a stats sample (`events --stats` prints one)."""

        type: Literal["stats"]
        id: str
        data: Stats

TICK = 0.25  # how often liveness (and the v2 counter) is checked between stats


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration subset runc's --interval takes: `5s`, `500ms`, `1m30s`, `1.5s`;
    a bare number means seconds."""
    from pyrunc.errors import PyruncError

    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    total, i = 0.0, 0
    if not s:
        raise PyruncError(f"invalid duration {text!r}")
    while i < len(s):
        j = i
        while j < len(s) and (s[j].isdigit() or s[j] == "."):
            j += 1
        k = j
        while k < len(s) and not (s[k].isdigit() or s[k] == "."):
            k += 1
        number, unit = s[i:j], s[j:k]
        if not number or unit not in units:
            raise PyruncError(f"invalid duration {text!r}")
        try:
            total += float(number) * units[unit]
        except ValueError:
            raise PyruncError(f"invalid duration {text!r}") from None
        i = k
    return total


class OomWatcher:
    """Counts OOM notifications of the container's memory cgroup."""

    def __init__(self, cg: Cgroups) -> None:
        self.efd = -1
        self.v2_file: str | None = None
        self.mem_dir: str | None = None
        self.count = 0
        mem = cg.dir_for("memory")
        if mem is None:
            return
        if cg.layout == "v2":
            self.v2_file = os.path.join(mem, "memory.events")
            self.count = self._v2_count(self.v2_file)
            return
        try:
            self.efd = syscall.get().oom_eventfd(mem)
        except OSError:
            return
        self.mem_dir = mem

    def _v2_count(self, path: str) -> int:
        try:
            for line in syscall.get().read(path).decode().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return self.count

    def wait(self, timeout: float) -> int:
        """Sleep up to `timeout` (less if an OOM arrives); the number of new OOM events."""
        sys_ = syscall.get()
        if self.efd >= 0:
            if not sys_.wait_readable(self.efd, int(max(timeout, 0) * 1000)):
                return 0
            count = sys_.read_eventfd(self.efd)
            if not count:
                return 0
            if not sys_.exists(os.path.join(self.mem_dir or "", "memory.oom_control")):
                self.close()  # the kernel also signals the eventfd when the cgroup is removed
                return 0
            return count
        time.sleep(max(timeout, 0))
        if self.v2_file is None:
            return 0
        now = self._v2_count(self.v2_file)
        new, self.count = max(now - self.count, 0), now
        return new

    def close(self) -> None:
        if self.efd >= 0:
            syscall.get().close(self.efd)
            self.efd = -1


def stats_event(container_id: str, cg: Cgroups) -> StatsEvent:
    return {"type": "stats", "id": container_id, "data": stats(cg)}


def emit(event: StatsEvent | OomEvent, write: Callable[[str], object]) -> None:
    write(json.dumps(event, separators=(",", ":")) + "\n")


def stream(container_id: str, cg: Cgroups, interval: float, alive: Callable[[], bool],
           write: Callable[[str], object], flush: Callable[[], object] = lambda: None) -> None:
    """OOM events as they come, stats every `interval`, until the container stops."""
    watcher = OomWatcher(cg)
    try:
        next_stats = time.monotonic() + interval
        while True:
            timeout = min(TICK, next_stats - time.monotonic())
            for _ in range(watcher.wait(timeout)):
                emit({"type": "oom", "id": container_id}, write)
            if time.monotonic() >= next_stats:
                if not alive():
                    return
                emit(stats_event(container_id, cg), write)
                next_stats += interval
                if next_stats < time.monotonic():
                    next_stats = time.monotonic() + interval
            flush()
            if not alive():
                return
    finally:
        watcher.close()
