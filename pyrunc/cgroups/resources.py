"""`linux.resources` -> the ordered cgroup file writes for a v1 or a v2 host, as data.

`plan()` is pure: what the host has (controllers, files, current values) comes through a small
`Host` interface, so every conversion is unit-tested without root, for layouts this machine does
not have. Nothing absent from the document is written; anything the host cannot do is an error
naming the JSON path (`linux.resources.blockIO.weight: this host's blkio controller has no weight
file`), raised before the first write.

v1 values become v2 files the way runc does: shares -> cpu.weight, quota/period -> cpu.max,
swap (memory+swap) -> memory.swap.max (swap only), blkio weight -> io.bfq.weight or io.weight,
throttle lists -> io.max, reservation -> memory.low, hugetlb limits -> hugetlb.<size>.max.
"""

from __future__ import annotations

from pyrunc.cgroups import devices as dev
from pyrunc.errors import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections cost ~3 ms on every create; annotations stay strings
    from collections.abc import Iterable, Mapping
    from typing import Protocol

    from pyrunc.spec.compiled import (  # what the loader gives (the API's Specs go through it)
        LinuxBlockIO,
        LinuxCPU,
        LinuxHugepageLimit,
        LinuxMemory,
        LinuxNetwork,
        LinuxPids,
        LinuxRdma,
        LinuxResources,
    )

V1 = "v1"
V2 = "v2"
PREFIX = "linux.resources"
MAX_SHARES = 262144
MIN_SHARES = 2
UNLIMITED = 2**63 - 1


class Write:
    """Write `value` to `file` of `controller`'s directory (the cgroup2 one when `v2`); `field`
    is the JSON path, for error messages. A `retry` write refused with EINVAL is tried again
    after the next write (runc's cfs period, refused until the new quota is in)."""

    __slots__ = ("controller", "file", "value", "field", "v2", "retry")

    def __init__(self, controller: str, file: str, value: str, field: str, v2: bool = False,
                 retry: bool = False):
        self.controller = controller
        self.file = file
        self.value = value
        self.field = field
        self.v2 = v2
        self.retry = retry

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Write) and all(
            getattr(self, a) == getattr(other, a) for a in self.__slots__
        )

    def __repr__(self) -> str:
        return f"Write({', '.join(repr(getattr(self, a)) for a in self.__slots__)})"


if TYPE_CHECKING:  # only annotations name it

    class Host(Protocol):
        """What `plan` may ask about the container's cgroup."""

        version: str  # "v1" (also hybrid hosts) or "v2"
        hybrid: bool
        v2_controllers: tuple[str, ...]  # usable in the cgroup2 hierarchy

        def has_controller(self, controller: str) -> bool: ...

        def has_file(self, controller: str, name: str) -> bool: ...

        def read(self, controller: str, name: str) -> str | None: ...


class ResourceWrites:
    """The writes in order, the device rules for a v2 program, and warnings to log."""

    def __init__(self) -> None:
        self.writes: list[Write] = []
        self.device_rules: list[dev.Rule] | None = None  # v2 only: compile to eBPF
        self.warnings: list[str] = []


# --- conversions (runc's formulas) -----------------------------------------------------------


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], linearly."""
    shares = min(max(shares, MIN_SHARES), MAX_SHARES)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] -> io.weight [1, 10000], linearly."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_v2(swap: int, limit: int | None, field: str) -> str:
    """memory+swap (v1's memsw) -> memory.swap.max, which counts swap alone."""
    if swap == -1:
        return "max"
    if limit is None or limit == -1:
        raise CgroupError(f"{field}: a swap limit needs a memory limit")
    if swap < limit:
        raise CgroupError(
            f"{field}: must be at least memory.limit ({swap} < {limit}): it counts memory + swap"
        )
    return str(swap - limit)


def _max(value: int) -> str:
    return "max" if value == -1 else str(value)


def _unset_zero(value: int | None) -> int | None:
    """None for 0: runc's cgroup code (fs and fs2) leaves a resource alone when its value is
    zero (memory limits, weights, classID, shares, periods), and docker sends 0 for unset."""
    return None if value == 0 else value


def _swappiness(value: int | None) -> int | None:
    """None for an unset swappiness: absent, -1, or -1 sent as a uint64 (runc skips both)."""
    return None if value is None or value in (-1, 2**64 - 1) else value


def _parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if text == "max":
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        return None


# --- the plan ------------------------------------------------------------------------------------


class _Planner:
    def __init__(self, host: Host, update: bool) -> None:
        self.host = host
        self.v2 = host.version == V2
        self.update = update
        self.plan = ResourceWrites()

    def need(self, controller: str, field: str) -> None:
        if not self.host.has_controller(controller):
            where = "cgroup v2 hierarchy" if self.v2 else "cgroup v1 hierarchies"
            raise CgroupError(f"{field}: this host has no {controller} controller in its {where}")

    def add(self, controller: str, name: str, value: object, field: str,
            missing: str | None = None) -> None:
        """Queue a write after checking that the controller and the file exist."""
        self.need(controller, field)
        if not self.host.has_file(controller, name):
            why = missing or f"this host's {controller} controller has no {name} file"
            raise CgroupError(f"{field}: {why}")
        self.plan.writes.append(Write(controller, name, str(value), field, self.v2))

    def first_file(self, controller: str, names: Iterable[str]) -> str | None:
        return next((n for n in names if self.host.has_file(controller, n)), None)

    # -- memory --

    def memory(self, m: LinuxMemory) -> None:
        f = f"{PREFIX}.memory"
        for name in ("limit", "reservation", "swap", "kernel", "kernel_tcp"):
            value = getattr(m, name)
            if value is not None and value < -1:
                json = "kernelTCP" if name == "kernel_tcp" else name
                raise CgroupError(f"{f}.{json}: must be -1 (unlimited) or a byte count")
        # zero means "leave it" for the limits, as in runc's cgroup code (docker 20.10 sends
        # zeros for what its user did not set)
        limit, swap = _unset_zero(m.limit), _unset_zero(m.swap)
        if limit == -1 and swap is None and not self.v2 and self.host.has_file(
                "memory", "memory.memsw.limit_in_bytes"):
            swap = -1  # runc: unlimited memory lifts the swap limit too (else EINVAL on v1)
        if m.check_before_update and self.update and limit is not None and limit != -1:
            self.need("memory", f"{f}.limit")
            usage = _parse_int(self.host.read(
                "memory", "memory.current" if self.v2 else "memory.usage_in_bytes"))
            if usage is not None and limit < usage:
                raise CgroupError(
                    f"{f}.limit: {limit} is below the current usage {usage} (checkBeforeUpdate)"
                )
        if self.v2:
            self.memory_v2(m, limit, swap, f)
        else:
            self.memory_v1(m, limit, swap, f)
        if m.kernel is not None and m.kernel != -1:
            self.plan.warnings.append(
                f"{f}.kernel: kernel memory limits are ignored (this kernel does not enforce them)"
            )

    def memory_v1(self, m: LinuxMemory, limit: int | None, swap: int | None, f: str) -> None:
        memsw = "memory.memsw.limit_in_bytes"
        if swap is not None:
            if swap != -1 and limit is not None and limit != -1 and swap < limit:
                raise CgroupError(
                    f"{f}.swap: must be at least memory.limit ({swap} < {limit}): "
                    "it counts memory + swap"
                )
            if swap != -1 and limit == -1:
                raise CgroupError(f"{f}.swap: a swap limit needs a memory limit")
        swap_first = False
        if swap is not None:
            current = _parse_int(self.host.read("memory", memsw))
            new_limit = UNLIMITED if limit in (None, -1) else limit
            swap_first = swap == -1 or (limit is not None and new_limit > (current or UNLIMITED))
        swap_write = (memsw, swap, f"{f}.swap",
                      "this host's memory controller has no memory.memsw.limit_in_bytes file "
                      "(swap accounting is off: boot with swapaccount=1)")
        if swap is not None and swap_first:
            self.add("memory", *swap_write)
        if limit is not None:
            self.add("memory", "memory.limit_in_bytes", limit, f"{f}.limit")
        if swap is not None and not swap_first:
            self.add("memory", *swap_write)
        if _unset_zero(m.reservation) is not None:
            self.add("memory", "memory.soft_limit_in_bytes", m.reservation, f"{f}.reservation")
        if _unset_zero(m.kernel_tcp) is not None:
            self.add("memory", "memory.kmem.tcp.limit_in_bytes", m.kernel_tcp, f"{f}.kernelTCP")
        if _swappiness(m.swappiness) is not None:
            self.add("memory", "memory.swappiness", m.swappiness, f"{f}.swappiness")
        if m.disable_oom_killer:
            self.add("memory", "memory.oom_control", int(m.disable_oom_killer),
                     f"{f}.disableOOMKiller")
        if m.use_hierarchy is not None:
            self.add("memory", "memory.use_hierarchy", int(m.use_hierarchy), f"{f}.useHierarchy")

    def memory_v2(self, m: LinuxMemory, limit: int | None, swap: int | None, f: str) -> None:
        if limit is not None:
            self.add("memory", "memory.max", _max(limit), f"{f}.limit")
        if swap is not None:
            base = limit
            if base is None and swap != -1:
                current = _parse_int(self.host.read("memory", "memory.max"))
                base = None if current in (None, UNLIMITED) else current
            self.add("memory", "memory.swap.max", swap_v2(swap, base, f"{f}.swap"), f"{f}.swap")
        reservation = _unset_zero(m.reservation)
        if reservation is not None:
            self.add("memory", "memory.low", _max(reservation), f"{f}.reservation")
        unsupported = []
        if _unset_zero(m.kernel_tcp) not in (None, -1):
            unsupported.append(("kernelTCP", "has no kernel TCP memory limit"))
        if _swappiness(m.swappiness) is not None:
            unsupported.append(("swappiness", "has no per-cgroup swappiness"))
        if m.disable_oom_killer:
            unsupported.append(("disableOOMKiller", "cannot disable the OOM killer"))
        if m.use_hierarchy is False:
            unsupported.append(("useHierarchy", "is always hierarchical"))
        for name, why in unsupported:
            raise CgroupError(f"{f}.{name}: cgroup v2 {why}")

    # -- cpu and cpuset --

    def cpu(self, c: LinuxCPU) -> None:
        f = f"{PREFIX}.cpu"
        if c.quota is not None and c.quota < -1:
            raise CgroupError(f"{f}.quota: must be -1 (unlimited) or a positive number")
        if c.burst is not None and c.quota is not None and c.quota > 0 and c.burst > c.quota:
            raise CgroupError(f"{f}.burst: must not be larger than quota ({c.burst} > {c.quota})")
        if self.v2:
            self.cpu_v2(c, f)
        else:
            self.cpu_v1(c, f)
        if c.cpus is not None and c.cpus != "":
            self.add("cpuset", "cpuset.cpus", c.cpus, f"{f}.cpus")
        if c.mems is not None and c.mems != "":
            self.add("cpuset", "cpuset.mems", c.mems, f"{f}.mems")

    def cpu_v1(self, c: LinuxCPU, f: str) -> None:
        if c.shares is not None and c.shares != 0:
            self.add("cpu", "cpu.shares", c.shares, f"{f}.shares")
        if c.period is not None and c.period != 0:
            self.add("cpu", "cpu.cfs_period_us", c.period, f"{f}.period")
            # a shorter period may exceed the parent's quota with the old quota: the kernel
            # says EINVAL, and runc tries again once the new quota is written
            self.plan.writes[-1].retry = c.quota not in (None, 0)
        if c.quota is not None and c.quota != 0:
            self.add("cpu", "cpu.cfs_quota_us", c.quota, f"{f}.quota")
        if c.burst is not None:
            self.add("cpu", "cpu.cfs_burst_us", c.burst, f"{f}.burst")
        if c.realtime_period is not None and c.realtime_period != 0:
            self.add("cpu", "cpu.rt_period_us", c.realtime_period, f"{f}.realtimePeriod")
        if c.realtime_runtime is not None and c.realtime_runtime != 0:
            self.add("cpu", "cpu.rt_runtime_us", c.realtime_runtime, f"{f}.realtimeRuntime")
        if c.idle is not None:
            self.add("cpu", "cpu.idle", c.idle, f"{f}.idle")

    def cpu_v2(self, c: LinuxCPU, f: str) -> None:
        if c.shares is not None and c.shares != 0:
            self.add("cpu", "cpu.weight", shares_to_weight(c.shares), f"{f}.shares")
        quota = c.quota if c.quota not in (None, 0) else None
        period = c.period if c.period not in (None, 0) else None
        if quota is not None or period is not None:
            if quota is None:
                current = (self.host.read("cpu", "cpu.max") or "max").split()
                text = f"{current[0] if current else 'max'} {period}"
            else:
                text = _max(quota) + (f" {period}" if period is not None else "")
            self.add("cpu", "cpu.max", text, f"{f}.quota" if quota is not None else f"{f}.period")
        if c.burst is not None:
            self.add("cpu", "cpu.max.burst", c.burst, f"{f}.burst")
        for name, value in (("realtimePeriod", c.realtime_period),
                            ("realtimeRuntime", c.realtime_runtime)):
            if value:
                raise CgroupError(f"{f}.{name}: cgroup v2 has no realtime CPU controls")
        if c.idle is not None:
            self.add("cpu", "cpu.idle", c.idle, f"{f}.idle")

    # -- pids --

    def pids(self, p: LinuxPids) -> None:
        if p.limit is None:
            return
        field = f"{PREFIX}.pids.limit"
        if p.limit < -1:
            raise CgroupError(f"{field}: must be -1 (no limit) or at least 0")
        # 0 is a real limit (runtime-spec v1.3.0): no new task at all
        self.add("pids", "pids.max", _max(p.limit), field)

    # -- block io --

    def block_io(self, b: LinuxBlockIO) -> None:
        f = f"{PREFIX}.blockIO"
        ctrl = "io" if self.v2 else "blkio"
        weight = _unset_zero(b.weight)
        if weight is not None:
            self.need(ctrl, f"{f}.weight")
            if self.v2:
                name = self.first_file(ctrl, ("io.bfq.weight", "io.weight"))
                value = weight if name == "io.bfq.weight" else blkio_weight_to_io_weight(weight)
            else:
                name = self.first_file(ctrl, ("blkio.weight", "blkio.bfq.weight"))
                value = weight
            if name is None:
                raise CgroupError(f"{f}.weight: this host's {ctrl} controller has no weight file")
            self.add(ctrl, name, value, f"{f}.weight")
        if _unset_zero(b.leaf_weight) is not None:
            if self.v2:
                raise CgroupError(f"{f}.leafWeight: cgroup v2 has no leaf weights")
            self.add(ctrl, "blkio.leaf_weight", b.leaf_weight, f"{f}.leafWeight",
                     f"this host's {ctrl} controller has no leaf_weight file")
        for i, wd in enumerate(b.weight_device or ()):
            field = f"{f}.weightDevice[{i}]"
            dev_weight = _unset_zero(wd.weight)
            if dev_weight is not None:
                self.need(ctrl, field)
                if self.v2:
                    name = self.first_file(ctrl, ("io.bfq.weight", "io.weight"))
                    w = dev_weight if name == "io.bfq.weight" else blkio_weight_to_io_weight(
                        dev_weight)
                else:
                    name = self.first_file(ctrl, ("blkio.weight_device", "blkio.bfq.weight_device"))
                    w = dev_weight
                if name is None:
                    raise CgroupError(
                        f"{field}.weight: this host's {ctrl} controller has no weight_device file"
                    )
                self.add(ctrl, name, f"{wd.major}:{wd.minor} {w}", f"{field}.weight")
            if _unset_zero(wd.leaf_weight) is not None:
                if self.v2:
                    raise CgroupError(f"{field}.leafWeight: cgroup v2 has no leaf weights")
                self.add(ctrl, "blkio.leaf_weight_device",
                         f"{wd.major}:{wd.minor} {wd.leaf_weight}", f"{field}.leafWeight",
                         f"this host's {ctrl} controller has no leaf_weight_device file")
        throttles = (
            ("throttle_read_bps_device", "throttleReadBpsDevice", "read_bps_device", "rbps"),
            ("throttle_write_bps_device", "throttleWriteBpsDevice", "write_bps_device", "wbps"),
            ("throttle_read_iops_device", "throttleReadIOPSDevice", "read_iops_device", "riops"),
            ("throttle_write_iops_device", "throttleWriteIOPSDevice", "write_iops_device", "wiops"),
        )
        for attr, json, v1_file, v2_key in throttles:
            for i, t in enumerate(getattr(b, attr) or ()):
                field = f"{f}.{json}[{i}]"
                if self.v2:
                    self.add(ctrl, "io.max", f"{t.major}:{t.minor} {v2_key}={t.rate}", field)
                else:
                    self.add(ctrl, f"blkio.throttle.{v1_file}", f"{t.major}:{t.minor} {t.rate}",
                             field)

    # -- hugetlb, network, rdma --

    def hugepages(self, limits: Iterable[LinuxHugepageLimit]) -> None:
        for i, h in enumerate(limits):
            field = f"{PREFIX}.hugepageLimits[{i}]"
            self.need("hugetlb", field)
            size = h.page_size
            base = f"hugetlb.{size}.max" if self.v2 else f"hugetlb.{size}.limit_in_bytes"
            rsvd = f"hugetlb.{size}.rsvd.max" if self.v2 else f"hugetlb.{size}.rsvd.limit_in_bytes"
            self.add("hugetlb", base, h.limit, f"{field}.limit",
                     f"this host has no {size} huge pages (no {base} file)")
            if self.host.has_file("hugetlb", rsvd):
                self.add("hugetlb", rsvd, h.limit, f"{field}.limit")

    def network(self, n: LinuxNetwork) -> None:
        f = f"{PREFIX}.network"
        if self.v2 and (_unset_zero(n.class_id) is not None or n.priorities):
            raise CgroupError(f"{f}: cgroup v2 has no net_cls or net_prio controller")
        if _unset_zero(n.class_id) is not None:
            self.add("net_cls", "net_cls.classid", n.class_id, f"{f}.classID")
        for i, p in enumerate(n.priorities or ()):
            self.add("net_prio", "net_prio.ifpriomap", f"{p.name} {p.priority}",
                     f"{f}.priorities[{i}]")

    def rdma(self, rdma: Mapping[str, LinuxRdma]) -> None:
        for name, r in sorted(rdma.items()):
            parts = []
            if r.hca_handles is not None:
                parts.append(f"hca_handle={r.hca_handles}")
            if r.hca_objects is not None:
                parts.append(f"hca_object={r.hca_objects}")
            self.add("rdma", "rdma.max", f"{name} {' '.join(parts)}", f"{PREFIX}.rdma.{name}")

    # -- unified --

    def unified(self, unified: Mapping[str, str]) -> None:
        f = f"{PREFIX}.unified"
        if not self.v2 and not self.host.hybrid:
            raise CgroupError(f"{f}: this host has no cgroup v2 hierarchy")
        for key, value in unified.items():
            field = f"{f}.{key}"
            if not key or "/" in key or key.startswith(".") or "\0" in key:
                raise CgroupError(f"{field}: must be a file name (no slashes)")
            controller = key.split(".", 1)[0]
            if controller != "cgroup" and controller not in self.host.v2_controllers:
                raise CgroupError(
                    f"{field}: controller {controller!r} is not available in this host's "
                    "cgroup v2 hierarchy"
                )
            self.plan.writes.append(Write(controller, key, value, field, True))

    # -- devices --

    def devices(self, rules: list[dev.Rule]) -> None:
        if self.v2:
            self.plan.device_rules = rules
            return
        self.need("devices", f"{PREFIX}.devices")
        for name, line in dev.v1_writes(rules):
            self.plan.writes.append(Write("devices", name, line, f"{PREFIX}.devices"))


def plan(resources: LinuxResources | None, host: Host, *, update: bool = False) -> ResourceWrites:
    """The writes for `resources` (a LinuxResources) on `host`. On create (not `update`) the
    device list is always set up (deny-all, the rules, runc's defaults; never `linux.devices`,
    S13); an update leaves devices alone, as runc does."""
    p = _Planner(host, update)
    r = resources
    if r is not None:
        if r.memory is not None:
            p.memory(r.memory)
        if r.cpu is not None:
            p.cpu(r.cpu)
        if r.pids is not None:
            p.pids(r.pids)
        if r.block_io is not None:
            p.block_io(r.block_io)
        if r.hugepage_limits:
            p.hugepages(r.hugepage_limits)
        if r.network is not None:
            p.network(r.network)
        if r.rdma:
            p.rdma(r.rdma)
    if not update:
        rules = dev.container_rules(r.devices if r is not None else ())
        p.devices(rules)
    if r is not None and r.unified:
        p.unified(r.unified)  # last: a v2 key may deliberately override a converted value
    return p.plan
