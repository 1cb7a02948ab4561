"""A container's resource usage in the shape of runc's `events` JSON (`types.Stats`).

Fields runc tags `omitempty` are left out when zero, so the output reads like runc's:
`{"cpu": {"usage": {...}, "throttling": {...}}, "cpuset": {...}, "memory": {...},
"pids": {...}, "blkio": {...}, "hugetlb": {...}, "intel_rdt": {}, "network_interfaces": null}`.
"""

from __future__ import annotations

import os

from pyrunc import syscall
from pyrunc.cgroups.manager import Cgroups

TYPE_CHECKING = False
if TYPE_CHECKING:  # runc 1.1.5's types.Stats; total=False: what runc tags omitempty
    from collections.abc import Mapping
    from typing import Literal, Required, TypedDict, TypeVar

    _D = TypeVar("_D", bound=Mapping[str, object])
    BlkioKey = Literal["ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive",
                       "ioServiceTimeRecursive", "ioWaitTimeRecursive", "ioMergedRecursive",
                       "ioTimeRecursive", "sectorsRecursive"]

    class CpuUsage(TypedDict, total=False):
        total: int  # nanoseconds, as every time here
        percpu: list[int]
        percpu_kernel: list[int]
        percpu_user: list[int]
        kernel: Required[int]
        user: Required[int]

    class Throttling(TypedDict, total=False):
        periods: int
        throttledPeriods: int
        throttledTime: int

    class Cpu(TypedDict):
        usage: CpuUsage
        throttling: Throttling

    class CpuSet(TypedDict, total=False):
        cpus: list[int]
        cpu_exclusive: int
        mems: list[int]
        mem_hardwall: int
        mem_exclusive: int
        memory_migrate: int
        memory_spread_page: int
        memory_spread_slab: int
        memory_pressure: int
        sched_load_balance: int
        sched_relax_domain_level: int

    class MemoryEntry(TypedDict, total=False):
        limit: Required[int]
        usage: int
        max: int
        failcnt: Required[int]

    class Memory(TypedDict, total=False):
        cache: int
        usage: MemoryEntry
        swap: MemoryEntry
        kernel: MemoryEntry
        kernelTCP: MemoryEntry
        raw: dict[str, int]

    class Pids(TypedDict, total=False):
        current: int
        limit: int

    class BlkioEntry(TypedDict, total=False):
        major: int
        minor: int
        op: str
        value: int

    class Blkio(TypedDict, total=False):
        ioServiceBytesRecursive: list[BlkioEntry]
        ioServicedRecursive: list[BlkioEntry]
        ioQueueRecursive: list[BlkioEntry]
        ioServiceTimeRecursive: list[BlkioEntry]
        ioWaitTimeRecursive: list[BlkioEntry]
        ioMergedRecursive: list[BlkioEntry]
        ioTimeRecursive: list[BlkioEntry]
        sectorsRecursive: list[BlkioEntry]

    class Hugetlb(TypedDict, total=False):
        usage: int
        max: int
        failcnt: Required[int]

    class Stats(TypedDict):
        """The `data` of a stats event."""

        cpu: Cpu
        cpuset: CpuSet
        memory: Memory
        pids: Pids
        blkio: Blkio
        hugetlb: dict[str, Hugetlb]  # by page size ("2MB")
        intel_rdt: dict[str, object]  # always empty: no RDT support
        network_interfaces: None

UNLIMITED_V2 = 2**64 - 1  # runc reports a v2 "max" as MaxUint64
USER_HZ = 100


def _read(d: str | None, name: str) -> str | None:
    if d is None:
        return None
    try:
        return syscall.get().read(os.path.join(d, name)).decode()
    except (OSError, UnicodeDecodeError):
        return None


def _names(d: str | None) -> list[str]:
    """The files of a cgroup directory; none when it is gone (the container stopped)."""
    if d is None:
        return []
    try:
        return syscall.get().listdir(d)
    except OSError:
        return []


def _int(d: str | None, name: str, max_value: int = 0) -> int:
    text = (_read(d, name) or "").strip()
    if text == "max":
        return max_value
    try:
        return int(text)
    except ValueError:
        return 0


def _kv(text: str | None) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat, ...)."""
    out = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _nonzero(d: _D, *keep: str) -> _D:
    """`d` without its zero values but those of `keep` (runc's omitempty), in its order."""
    return {k: v for k, v in d.items()  # type: ignore[return-value]
            if k in keep or v not in (0, None, "", [], {})}


def parse_list(text: str) -> list[int]:
    """`0-3,7` -> [0, 1, 2, 3, 7]."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return out


def _entry(limit: int, usage: int, max_: int, failcnt: int) -> MemoryEntry:
    """types.MemoryEntry: usage and max omitempty."""
    entry: MemoryEntry = {"limit": limit, "usage": usage, "max": max_, "failcnt": failcnt}
    return _nonzero(entry, "limit", "failcnt")


def _blkio_entries(text: str | None) -> list[BlkioEntry]:
    """`MAJ:MIN Op value` lines (`MAJ:MIN value` in the sectors and time files: no op); the
    device-less `Total` line is skipped, as runc does."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) not in (2, 3) or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        try:
            entry: BlkioEntry = {"major": int(major), "minor": int(minor),
                                 "op": parts[1] if len(parts) == 3 else "",
                                 "value": int(parts[-1])}
        except ValueError:
            continue
        out.append(_nonzero(entry))
    return out


def _blkio_group(prefix: str) -> tuple[tuple[BlkioKey, str], ...]:
    """The proportional-weight (CFQ or BFQ) files, in the order runc reads them."""
    return (("sectorsRecursive", f"{prefix}sectors_recursive"),
            ("ioServiceTimeRecursive", f"{prefix}io_service_time_recursive"),
            ("ioWaitTimeRecursive", f"{prefix}io_wait_time_recursive"),
            ("ioMergedRecursive", f"{prefix}io_merged_recursive"),
            ("ioQueueRecursive", f"{prefix}io_queued_recursive"),
            ("ioTimeRecursive", f"{prefix}time_recursive"),
            ("ioServicedRecursive", f"{prefix}io_serviced_recursive"),
            ("ioServiceBytesRecursive", f"{prefix}io_service_bytes_recursive"))


# runc 1.1.5's fs.BlkioGroup.GetStats: the first group whose first file has entries is read,
# up to its first file without any (BFQ with its debug files, BFQ, CFQ, the throttle
# policy's recursive files, its non-recursive ones): not the first whose files exist, which
# on a host where BFQ is available but not the disk's scheduler are empty.
BLKIO_GROUPS: tuple[tuple[tuple[BlkioKey, str], ...], ...] = (
    _blkio_group("blkio.bfq."),
    (("ioServicedRecursive", "blkio.bfq.io_serviced_recursive"),
     ("ioServiceBytesRecursive", "blkio.bfq.io_service_bytes_recursive")),
    _blkio_group("blkio."),
    (("ioServicedRecursive", "blkio.throttle.io_serviced_recursive"),
     ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive")),
    (("ioServicedRecursive", "blkio.throttle.io_serviced"),
     ("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes")),
)
# types.Blkio's field order, which its JSON follows whatever order the files were read in
BLKIO_KEYS: tuple[BlkioKey, ...] = (
    "ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive",
    "ioServiceTimeRecursive", "ioWaitTimeRecursive", "ioMergedRecursive", "ioTimeRecursive",
    "sectorsRecursive")


def _blkio_v1(d: str | None) -> Blkio:
    found: dict[BlkioKey, list[BlkioEntry]] = {}
    if d is not None:
        for group in BLKIO_GROUPS:
            for key, name in group:
                entries = _blkio_entries(_read(d, name))
                if not entries:
                    break
                found[key] = entries
            if found:
                break
    out: Blkio = {}
    for key in BLKIO_KEYS:
        if key in found:
            out[key] = found[key]
    return out


def _cpuset(d: str | None, prefix: str = "cpuset.") -> CpuSet:
    out: CpuSet = {}
    cpus = parse_list(_read(d, prefix + "cpus") or "")
    if cpus:
        out["cpus"] = cpus
    out["cpu_exclusive"] = _int(d, prefix + "cpu_exclusive")
    mems = parse_list(_read(d, prefix + "mems") or "")
    if mems:
        out["mems"] = mems
    for name in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                 "memory_spread_slab", "memory_pressure", "sched_load_balance",
                 "sched_relax_domain_level"):
        out[name] = _int(d, prefix + name)
    return out


def _pids(d: str | None) -> Pids:
    return {"current": _int(d, "pids.current"), "limit": _int(d, "pids.max")}


def stats_v1(cg: Cgroups) -> Stats:
    acct = cg.dir_for("cpuacct")
    cpu_dir = cg.dir_for("cpu")
    stat = _kv(_read(acct, "cpuacct.stat"))
    ns = 1_000_000_000 // USER_HZ
    usage: CpuUsage = {
        "total": _int(acct, "cpuacct.usage"),
        "percpu": [int(x) for x in (_read(acct, "cpuacct.usage_percpu") or "").split()],
        "percpu_kernel": [int(x) for x in (_read(acct, "cpuacct.usage_percpu_sys") or "").split()],
        "percpu_user": [int(x) for x in (_read(acct, "cpuacct.usage_percpu_user") or "").split()],
        "kernel": stat.get("system", 0) * ns,
        "user": stat.get("user", 0) * ns,
    }
    cstat = _kv(_read(cpu_dir, "cpu.stat"))
    throttling: Throttling = {
        "periods": cstat.get("nr_periods", 0),
        "throttledPeriods": cstat.get("nr_throttled", 0),
        "throttledTime": cstat.get("throttled_time", 0),
    }
    mem = cg.dir_for("memory")
    memory: Memory = {}
    if mem is None:  # runc's types.Memory has its four entries whatever it read
        memory = {"usage": _entry(0, 0, 0, 0), "swap": _entry(0, 0, 0, 0),
                  "kernel": _entry(0, 0, 0, 0), "kernelTCP": _entry(0, 0, 0, 0)}
    else:
        raw = _kv(_read(mem, "memory.stat"))
        if raw.get("cache"):
            memory["cache"] = raw["cache"]

        def entry(prefix: str) -> MemoryEntry:
            return _entry(
                _int(mem, prefix + "limit_in_bytes"), _int(mem, prefix + "usage_in_bytes"),
                _int(mem, prefix + "max_usage_in_bytes"), _int(mem, prefix + "failcnt"),
            )

        memory["usage"] = entry("memory.")
        memory["swap"] = entry("memory.memsw.")
        memory["kernel"] = entry("memory.kmem.")
        memory["kernelTCP"] = entry("memory.kmem.tcp.")
        if raw:
            memory["raw"] = dict(sorted(raw.items()))  # a Go map: its JSON keys sorted
    pids = cg.dir_for("pids")
    blkio = _blkio_v1(cg.dir_for("blkio"))
    hugetlb: dict[str, Hugetlb] = {}
    hdir = cg.dir_for("hugetlb")
    if hdir is not None:
        for name in sorted(_names(hdir)):
            if name.startswith("hugetlb.") and name.endswith(".limit_in_bytes") \
                    and ".rsvd." not in name:
                size = name[len("hugetlb."):-len(".limit_in_bytes")]
                page: Hugetlb = {
                    "usage": _int(hdir, f"hugetlb.{size}.usage_in_bytes"),
                    "max": _int(hdir, f"hugetlb.{size}.max_usage_in_bytes"),
                    "failcnt": _int(hdir, f"hugetlb.{size}.failcnt"),
                }
                hugetlb[size] = _nonzero(page, "failcnt")
    return {
        "cpu": {"usage": _nonzero(usage, "kernel", "user"), "throttling": _nonzero(throttling)},
        "cpuset": _cpuset(cg.dir_for("cpuset")),
        "memory": memory,
        "pids": _nonzero(_pids(pids)),
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


def stats_v2(cg: Cgroups) -> Stats:
    d = cg.dir(UNIFIED_KEY)
    cstat = _kv(_read(d, "cpu.stat"))
    usage: CpuUsage = {"total": cstat.get("usage_usec", 0) * 1000,
                       "kernel": cstat.get("system_usec", 0) * 1000,
                       "user": cstat.get("user_usec", 0) * 1000}
    throttling: Throttling = {
        "periods": cstat.get("nr_periods", 0),
        "throttledPeriods": cstat.get("nr_throttled", 0),
        "throttledTime": cstat.get("throttled_usec", 0) * 1000,
    }
    raw = _kv(_read(d, "memory.stat"))
    memory: Memory = {}
    if raw.get("file"):
        memory["cache"] = raw["file"]
    events = _kv(_read(d, "memory.events"))
    current = _int(d, "memory.current")
    limit = _int(d, "memory.max", UNLIMITED_V2)
    memory["usage"] = _entry(limit, current, _int(d, "memory.peak"), events.get("max", 0))
    swap_limit = _int(d, "memory.swap.max", UNLIMITED_V2)
    swap_current = _int(d, "memory.swap.current")
    memory["swap"] = _entry(
        UNLIMITED_V2 if UNLIMITED_V2 in (limit, swap_limit) else limit + swap_limit,
        current + swap_current, 0, 0,
    )
    # cgroup2 has no kmem counters; runc's types.Memory still has the entries, zero
    memory["kernel"] = memory["kernelTCP"] = _entry(0, 0, 0, 0)
    if raw:
        memory["raw"] = dict(sorted(raw.items()))  # a Go map: its JSON keys sorted
    reads: list[BlkioEntry] = []
    ios: list[BlkioEntry] = []
    for line in (_read(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for op, bkey, ikey in (("Read", "rbytes", "rios"), ("Write", "wbytes", "wios")):
            for out, key in ((reads, bkey), (ios, ikey)):
                entry: BlkioEntry = {"major": int(major), "minor": int(minor), "op": op,
                                     "value": int(kv.get(key, 0))}
                out.append(_nonzero(entry))
    blkio: Blkio = {}
    if reads:
        blkio = {"ioServiceBytesRecursive": reads, "ioServicedRecursive": ios}
    hugetlb: dict[str, Hugetlb] = {}
    for name in sorted(_names(d)):
        if name.startswith("hugetlb.") and name.endswith(".max") and ".rsvd." not in name:
            size = name[len("hugetlb."):-len(".max")]
            ev = _kv(_read(d, f"hugetlb.{size}.events"))
            page: Hugetlb = {"usage": _int(d, f"hugetlb.{size}.current"),
                             "failcnt": ev.get("max", 0)}
            hugetlb[size] = _nonzero(page, "failcnt")
    return {
        "cpu": {"usage": _nonzero(usage, "kernel", "user"), "throttling": _nonzero(throttling)},
        "cpuset": _cpuset(d, "cpuset.") if d else {},
        "memory": memory,
        "pids": _nonzero(_pids(d)),
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


UNIFIED_KEY = ""


def stats(cg: Cgroups) -> Stats:
    return stats_v2(cg) if cg.layout == "v2" else stats_v1(cg)
