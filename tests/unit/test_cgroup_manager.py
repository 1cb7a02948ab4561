"""The cgroup manager against the fake host: which directories are made, which files get
which values, freezing, signalling and removal, on v1, v2 and hybrid layouts."""

from __future__ import annotations

import json

import pytest

from pyrunc.cgroups import manager, setup
from pyrunc.errors import CgroupError
from pyrunc.spec.loader import load_config
from unit.fakes import RecordingSyscall

INIT = 4000


def spec(resources: dict | None = None, cgroups_path: str | None = None):  # noqa: ANN201
    linux: dict = {}
    if resources is not None:
        linux["resources"] = resources
    if cgroups_path is not None:
        linux["cgroupsPath"] = cgroups_path
    doc = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": linux}
    return load_config(json.dumps(doc).encode(), "config.json")


def make(fake: RecordingSyscall, kind: str, resources: dict | None = None,
         cgroups_path: str | None = None) -> tuple[manager.Cgroups, dict]:
    """`create`'s cgroup step for an init stopped at its sync point."""
    fake.layout(kind)
    fake.spawn(INIT)
    runtime: dict = {}
    cg = setup.setup(spec(resources, cgroups_path), "c1", INIT, runtime)
    assert cg is not None
    return cg, runtime


def test_hybrid_makes_every_hierarchy_and_writes_v1_files(fake: RecordingSyscall) -> None:
    cg, runtime = make(fake, "hybrid", {"memory": {"limit": 1048576},
                                        "cpu": {"shares": 512, "quota": 50000},
                                        "pids": {"limit": 100}})
    made = [c[1] for c in fake.named("mkdir")]
    for mount in ("memory", "cpu,cpuacct", "pids", "freezer", "systemd", "unified"):
        assert made.count(f"/sys/fs/cgroup/{mount}/pyrunc") == 1
        assert made.count(f"/sys/fs/cgroup/{mount}/pyrunc/c1") == 1
    writes = fake.writes()
    resources = [w for w in writes if "/devices/" not in w[0] and not w[0].endswith(
        ("cgroup.procs", "cpuset.cpus", "cpuset.mems"))]
    assert resources == [
        ("/sys/fs/cgroup/memory/pyrunc/c1/memory.limit_in_bytes", "1048576"),
        ("/sys/fs/cgroup/cpu,cpuacct/pyrunc/c1/cpu.shares", "512"),
        ("/sys/fs/cgroup/cpu,cpuacct/pyrunc/c1/cpu.cfs_quota_us", "50000"),
        ("/sys/fs/cgroup/pids/pyrunc/c1/pids.max", "100"),
    ]
    # a new v1 cpuset cgroup gets its parent's cpus and mems before any task may join
    assert ("/sys/fs/cgroup/cpuset/pyrunc/cpuset.cpus", "0-1") in writes
    assert ("/sys/fs/cgroup/cpuset/pyrunc/c1/cpuset.mems", "0") in writes
    # the init joins every hierarchy, after the resources are written
    joins = [w for w in writes if w[0].endswith("cgroup.procs")]
    assert {w[1] for w in joins} == {str(INIT)}
    assert len(joins) == len(fake.hierarchies)
    assert writes.index(joins[0]) > writes.index(resources[-1])
    # no devices in the config: runc's default list, all denied first
    devices = [w for w in writes if "/devices/" in w[0] and not w[0].endswith("cgroup.procs")]
    assert devices[0] == ("/sys/fs/cgroup/devices/pyrunc/c1/devices.deny", "a")
    assert ("/sys/fs/cgroup/devices/pyrunc/c1/devices.allow", "c 1:3 rwm") in devices
    assert runtime["cgroup_paths"]["memory"] == "/sys/fs/cgroup/memory/pyrunc/c1"
    assert runtime["freezer_state"] == "/sys/fs/cgroup/freezer/pyrunc/c1/freezer.state"
    assert cg.contains(INIT)


def test_v2_converts_and_enables_controllers_from_the_top(fake: RecordingSyscall) -> None:
    make(fake, "v2", {"memory": {"limit": 1048576, "swap": 2097152},
                      "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
                      "pids": {"limit": 10}})
    writes = fake.writes()
    enabling = [w for w in writes if w[0].endswith("cgroup.subtree_control")]
    # the root's, then /pyrunc's: each controller once, ancestors first
    assert [w[0] for w in enabling][0] == "/sys/fs/cgroup/cgroup.subtree_control"
    assert {w[1] for w in enabling if w[0] == "/sys/fs/cgroup/pyrunc/cgroup.subtree_control"} \
        == {"+cpuset", "+cpu", "+io", "+memory", "+pids"}
    d = "/sys/fs/cgroup/pyrunc/c1"
    resources = [(p.removeprefix(d + "/"), v) for p, v in writes
                 if p.startswith(d + "/") and not p.endswith("cgroup.procs")]
    assert resources == [
        ("memory.max", "1048576"),
        ("memory.swap.max", "1048576"),  # memory+swap 2 MiB: 1 MiB of swap
        ("cpu.weight", "39"),  # runc's conversion of 1024 shares
        ("cpu.max", "50000 100000"),
        ("pids.max", "10"),
    ]
    assert writes[-1] == (d + "/cgroup.procs", str(INIT))


def test_v2_device_rules_become_a_program(fake: RecordingSyscall) -> None:
    make(fake, "v2", {"devices": [{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 1, "minor": 3,
                                   "access": "rwm"}]})
    (call,) = fake.named("apply_device_program")
    assert call[1] == "/sys/fs/cgroup/pyrunc/c1"
    assert len(call[2]) % 8 == 0 and call[2]  # eBPF instructions, 8 bytes each


def test_v1_device_rules_are_written_to_the_devices_files(fake: RecordingSyscall) -> None:
    make(fake, "v1", {"devices": [{"allow": False, "access": "rwm"},
                                  {"allow": True, "type": "c", "major": 1, "minor": 3,
                                   "access": "rwm"}]})
    d = "/sys/fs/cgroup/devices/pyrunc/c1/"
    rules = [(p.removeprefix(d), v) for p, v in fake.writes() if p.startswith(d)
             and not p.endswith("cgroup.procs")]
    # the config's rules in order, then runc's default devices (deny all first: a clean list)
    assert rules[:3] == [("devices.deny", "a"), ("devices.deny", "a"),
                         ("devices.allow", "c 1:3 rwm")]
    assert rules[-1] == ("devices.allow", "c 10:200 rwm")  # /dev/net/tun
    assert not fake.named("apply_device_program")


def test_a_refused_write_names_the_field_and_the_file(fake: RecordingSyscall) -> None:
    import errno

    fake.layout("hybrid")
    fake.spawn(INIT)
    fake.fail("write", "/sys/fs/cgroup/memory/pyrunc/c1/memory.limit_in_bytes", errno.EBUSY)
    runtime: dict = {}
    with pytest.raises(CgroupError, match=r"linux.resources.memory.limit: write '4096' to "
                       r"/sys/fs/cgroup/memory/pyrunc/c1/memory.limit_in_bytes: device or "
                       "resource busy"):
        setup.setup(spec({"memory": {"limit": 4096}}), "c1", INIT, runtime)
    # what was made is recorded, and undone
    setup.destroy_recorded(runtime)
    assert not [d for d in fake.dirs if "/pyrunc" in d]


@pytest.mark.parametrize("kind", ["v1", "v2", "hybrid"])
def test_freeze_and_thaw(fake: RecordingSyscall, kind: str) -> None:
    cg, _ = make(fake, kind)
    fake.calls.clear()
    cg.freeze()
    assert cg.is_frozen()
    cg.thaw()
    assert not cg.is_frozen()
    if kind == "v2":
        f = "/sys/fs/cgroup/pyrunc/c1/cgroup.freeze"
        assert fake.writes() == [(f, "1"), (f, "0")]
        assert ("read", "/sys/fs/cgroup/pyrunc/c1/cgroup.events") in fake.calls
    else:
        f = "/sys/fs/cgroup/freezer/pyrunc/c1/freezer.state"
        assert fake.writes() == [(f, "FROZEN"), (f, "THAWED")]


def test_signal_all_freezes_signals_each_listed_process_and_thaws(
        fake: RecordingSyscall) -> None:
    cg, _ = make(fake, "hybrid")
    fake.spawn(4001, cgroup="/pyrunc/c1")
    fake.spawn(4002, cgroup="/pyrunc/c1")
    fake.spawn(4100)  # someone else's, in the root cgroup
    fake.calls.clear()
    cg.signal_all(15)
    names = [c[0] for c in fake.calls if c[0] in ("write", "pidfd_send_signal")]
    assert names == ["write", "pidfd_send_signal", "pidfd_send_signal", "pidfd_send_signal",
                     "write"]
    f = "/sys/fs/cgroup/freezer/pyrunc/c1/freezer.state"
    assert fake.writes() == [(f, "FROZEN"), (f, "THAWED")]
    assert {c[1] for c in fake.named("pidfd_send_signal")} == {INIT, 4001, 4002}
    assert fake.processes[4100].signals == []
    assert fake.fds == {}


def test_signal_all_skips_a_pid_that_left_the_cgroup(fake: RecordingSyscall) -> None:
    cg, _ = make(fake, "v2")
    moved = fake.spawn(4001, cgroup="/pyrunc/c1")
    real_open = fake.pidfd_open

    def open_then_move(pid: int) -> int:  # it moves out between the listing and the pidfd
        fd = real_open(pid)
        if pid == 4001:
            moved.dirs = {"/sys/fs/cgroup"}
        return fd

    fake.pidfd_open = open_then_move  # type: ignore[method-assign]
    cg.signal_all(9)
    assert moved.signals == []
    assert not fake.alive(INIT)


def test_destroy_removes_leaf_first_and_keeps_a_shared_parent(fake: RecordingSyscall) -> None:
    cg, _ = make(fake, "v2")
    fake.mkdir("/sys/fs/cgroup/pyrunc/c1/sub", 0o755)  # one the container made itself
    fake.mkdir("/sys/fs/cgroup/pyrunc/other", 0o755)  # another container's
    fake.exit(fake.processes[INIT])
    fake.calls.clear()
    cg.destroy()
    assert [c[1] for c in fake.named("rmdir")] == [
        "/sys/fs/cgroup/pyrunc/c1/sub", "/sys/fs/cgroup/pyrunc/c1", "/sys/fs/cgroup/pyrunc"]
    assert "/sys/fs/cgroup/pyrunc" in fake.dirs  # busy: another container is in it
    assert "/sys/fs/cgroup/pyrunc/c1" not in fake.dirs


def test_destroy_waits_for_processes_then_says_which_cgroup(fake: RecordingSyscall) -> None:
    cg, _ = make(fake, "v1")
    with pytest.raises(CgroupError, match=r"cgroup /pyrunc/c1 still has processes after 0.05s"):
        cg.destroy(timeout=0.05)
    assert not fake.named("rmdir")


def test_joined_cgroups_are_never_removed(fake: RecordingSyscall) -> None:
    fake.layout("v2")
    fake.mkdir("/sys/fs/cgroup/pod", 0o755)
    fake.mkdir("/sys/fs/cgroup/pod/c1", 0o755)
    fake.spawn(INIT)
    cg = setup.setup(spec(cgroups_path="/pod/c1"), "c1", INIT, {})
    assert cg is not None
    fake.exit(fake.processes[INIT])
    cg.destroy()
    assert not fake.named("rmdir")
