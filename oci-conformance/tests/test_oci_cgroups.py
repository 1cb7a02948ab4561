"""config-linux.md#control-groups, #cgroups-path, #allowed-device-list, resources, #unified,
#intelrdt: read from inside (the checker follows /proc/self/cgroup into a cgroup mount) and
from the host (/proc/<pid>/cgroup and /sys/fs/cgroup)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import Case, Expect, assert_checks, cgroup_dir, cgroup_path_of

req = pytest.mark.req
V1 = Path("/sys/fs/cgroup/memory").is_dir()
needs_v1 = pytest.mark.skipif(not V1, reason="these checks read cgroup v1 files (hybrid host)")


def _root_block_device() -> str:
    st = os.stat("/")
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}"


# resource kind -> (linux.resources fragment, [(controller, file, expected value)])
RESOURCES: dict[str, tuple[dict[str, Any], list[tuple[str, str, str]]]] = {
    "memory": (
        {"memory": {"limit": 268435456, "reservation": 134217728, "swappiness": 10}},
        [
            ("memory", "memory.limit_in_bytes", "268435456"),
            ("memory", "memory.soft_limit_in_bytes", "134217728"),
            ("memory", "memory.swappiness", "10"),
        ],
    ),
    "pids": ({"pids": {"limit": 123}}, [("pids", "pids.max", "123")]),
    "cpu": (
        {"cpu": {"shares": 512, "quota": 50000, "period": 100000}},
        [
            ("cpu", "cpu.shares", "512"),
            ("cpu", "cpu.cfs_quota_us", "50000"),
            ("cpu", "cpu.cfs_period_us", "100000"),
        ],
    ),
    "cpuset": (
        {"cpu": {"cpus": "0", "mems": "0"}},
        [("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0")],
    ),
    "blkio": (
        {"blockIO": {"throttleReadBpsDevice": [{"major": 0, "minor": 0, "rate": 1048576}]}},
        [("blkio", "blkio.throttle.read_bps_device", "DEV 1048576")],
    ),
    "hugetlb": (
        {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]},
        [("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304")],
    ),
}  # fmt: skip


@needs_v1
@req("runtime.md#create-4")
@pytest.mark.parametrize("kind", list(RESOURCES))
def test_resources_applied(case: Case, kind: str) -> None:
    """linux.resources values end up in the container's cgroup: read from the host (the cgroup
    of the container process) and from inside through the configured cgroup mount (a cgroup
    the mount does not show is not counted against the runtime)."""
    fragment, files = RESOURCES[kind]
    dev = _root_block_device()
    if kind == "blkio":
        major, minor = dev.split(":")
        entry = fragment["blockIO"]["throttleReadBpsDevice"][0]
        entry["major"], entry["minor"] = int(major), int(minor)
    if kind == "hugetlb" and not Path("/sys/fs/cgroup/hugetlb").is_dir():
        pytest.skip("no hugetlb v1 hierarchy on this host")
    case.config["linux"]["resources"] = fragment
    case.add_mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "ro"])
    extra = Expect()
    for ctrl, name, value in files:
        extra.add("cg", "cgfile", ctrl, name, value.replace("DEV", dev))
    # the host's view is read between create and start, while the cgroup surely exists
    case.set_args(
        "/conformance/checker", "check", "/conformance/io/expect", "--out",
        "/conformance/io/result.json",
    )  # fmt: skip
    (case.io / "expect").write_text(extra.text())
    cid = case.must_create()
    pid = case.pid_of[cid]
    host_view = {}
    for ctrl, name, _ in files:
        path = cgroup_path_of(pid, ctrl)
        host_file = cgroup_dir(ctrl, path or "/nonexistent") / name
        host_view[(ctrl, name)] = (
            host_file.read_text().strip() if host_file.exists() else f"{host_file} missing"
        )
    case.must_start(cid)
    case.wait_stopped(cid)
    results = case.read_results(extra)
    if results.problem:
        pytest.fail(results.problem)
    problems = []
    for check, (ctrl, name, value) in zip(results.select("cg"), files, strict=True):
        want = value.replace("DEV", dev)
        if host_view[(ctrl, name)] != want:
            problems.append(f"host: {ctrl}/{name} is {host_view[(ctrl, name)]!r}, not {want!r}")
        if check.status == "fail":
            problems.append(f"inside: {check.line}: {check.detail}")
    assert not problems, "\n".join(problems)


@req("runtime.md#create-6")
def test_unavailable_controller_is_an_error(case: Case) -> None:
    """network (net_cls/net_prio) limits on a host that has no such hierarchy cannot be
    applied, so create must fail."""
    if any(Path(f"/sys/fs/cgroup/{c}").is_dir() for c in ("net_cls", "net_cls,net_prio")):
        pytest.skip("this host has a net_cls hierarchy")
    case.config["linux"]["resources"] = {"network": {"classID": 1048577}}
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted network.classID with no net_cls controller to apply it"


@needs_v1
@req("config-linux.md#cgroups-path-2")
def test_absolute_cgroups_path(case: Case) -> None:
    """An absolute cgroupsPath is taken from the cgroup mount point: the process's cgroup is
    exactly that path in the controllers its resources need."""
    case.config["linux"]["resources"] = {"memory": {"limit": 268435456}, "pids": {"limit": 100}}
    case.set_args("/bin/true")
    cid = case.must_create()
    pid = case.pid_of[cid]
    problems = []
    for ctrl in ("memory", "pids"):
        path = cgroup_path_of(pid, ctrl)
        if path != case.cgroups_path:
            problems.append(f"{ctrl}: {path}, expected {case.cgroups_path}")
        elif not cgroup_dir(ctrl, path).is_dir():
            problems.append(f"{ctrl}: {cgroup_dir(ctrl, path)} does not exist")
    assert not problems, "; ".join(problems)


@needs_v1
@req("config-linux.md#cgroups-path-3")
@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_same_cgroups_path_same_place(case: Case, form: str) -> None:
    """Two containers created one after the other with the same cgroupsPath land in the same
    cgroup."""
    if form == "relative":
        case.config["linux"]["cgroupsPath"] = case.cgroups_path.lstrip("/").replace("/", "-")
    case.config["linux"]["resources"] = {"pids": {"limit": 100}}
    case.set_args("/bin/true")
    places = []
    for _ in range(2):
        cid = case.must_create()
        places.append(cgroup_path_of(case.pid_of[cid], "pids"))
        res = case.delete(cid, force=True)
        assert res.ok, res
    assert places[0] and places[0] == places[1], places


@needs_v1
@req("config-linux.md#control-groups-1")
def test_non_empty_cgroup(case: Case) -> None:
    """A runtime that checks the cgroup is fit for purpose (here: not already holding a
    process) must fail create. Not checking is allowed: then the test is skipped."""
    target = cgroup_dir("pids", case.cgroups_path)
    target.mkdir(parents=True)
    sleeper = subprocess.Popen(["sleep", "300"])

    def undo() -> None:
        sleeper.kill()
        sleeper.wait()
        (Path("/sys/fs/cgroup/pids") / "cgroup.procs").write_text(str(os.getpid()))
        for d in (target,):
            try:
                d.rmdir()
            except OSError:
                pass

    case.cleanups.append(undo)
    (target / "cgroup.procs").write_text(str(sleeper.pid))
    case.config["linux"]["resources"] = {"pids": {"limit": 100}}
    case.set_args("/bin/true")
    _, res = case.create()
    if res.ok:
        pytest.skip("the runtime does not check whether the cgroup is empty (it MAY skip this)")


@needs_v1
@req("config-linux.md#allowed-device-list-1")
@pytest.mark.parametrize("order", ["deny-then-allow", "allow-then-deny"])
def test_device_rules_in_listed_order(case: Case, order: str) -> None:
    """Device cgroup rules apply in order: the later rule for /dev/loop-control (10:237) wins."""
    if not Path("/dev/loop-control").exists():
        pytest.skip("no /dev/loop-control on this host")
    allow = {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "rw"}
    deny = {"allow": False, "type": "c", "major": 10, "minor": 237, "access": "rwm"}
    rules = (
        [{"allow": False, "access": "rwm"}, allow] if order == "deny-then-allow" else [allow, deny]
    )
    case.config["linux"]["resources"] = {"devices": rules}
    (case.io / "loop-control").touch()
    case.add_mount("/conformance/io/loop-control", "none", "/dev/loop-control", ["bind"])
    want = "ok" if order == "deny-then-allow" else "1"
    extra = Expect().add("devrule", "open", "/conformance/io/loop-control", "r", want)
    assert_checks(case.check(extra), "devrule")


# --- unified (cgroup v2 keys) -----------------------------------------------------------


def _unified_controllers() -> set[str]:
    f = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    return set(f.read_text().split()) if f.exists() else set()


@needs_v1
@req("config-linux.md#unified-3")
def test_unified_key_for_missing_controller(case: Case) -> None:
    """A unified key whose controller is not on the cgroup2 hierarchy must be an error."""
    if "memory" in _unified_controllers():
        pytest.skip("memory is available on cgroup2 here")
    case.config["linux"]["resources"] = {"unified": {"memory.high": "268435456"}}
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted unified memory.high with no memory controller on cgroup2"


@req("config-linux.md#unified-2")
def test_unified_unknown_key_written(case: Case) -> None:
    """A unified key the runtime has no special handling for is written as is (here the core
    file cgroup.max.depth, which needs no controller)."""
    if (
        not Path("/sys/fs/cgroup/unified/cgroup.max.depth").exists()
        and not Path("/sys/fs/cgroup/cgroup.max.depth").exists()
    ):
        pytest.skip("no cgroup2 hierarchy")
    case.config["linux"]["resources"] = {"unified": {"cgroup.max.depth": "3"}}
    case.set_args("/bin/true")
    cid, res = case.create()
    if not res.ok:
        pytest.skip(
            f"the runtime refuses `unified` on this host (allowed): {res.err.strip()[:150]}"
        )
    pid = case.pid_of[cid]
    path = cgroup_path_of(pid, "")
    base = Path("/sys/fs/cgroup/unified") if V1 else Path("/sys/fs/cgroup")
    target = base / (path or "/").lstrip("/") / "cgroup.max.depth"
    got = target.read_text().strip() if target.exists() else "missing"
    assert got == "3", f"{target}: {got}"


# --- Intel RDT ---------------------------------------------------------------------------


@req("config-linux.md#intelrdt-2")
def test_intel_rdt_without_resctrl(case: Case) -> None:
    """intelRdt set while no resctrl filesystem is mounted: create must fail."""
    if any(line.split()[2] == "resctrl" for line in Path("/proc/mounts").read_text().splitlines()):
        pytest.skip("resctrl is mounted on this host")
    case.config["linux"]["intelRdt"] = {"closID": "oci-conformance"}
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted intelRdt with no resctrl mounted"
