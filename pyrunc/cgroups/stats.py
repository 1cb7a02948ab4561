"""A container's resource usage in the shape of runc's `events` JSON (`types.Stats`).

Fields runc tags `omitempty` are left out when zero, so the output reads like runc's:
`{"cpu": {"usage": {...}, "throttling": {...}}, "cpuset": {...}, "memory": {...},
"pids": {...}, "blkio": {...}, "hugetlb": {...}, "intel_rdt": {}, "network_interfaces": null}`.
"""

from __future__ import annotations

import os

from pyrunc import syscall
from pyrunc.cgroups.manager import Cgroups

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


def _nonzero(d: dict) -> dict:
    return {k: v for k, v in d.items() if v not in (0, None, [], {})}


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


def _entry(limit: int, usage: int, max_: int, failcnt: int) -> dict:
    """types.MemoryEntry: usage and max omitempty."""
    e: dict = {"limit": limit}
    if usage:
        e["usage"] = usage
    if max_:
        e["max"] = max_
    e["failcnt"] = failcnt
    return e


def _blkio_entries(text: str | None) -> list[dict]:
    """`MAJ:MIN Op value` lines; the device-less `Total` line is skipped, as runc does."""
    out = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        try:
            entry = {"major": int(major), "minor": int(minor), "op": parts[1],
                     "value": int(parts[2])}
        except ValueError:
            continue
        out.append(_nonzero(entry))
    return out


def _cpuset(d: str | None, prefix: str = "cpuset.") -> dict:
    out: dict = {}
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


def stats_v1(cg: Cgroups) -> dict:
    acct = cg.dir_for("cpuacct")
    cpu_dir = cg.dir_for("cpu")
    stat = _kv(_read(acct, "cpuacct.stat"))
    ns = 1_000_000_000 // USER_HZ
    usage = _nonzero({
        "total": _int(acct, "cpuacct.usage"),
        "percpu": [int(x) for x in (_read(acct, "cpuacct.usage_percpu") or "").split()],
        "percpu_kernel": [int(x) for x in (_read(acct, "cpuacct.usage_percpu_sys") or "").split()],
        "percpu_user": [int(x) for x in (_read(acct, "cpuacct.usage_percpu_user") or "").split()],
    })
    usage["kernel"] = stat.get("system", 0) * ns
    usage["user"] = stat.get("user", 0) * ns
    cstat = _kv(_read(cpu_dir, "cpu.stat"))
    throttling = _nonzero({
        "periods": cstat.get("nr_periods", 0),
        "throttledPeriods": cstat.get("nr_throttled", 0),
        "throttledTime": cstat.get("throttled_time", 0),
    })
    mem = cg.dir_for("memory")
    memory: dict = {}
    if mem is not None:
        raw = _kv(_read(mem, "memory.stat"))
        if raw.get("cache"):
            memory["cache"] = raw["cache"]

        def entry(prefix: str) -> dict:
            return _entry(
                _int(mem, prefix + "limit_in_bytes"), _int(mem, prefix + "usage_in_bytes"),
                _int(mem, prefix + "max_usage_in_bytes"), _int(mem, prefix + "failcnt"),
            )

        memory["usage"] = entry("memory.")
        memory["swap"] = entry("memory.memsw.")
        memory["kernel"] = entry("memory.kmem.")
        memory["kernelTCP"] = entry("memory.kmem.tcp.")
        if raw:
            memory["raw"] = raw
    pids = cg.dir_for("pids")
    blk = cg.dir_for("blkio")
    blkio: dict = {}
    if blk is not None:
        if syscall.get().exists(os.path.join(blk, "blkio.io_serviced_recursive")):  # CFQ
            names = {"ioServiceBytesRecursive": "blkio.io_service_bytes_recursive",
                     "ioServicedRecursive": "blkio.io_serviced_recursive",
                     "ioQueueRecursive": "blkio.io_queued_recursive",
                     "ioServiceTimeRecursive": "blkio.io_service_time_recursive",
                     "ioWaitTimeRecursive": "blkio.io_wait_time_recursive",
                     "ioMergedRecursive": "blkio.io_merged_recursive",
                     "ioTimeRecursive": "blkio.time_recursive",
                     "sectorsRecursive": "blkio.sectors_recursive"}
        elif syscall.get().exists(os.path.join(blk, "blkio.bfq.io_serviced_recursive")):
            names = {"ioServiceBytesRecursive": "blkio.bfq.io_service_bytes_recursive",
                     "ioServicedRecursive": "blkio.bfq.io_serviced_recursive"}
        else:
            names = {"ioServiceBytesRecursive": "blkio.throttle.io_service_bytes_recursive",
                     "ioServicedRecursive": "blkio.throttle.io_serviced_recursive"}
        for key, name in names.items():
            entries = _blkio_entries(_read(blk, name))
            if entries:
                blkio[key] = entries
    hugetlb: dict = {}
    hdir = cg.dir_for("hugetlb")
    if hdir is not None:
        for name in sorted(_names(hdir)):
            if name.startswith("hugetlb.") and name.endswith(".limit_in_bytes") \
                    and ".rsvd." not in name:
                size = name[len("hugetlb."):-len(".limit_in_bytes")]
                hugetlb[size] = _nonzero({
                    "usage": _int(hdir, f"hugetlb.{size}.usage_in_bytes"),
                    "max": _int(hdir, f"hugetlb.{size}.max_usage_in_bytes"),
                }) | {"failcnt": _int(hdir, f"hugetlb.{size}.failcnt")}
    return {
        "cpu": {"usage": usage, "throttling": throttling},
        "cpuset": _cpuset(cg.dir_for("cpuset")),
        "memory": memory,
        "pids": _nonzero({"current": _int(pids, "pids.current"), "limit": _int(pids, "pids.max")}),
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


def stats_v2(cg: Cgroups) -> dict:
    d = cg.dir(UNIFIED_KEY)
    cstat = _kv(_read(d, "cpu.stat"))
    usage = _nonzero({"total": cstat.get("usage_usec", 0) * 1000})
    usage["kernel"] = cstat.get("system_usec", 0) * 1000
    usage["user"] = cstat.get("user_usec", 0) * 1000
    throttling = _nonzero({
        "periods": cstat.get("nr_periods", 0),
        "throttledPeriods": cstat.get("nr_throttled", 0),
        "throttledTime": cstat.get("throttled_usec", 0) * 1000,
    })
    raw = _kv(_read(d, "memory.stat"))
    memory: dict = {}
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
    if raw:
        memory["raw"] = raw
    reads: list[dict] = []
    ios: list[dict] = []
    for line in (_read(d, "io.stat") or "").splitlines():
        parts = line.split()
        if not parts or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        for op, bkey, ikey in (("Read", "rbytes", "rios"), ("Write", "wbytes", "wios")):
            base = {"major": int(major), "minor": int(minor), "op": op}
            reads.append(_nonzero(base | {"value": int(kv.get(bkey, 0))}))
            ios.append(_nonzero(base | {"value": int(kv.get(ikey, 0))}))
    blkio = {}
    if reads:
        blkio = {"ioServiceBytesRecursive": reads, "ioServicedRecursive": ios}
    hugetlb: dict = {}
    for name in sorted(_names(d)):
        if name.startswith("hugetlb.") and name.endswith(".max") and ".rsvd." not in name:
            size = name[len("hugetlb."):-len(".max")]
            ev = _kv(_read(d, f"hugetlb.{size}.events"))
            hugetlb[size] = _nonzero({"usage": _int(d, f"hugetlb.{size}.current")}) | {
                "failcnt": ev.get("max", 0)
            }
    return {
        "cpu": {"usage": usage, "throttling": throttling},
        "cpuset": _cpuset(d, "cpuset.") if d else {},
        "memory": memory,
        "pids": _nonzero({"current": _int(d, "pids.current"), "limit": _int(d, "pids.max")}),
        "blkio": blkio,
        "hugetlb": hugetlb,
        "intel_rdt": {},
        "network_interfaces": None,
    }


UNIFIED_KEY = ""


def stats(cg: Cgroups) -> dict:
    return stats_v2(cg) if cg.layout == "v2" else stats_v1(cg)
