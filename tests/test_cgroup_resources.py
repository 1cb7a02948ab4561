"""Pure unit tests of the cgroup code: layout detection, cgroupsPath, the resource -> file
plans for v1 and v2 hosts (this machine is hybrid, so v2 is only shown here), the device
rules, their eBPF compilation, and the parsers. No root needed."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from pyrunc.cgroups import devices as dev
from pyrunc.cgroups import layout, paths, resources
from pyrunc.cgroups.events import parse_duration
from pyrunc.cgroups.resources import Write
from pyrunc.cgroups.stats import _blkio_entries, parse_list
from pyrunc.commands.update import document_from_flags, ram_in_bytes
from pyrunc.errors import CgroupError, ConfigError, PyruncError
from pyrunc.spec.converter import load_resources

# --- a fake host ---------------------------------------------------------------------------------

V1_FILES = {
    "memory": {"memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes",
               "memory.swappiness", "memory.kmem.tcp.limit_in_bytes", "memory.oom_control",
               "memory.use_hierarchy", "memory.usage_in_bytes"},
    "cpu": {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us",
            "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.idle"},
    "cpuset": {"cpuset.cpus", "cpuset.mems"},
    "pids": {"pids.max"},
    # this machine's blkio: throttling and bfq stats, but no weight files
    "blkio": {"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
              "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"},
    "devices": {"devices.allow", "devices.deny"},
    "freezer": {"freezer.state"},
}
V2_FILES = {
    c: {"cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle", "memory.max", "memory.low",
        "memory.swap.max", "memory.current", "pids.max", "io.weight", "io.max", "cpuset.cpus",
        "cpuset.mems", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "rdma.max"}
    for c in ("cpu", "memory", "pids", "io", "cpuset", "hugetlb", "rdma")
}


class FakeHost:
    def __init__(self, version: str, files: dict[str, set[str]],
                 values: dict[str, str] | None = None, hybrid: bool = False,
                 v2_controllers: tuple[str, ...] = ()) -> None:
        self.version = version
        self.hybrid = hybrid
        self.files = files
        self.values = values or {}
        self.v2_controllers = v2_controllers or (tuple(files) if version == "v2" else ())

    def has_controller(self, controller: str) -> bool:
        return controller in self.files

    def has_file(self, controller: str, name: str) -> bool:
        return name in self.files.get(controller, set())

    def read(self, controller: str, name: str) -> str | None:
        return self.values.get(name)


def v1(**values: str) -> FakeHost:
    return FakeHost("v1", V1_FILES, values, hybrid=True, v2_controllers=("hugetlb",))


def v2(**values: str) -> FakeHost:
    return FakeHost("v2", V2_FILES, values)


def plan(doc: dict[str, Any], host: FakeHost, update: bool = True, **kw: Any) -> list[Write]:
    return resources.plan(load_resources(doc), host, update=update, **kw).writes


def files(writes: list[Write]) -> list[tuple[str, str]]:
    return [(w.file, w.value) for w in writes]


# --- layout --------------------------------------------------------------------------------------

HYBRID_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
90 70 0:32 / /var/lib/x/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
"""
V2_MOUNTINFO = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1_MOUNTINFO = "35 31 0:32 /docker/abc /sys/fs/cgroup/mem\\040ory rw - cgroup cgroup rw,memory\n"


def test_layout_hybrid() -> None:
    lay = layout.detect(HYBRID_MOUNTINFO)
    assert lay.kind == layout.HYBRID
    assert [h.key for h in lay.hierarchies] == ["cpu,cpuacct", "memory", "name=systemd", ""]
    assert lay.for_controller("cpuacct").mount == "/sys/fs/cgroup/cpu,cpuacct"
    assert lay.for_controller("hugetlb") is None
    assert lay.unified.dir("/pyrunc/x") == "/sys/fs/cgroup/unified/pyrunc/x"


def test_layout_v2_and_v1_nested() -> None:
    assert layout.detect(V2_MOUNTINFO).kind == layout.V2
    lay = layout.detect(V1_MOUNTINFO)
    assert lay.kind == layout.V1
    (mem,) = lay.hierarchies
    assert mem.mount == "/sys/fs/cgroup/mem ory"
    # mounted from /docker/abc: a cgroup path below it maps into the mount
    assert mem.dir("/docker/abc/pyrunc/x") == "/sys/fs/cgroup/mem ory/pyrunc/x"


def test_this_host_layout() -> None:
    lay = layout.detect()
    assert lay.kind in (layout.V1, layout.V2, layout.HYBRID)


# --- cgroupsPath ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "/pyrunc/ctr"),
        ("", "/pyrunc/ctr"),
        ("/libpod_parent/libpod-ctr", "/libpod_parent/libpod-ctr"),
        ("/k8s.io/ctr", "/k8s.io/ctr"),
        ("//a//b/./c/", "/a/b/c"),
        ("mine/ctr", "/pyrunc/mine/ctr"),
    ],
)
def test_cgroups_path(given: str | None, expected: str) -> None:
    assert paths.resolve(given, "ctr") == expected


@pytest.mark.parametrize("bad", ["/a/../b", "..", "/", "system.slice:docker:abc", "a\nb"])
def test_cgroups_path_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"^config.json: linux.cgroupsPath: "):
        paths.resolve(bad, "ctr")


def test_default_path_depends_on_the_state_root() -> None:
    assert paths.resolve(None, "c", "/run/pyrunc") == "/pyrunc/c"
    other = paths.resolve(None, "c", "/tmp/root")
    assert other.startswith("/pyrunc/r-") and other.endswith("/c")
    assert other != paths.resolve(None, "c", "/tmp/root2")
    assert paths.resolve("/a/b", "c", "/tmp/root") == "/a/b"


def test_ancestors() -> None:
    assert paths.ancestors("/a/b/c") == ["/a", "/a/b", "/a/b/c"]


# --- v1 plans ------------------------------------------------------------------------------------


def test_v1_full_document() -> None:
    doc = {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20,
                   "kernelTCP": 1 << 24, "swappiness": 10, "disableOOMKiller": True,
                   "useHierarchy": True},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimePeriod": 1000000, "realtimeRuntime": 950000, "cpus": "0-1", "mems": "0",
                "idle": 1},
        "pids": {"limit": 50},
        "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
    }
    assert files(plan(doc, v1())) == [
        ("memory.limit_in_bytes", str(64 << 20)),
        ("memory.memsw.limit_in_bytes", str(128 << 20)),
        ("memory.soft_limit_in_bytes", str(32 << 20)),
        ("memory.kmem.tcp.limit_in_bytes", str(1 << 24)),
        ("memory.swappiness", "10"),
        ("memory.oom_control", "1"),
        ("memory.use_hierarchy", "1"),
        ("cpu.shares", "512"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "50000"),
        ("cpu.cfs_burst_us", "1000"),
        ("cpu.rt_period_us", "1000000"),
        ("cpu.rt_runtime_us", "950000"),
        ("cpu.idle", "1"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("pids.max", "50"),
        ("blkio.throttle.read_bps_device", "8:0 600"),
        ("blkio.throttle.write_iops_device", "8:16 300"),
    ]


def test_v1_swap_written_first_when_the_limit_grows_past_it() -> None:
    # current memsw 128M: raising the limit to 256M must raise memsw first
    writes = plan({"memory": {"limit": 256 << 20, "swap": 512 << 20}},
                  v1(**{"memory.memsw.limit_in_bytes": str(128 << 20)}))
    assert [w.file for w in writes] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    # lowering: limit first
    writes = plan({"memory": {"limit": 64 << 20, "swap": 96 << 20}},
                  v1(**{"memory.memsw.limit_in_bytes": str(128 << 20)}))
    assert [w.file for w in writes] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    # unlimited swap always first
    writes = plan({"memory": {"limit": 64 << 20, "swap": -1}}, v1())
    assert files(writes)[0] == ("memory.memsw.limit_in_bytes", "-1")


def test_v1_swap_checks() -> None:
    with pytest.raises(CgroupError, match=r"^linux.resources.memory.swap: must be at least"):
        plan({"memory": {"limit": 100, "swap": 50}}, v1())
    with pytest.raises(CgroupError, match="needs a memory limit"):
        plan({"memory": {"limit": -1, "swap": 50}}, v1())


def test_kernel_memory_is_a_warning() -> None:
    p = resources.plan(load_resources({"memory": {"kernel": 1 << 20}}), v1(), update=True)
    assert p.writes == []
    assert p.warnings and p.warnings[0].startswith("linux.resources.memory.kernel:")


def test_missing_files_are_errors_naming_the_field() -> None:
    with pytest.raises(CgroupError) as e:
        plan({"blockIO": {"weight": 500}}, v1())
    assert str(e.value) == (
        "linux.resources.blockIO.weight: this host's blkio controller has no weight file"
    )
    with pytest.raises(CgroupError, match=r"^linux.resources.hugepageLimits\[0\]: this host "
                                          "has no hugetlb controller"):
        plan({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]}, v1())
    with pytest.raises(CgroupError, match=r"^linux.resources.network.classID: this host has no "
                                          "net_cls controller"):
        plan({"network": {"classID": 1}}, v1())
    no_memsw = FakeHost("v1", {**V1_FILES, "memory": V1_FILES["memory"] - {
        "memory.memsw.limit_in_bytes"}})
    with pytest.raises(CgroupError, match="swap accounting is off"):
        plan({"memory": {"limit": 100, "swap": 200}}, no_memsw)


def test_blkio_weight_files_when_present() -> None:
    host = FakeHost("v1", {**V1_FILES, "blkio": V1_FILES["blkio"] | {
        "blkio.bfq.weight", "blkio.bfq.weight_device"}})
    doc = {"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 500}]}}
    assert files(plan(doc, host)) == [("blkio.bfq.weight", "300"),
                                      ("blkio.bfq.weight_device", "8:0 500")]
    with pytest.raises(CgroupError, match=r"^linux.resources.blockIO.leafWeight: "):
        plan({"blockIO": {"leafWeight": 300}}, host)


def test_pids_zero_is_a_limit() -> None:
    assert files(plan({"pids": {"limit": 0}}, v1())) == [("pids.max", "0")]
    assert files(plan({"pids": {"limit": -1}}, v1())) == [("pids.max", "max")]
    with pytest.raises(CgroupError, match="pids.limit"):
        plan({"pids": {"limit": -2}}, v1())


def test_zero_means_unset_as_runc() -> None:
    """runc 1.1.5 (libcontainer/cgroups/fs and fs2) leaves a resource alone when its value is 0
    (docker 20.10 sends blockIO.weight 0 for "unset"); pids.limit 0 stays a limit (the spec)."""
    doc = {
        "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernelTCP": 0,
                   "disableOOMKiller": False},
        "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimePeriod": 0,
                "realtimeRuntime": 0, "cpus": "", "mems": ""},
        "blockIO": {"weight": 0, "leafWeight": 0,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 0, "leafWeight": 0}]},
        "network": {"classID": 0},
    }
    assert plan(doc, v1()) == []
    v2_doc = {k: v for k, v in doc.items() if k != "network"}
    assert plan(v2_doc, v2()) == []


def test_v1_unlimited_memory_lifts_swap_first() -> None:
    """`update --memory -1` alone: runc sets memsw to -1 too, first (else the kernel refuses a
    memory limit above the memsw one with EINVAL)."""
    writes = plan({"memory": {"limit": -1}}, v1(**{"memory.memsw.limit_in_bytes": "1048576"}))
    assert files(writes) == [("memory.memsw.limit_in_bytes", "-1"),
                             ("memory.limit_in_bytes", "-1")]
    no_memsw = FakeHost("v1", {**V1_FILES, "memory": V1_FILES["memory"] - {
        "memory.memsw.limit_in_bytes"}})
    assert files(plan({"memory": {"limit": -1}}, no_memsw)) == [("memory.limit_in_bytes", "-1")]


def test_absent_means_untouched() -> None:
    assert plan({}, v1()) == []
    assert plan({"memory": {}, "cpu": {}, "pids": {}}, v2()) == []


def test_check_before_update() -> None:
    doc = {"memory": {"limit": 1000, "checkBeforeUpdate": True}}
    with pytest.raises(CgroupError, match="below the current usage 5000"):
        plan(doc, v1(**{"memory.usage_in_bytes": "5000"}))
    assert files(plan(doc, v1(**{"memory.usage_in_bytes": "500"}))) == [
        ("memory.limit_in_bytes", "1000")]
    with pytest.raises(CgroupError, match="below the current usage"):
        plan(doc, v2(**{"memory.current": "5000"}))


def test_unified_on_v1_and_hybrid() -> None:
    v1_only = FakeHost("v1", V1_FILES)
    with pytest.raises(CgroupError, match=r"^linux.resources.unified: this host has no cgroup v2"):
        plan({"unified": {"pids.max": "10"}}, v1_only)
    # hybrid: only controllers the cgroup2 hierarchy has (here hugetlb) and cgroup.* files
    writes = plan({"unified": {"hugetlb.2MB.max": "4194304", "cgroup.max.descendants": "3"}},
                  v1())
    assert [(w.controller, w.file, w.v2) for w in writes] == [
        ("hugetlb", "hugetlb.2MB.max", True), ("cgroup", "cgroup.max.descendants", True)]
    with pytest.raises(CgroupError, match="controller 'memory' is not available"):
        plan({"unified": {"memory.max": "10"}}, v1())


# --- v2 plans (not this host's layout: the conversions are shown here) ---------------------------


def test_v2_conversions() -> None:
    doc = {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 0,
                "cpus": "0"},
        "pids": {"limit": -1},
        "blockIO": {"weight": 500,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}],
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
    }
    assert files(plan(doc, v2())) == [
        ("memory.max", str(64 << 20)),
        ("memory.swap.max", str(32 << 20)),  # v2 counts swap alone
        ("memory.low", str(32 << 20)),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpu.max.burst", "1000"),
        ("cpu.idle", "0"),
        ("cpuset.cpus", "0"),
        ("pids.max", "max"),
        ("io.weight", "4950"),
        ("io.weight", "8:0 910"),
        ("io.max", "8:0 rbps=600"),
        ("io.max", "8:16 wiops=300"),
        ("hugetlb.2MB.max", str(4 << 20)),
        ("hugetlb.2MB.rsvd.max", str(4 << 20)),
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
    ]
    assert all(w.v2 for w in plan(doc, v2()))


def test_v2_formulas() -> None:
    assert resources.shares_to_weight(2) == 1
    assert resources.shares_to_weight(262144) == 10000
    assert resources.shares_to_weight(1024) == 39
    assert resources.shares_to_weight(1) == 1  # clamped like the kernel clamps cpu.shares
    assert resources.blkio_weight_to_io_weight(10) == 1
    assert resources.blkio_weight_to_io_weight(1000) == 10000


def test_v2_cpu_max_forms() -> None:
    assert files(plan({"cpu": {"quota": -1}}, v2())) == [("cpu.max", "max")]
    assert files(plan({"cpu": {"quota": 20000}}, v2())) == [("cpu.max", "20000")]
    # a period alone keeps the current quota
    assert files(plan({"cpu": {"period": 50000}}, v2(**{"cpu.max": "30000 100000\n"}))) == [
        ("cpu.max", "30000 50000")]
    assert files(plan({"cpu": {"period": 50000}}, v2())) == [("cpu.max", "max 50000")]


def test_v2_swap_forms() -> None:
    assert files(plan({"memory": {"limit": 100, "swap": -1}}, v2())) == [
        ("memory.max", "100"), ("memory.swap.max", "max")]
    # update of the swap alone: relative to the current memory.max
    assert files(plan({"memory": {"swap": 300}}, v2(**{"memory.max": "100\n"}))) == [
        ("memory.swap.max", "200")]
    with pytest.raises(CgroupError, match="needs a memory limit"):
        plan({"memory": {"swap": 300}}, v2(**{"memory.max": "max\n"}))


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"memory": {"swappiness": 10}}, "memory.swappiness"),
        ({"memory": {"kernelTCP": 100}}, "memory.kernelTCP"),
        ({"memory": {"disableOOMKiller": True}}, "memory.disableOOMKiller"),
        ({"memory": {"useHierarchy": False}}, "memory.useHierarchy"),
        ({"cpu": {"realtimeRuntime": 1000}}, "cpu.realtimeRuntime"),
        ({"blockIO": {"leafWeight": 100}}, "blockIO.leafWeight"),
        ({"network": {"classID": 1}}, "network"),
    ],
)
def test_v2_unsupported_fields_are_errors(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(CgroupError, match=rf"^linux.resources.{field}: cgroup v2 "):
        plan(doc, v2())


def test_v2_unified_keys() -> None:
    writes = plan({"unified": {"memory.high": "1000", "io.max": "8:0 rbps=1\n8:16 wbps=2"}}, v2())
    assert files(writes) == [("memory.high", "1000"), ("io.max", "8:0 rbps=1\n8:16 wbps=2")]
    for bad in ("../memory.max", "a/b", ""):
        with pytest.raises(CgroupError, match="must be a file name"):
            plan({"unified": {bad: "1"}}, v2())
    with pytest.raises(CgroupError, match="controller 'misc' is not available"):
        plan({"unified": {"misc.max": "1"}}, v2())


def test_v2_devices_become_a_program() -> None:
    p = resources.plan(load_resources({"devices": [{"allow": False, "access": "rwm"}]}), v2())
    assert p.writes == [] and p.device_rules is not None
    prog = dev.compile_program(p.device_rules)
    assert dev.run_program(prog, "c", 1, 3, "rw") == 1
    assert dev.run_program(prog, "b", 8, 0, "r") == 0


def test_update_leaves_devices_alone() -> None:
    p = resources.plan(load_resources({"devices": [{"allow": True, "access": "rwm"}]}), v1(),
                       update=True)
    assert p.writes == [] and p.device_rules is None


# --- device rules --------------------------------------------------------------------------------

RUNC_LIST = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
             "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"]


def test_podman_rules_keep_the_defaults() -> None:
    rules = dev.container_rules([{"allow": False, "access": "rwm"}])
    writes = dev.v1_writes(rules)
    assert writes[:2] == [("devices.deny", "a"), ("devices.deny", "a")]
    assert [line for _, line in writes[2:]] == RUNC_LIST
    emu = dev.Emulator().apply_all([dev.Rule(False, "a")] + rules)
    assert emu.list() == RUNC_LIST  # what runc 1.1.5 leaves in devices.list


def test_only_resources_and_defaults_allow_and_explicit_denies_win() -> None:
    """S13: nothing but linux.resources.devices and the defaults allows a device (a node of
    linux.devices, say b 8:99, is not an input here at all)."""
    rules = dev.container_rules(
        [{"allow": False, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 3,
                                             "access": "w"},
         {"allow": True, "type": "b", "major": 8, "minor": 98, "access": "r"}],
    )
    emu = dev.Emulator().apply_all([dev.Rule(False, "a")] + rules)
    assert not emu.allows("b", 8, 99, "r")
    assert emu.allows("b", 8, 98, "r")
    assert not emu.allows("b", 8, 98, "w")
    assert not emu.allows("c", 1, 3, "w")
    assert emu.allows("c", 1, 3, "r")
    assert not emu.allows("b", 8, 0, "r")
    assert emu.allows("b", 8, 0, "m")


def test_rule_lines() -> None:
    assert dev.Rule(True, "c", 10, dev.ANY, "mwr").line() == "c 10:* rwm"
    assert dev.from_spec({"allow": False}).line() == "a *:* rwm"


def test_emulator_default_allow_mode() -> None:
    emu = dev.Emulator().apply_all([dev.Rule(True, "a"), dev.Rule(False, "c", 1, 3, "w")])
    assert emu.allows("c", 1, 3, "r") and not emu.allows("c", 1, 3, "rw")
    assert emu.list() == ["a *:* rwm"]


def _random_rules(rng: random.Random) -> list[dev.Rule]:
    out = []
    for _ in range(rng.randint(0, 8)):
        t = rng.choice("abcc")
        out.append(dev.Rule(rng.random() < 0.6, t, rng.choice([dev.ANY, 1, 8]),
                            rng.choice([dev.ANY, 3, 0]),
                            "".join(c for c in "rwm" if rng.random() < 0.6) or "r"))
    return out


def test_program_answers_like_the_v1_controller() -> None:
    """The compiled program, interpreted, agrees with the emulated v1 controller everywhere."""
    rng = random.Random(1234)
    requests = list(itertools.product("bc", (1, 8, 5), (3, 0, 7),
                                      ("r", "w", "m", "rw", "rwm")))
    for _ in range(300):
        rules = _random_rules(rng)
        emu = dev.Emulator().apply_all([dev.Rule(False, "a")] + rules)
        prog = dev.compile_program(rules)
        for t, ma, mi, acc in requests:
            assert dev.run_program(prog, t, ma, mi, acc) == int(emu.allows(t, ma, mi, acc)), (
                rules, t, ma, mi, acc)


def test_program_encoding() -> None:
    prog = dev.compile_program([])
    code = dev.encode(prog)
    assert len(code) == 8 * len(prog)
    assert code[-8:] == bytes([0x95, 0, 0, 0, 0, 0, 0, 0])  # exit


# --- parsers -------------------------------------------------------------------------------------


def test_parsers() -> None:
    assert parse_list("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_list("\n") == []
    assert _blkio_entries("254:0 Read 10\n254:0 Write 0\nTotal 10\n") == [
        {"major": 254, "op": "Read", "value": 10}, {"major": 254, "op": "Write"}]
    assert parse_duration("5s") == 5
    assert parse_duration("500ms") == 0.5
    assert parse_duration("1m30s") == 90
    assert parse_duration("2") == 2
    with pytest.raises(PyruncError):
        parse_duration("5 parsecs")
    assert ram_in_bytes("256m") == 256 << 20
    assert ram_in_bytes("1GiB") == 1 << 30
    assert ram_in_bytes("1024") == 1024
    assert ram_in_bytes("-1") == -1
    with pytest.raises(PyruncError):
        ram_in_bytes("lots")


def test_update_flags_document() -> None:
    from pyrunc import cli

    args = cli.command_parser("update").parse_args([
        "--memory", "100m", "--memory-swap", "-1", "--cpu-share", "300", "--cpuset-cpus", "0",
        "--pids-limit", "0", "--blkio-weight", "500", "c"])  # fmt: skip
    assert document_from_flags(args) == {
        "memory": {"limit": 100 << 20, "swap": -1},
        "cpu": {"shares": 300, "cpus": "0"},
        "pids": {"limit": 0},
        "blockIO": {"weight": 500},
    }
    load_resources(document_from_flags(args))  # valid LinuxResources


# --- the manager and stats on a fake cgroup tree (v2 paths this host cannot show) ---------------


def _fake_v2(tmp_path: Any, files: dict[str, str]) -> Any:
    from pyrunc.cgroups.manager import Cgroups

    mount = tmp_path / "cg2"
    mount.mkdir()
    lay = layout.detect(f"29 23 0:26 / {mount} rw - cgroup2 cgroup2 rw\n")
    record: dict = {}
    cg = Cgroups.create(lay, "/pod/ctr", record)
    for name, text in files.items():
        (mount / "pod" / "ctr" / name).write_text(text)
    return cg, record, mount


def test_manager_records_what_it_creates_and_removes_only_that(tmp_path: Any) -> None:
    from pyrunc.cgroups.manager import Cgroups

    mount = tmp_path / "cg2"
    (mount / "pod").mkdir(parents=True)  # exists already: joined, never removed
    lay = layout.detect(f"29 23 0:26 / {mount} rw - cgroup2 cgroup2 rw\n")
    record: dict = {}
    cg = Cgroups.create(lay, "/pod/a/b", record)
    assert record["layout"] == "v2" and record["path"] == "/pod/a/b"
    assert record["dirs"] == [{"key": "", "dir": f"{mount}/pod/a/b", "mount": str(mount),
                               "created": [f"{mount}/pod/a", f"{mount}/pod/a/b"]}]
    assert cg.freezer_file == f"{mount}/pod/a/b/cgroup.freeze"
    (mount / "pod" / "a" / "other").mkdir()  # another container under the same parent
    cg.destroy(timeout=0.1)
    assert not (mount / "pod" / "a" / "b").exists()
    assert (mount / "pod" / "a" / "other").exists()  # a shared parent in use stays
    (mount / "pod" / "a" / "other").rmdir()
    Cgroups(record).destroy(timeout=0.1)
    assert not (mount / "pod" / "a").exists() and (mount / "pod").exists()


def test_manager_removes_empty_parents_of_its_own_tree(tmp_path: Any) -> None:
    """/pyrunc/r-X made by container A, still used by B when A went: B's delete removes it."""
    from pyrunc.cgroups.manager import Cgroups

    mount = tmp_path / "cg2"
    mount.mkdir()
    lay = layout.detect(f"29 23 0:26 / {mount} rw - cgroup2 cgroup2 rw\n")
    a_rec: dict = {}
    b_rec: dict = {}
    Cgroups.create(lay, "/pyrunc/r-x/a", a_rec)
    Cgroups.create(lay, "/pyrunc/r-x/b", b_rec)
    assert b_rec["dirs"][0]["created"] == [f"{mount}/pyrunc/r-x/b"]
    Cgroups(a_rec).destroy(timeout=0.1)
    assert (mount / "pyrunc" / "r-x" / "b").is_dir()
    Cgroups(b_rec).destroy(timeout=0.1)
    assert not (mount / "pyrunc").exists()
    # a parent outside pyrunc's tree that this container did not make is never removed
    (mount / "libpod_parent").mkdir()
    c_rec: dict = {}
    Cgroups.create(lay, "/libpod_parent/c", c_rec)
    Cgroups(c_rec).destroy(timeout=0.1)
    assert (mount / "libpod_parent").is_dir() and not (mount / "libpod_parent" / "c").exists()


def test_manager_v2_freeze_and_pids(tmp_path: Any) -> None:
    cg, _record, mount = _fake_v2(tmp_path, {"cgroup.freeze": "0\n", "cgroup.events":
                                             "populated 1\nfrozen 1\n", "cgroup.procs": "7\n5\n"})
    (mount / "pod" / "ctr" / "sub").mkdir()
    (mount / "pod" / "ctr" / "sub" / "cgroup.procs").write_text("9\n")
    assert not cg.is_frozen()
    cg.freeze()
    assert (mount / "pod" / "ctr" / "cgroup.freeze").read_text().strip() == "1"
    assert cg.is_frozen()
    cg.thaw()
    assert not cg.is_frozen()
    assert cg.pids() == [5, 7, 9]


def test_manager_applies_a_plan(tmp_path: Any) -> None:
    names = ["memory.max", "cpu.weight", "pids.max", "cgroup.controllers"]
    cg, _record, mount = _fake_v2(tmp_path, dict.fromkeys(names, ""))
    (mount / "pod" / "ctr" / "cgroup.controllers").write_text("cpu memory pids\n")
    lay = layout.Layout("v2", [], ("cpu", "memory", "pids"))
    host = cg.host(lay)
    p = resources.plan(load_resources({"memory": {"limit": 1000}, "cpu": {"shares": 1024},
                                       "pids": {"limit": 0}}), host, update=True)
    cg.apply(p)
    assert (mount / "pod" / "ctr" / "memory.max").read_text() == "1000"
    assert (mount / "pod" / "ctr" / "cpu.weight").read_text() == "39"
    assert (mount / "pod" / "ctr" / "pids.max").read_text() == "0"
    with pytest.raises(CgroupError, match=r"^linux.resources.blockIO.weight: this host has no io "):
        resources.plan(load_resources({"blockIO": {"weight": 100}}), host, update=True)


def test_stats_v2_shape(tmp_path: Any) -> None:
    from pyrunc.cgroups.stats import UNLIMITED_V2, stats

    cg, _record, _mount = _fake_v2(tmp_path, {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\n"
                    "nr_throttled 1\nthrottled_usec 20\n",
        "memory.current": "4096\n", "memory.max": "max\n", "memory.swap.current": "0\n",
        "memory.swap.max": "max\n", "memory.stat": "anon 100\nfile 200\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        "pids.current": "2\n", "pids.max": "10\n",
        "io.stat": "8:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
    })
    data = stats(cg)
    assert data["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                           "throttling": {"periods": 4, "throttledPeriods": 1,
                                          "throttledTime": 20000}}
    assert data["memory"]["usage"] == {"limit": UNLIMITED_V2, "usage": 4096, "failcnt": 3}
    assert data["memory"]["cache"] == 200 and data["memory"]["raw"]["anon"] == 100
    assert data["pids"] == {"current": 2, "limit": 10}
    assert data["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 8, "op": "Read", "value": 512}, {"major": 8, "op": "Write"}]
    assert data["network_interfaces"] is None and data["intel_rdt"] == {}
