"""Cgroups for real (this host is hybrid: v1 controllers plus an empty cgroup2): limits land in
the files, the OOM killer and the pids limit bite, pause freezes, update/ps/events/kill --all
work through the cgroup, denied devices cannot be opened, and nothing is left after delete or
after a failed create. Every test uses its own cgroup names and removes them even on failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Bundle, Pyrunc

from pyrunc.cgroups import layout as layout_mod

LAYOUT = layout_mod.detect()
pytestmark = pytest.mark.skipif(not LAYOUT.hierarchies, reason="no cgroup hierarchy mounted")
V1 = LAYOUT.kind in ("v1", "hybrid")


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def dirs_of(path: str) -> dict[str, str]:
    """{hierarchy key: directory} of a cgroup path on this host."""
    return {h.key: h.dir(path) for h in LAYOUT.hierarchies}


def cdir(path: str, controller: str) -> str:
    h = LAYOUT.for_controller(controller)
    assert h is not None, f"no {controller} hierarchy"
    return h.dir(path)


def proc_cgroups(pid: int) -> dict[str, str]:
    out = {}
    for line in read(f"/proc/{pid}/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        out[controllers] = path
    return out


def wait_until(predicate: Callable[[], Any], timeout: float = 10, what: str = "it") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _remove_tree(d: str) -> None:
    """Kill what is in a cgroup tree and rmdir it bottom up (teardown only)."""
    for dirpath, _dirs, _files in sorted(os.walk(d), key=lambda w: -len(w[0])):
        try:
            if os.path.exists(os.path.join(dirpath, "freezer.state")):
                with open(os.path.join(dirpath, "freezer.state"), "w") as f:
                    f.write("THAWED")
            for pid in read(os.path.join(dirpath, "cgroup.procs")).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass
        except OSError:
            pass
        for _ in range(200):
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


class CgroupTracker:
    """Registers cgroup paths a test will use; at teardown removes them and any ancestor that
    did not exist before the test."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, dict[str, bool]]] = []

    def __call__(self, path: str) -> str:
        existed = {}
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            anc = "/" + "/".join(parts[:i])
            existed[anc] = all(os.path.isdir(d) for d in dirs_of(anc).values())
        self.paths.append((path, existed))
        return path

    def cleanup(self) -> None:
        for path, existed in reversed(self.paths):
            for d in dirs_of(path).values():
                if os.path.isdir(d):
                    _remove_tree(d)
            for anc in sorted(existed, key=len, reverse=True):
                if existed[anc]:
                    continue
                for d in dirs_of(anc).values():
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass


@pytest.fixture
def cgroups() -> Iterator[CgroupTracker]:
    tracker = CgroupTracker()
    try:
        yield tracker
    finally:
        tracker.cleanup()


def unique(prefix: str = "pyrunc-t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_gone(path: str) -> None:
    left = [d for d in dirs_of(path).values() if os.path.exists(d)]
    assert not left, f"cgroup directories left behind: {left}"


def set_resources(bundle: Bundle, cgroups_path: str | None, resources: dict[str, Any] | None,
                  **linux: Any) -> None:
    lin = bundle.config["linux"]
    if cgroups_path is not None:
        lin["cgroupsPath"] = cgroups_path
    if resources is not None:
        lin["resources"] = resources
    lin.update(linux)
    bundle.write()


def out_dir(bundle: Bundle, tmp_path: Path) -> Path:
    """A host directory bind-mounted at /out in the container."""
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    (bundle.rootfs / "out").mkdir(exist_ok=True)
    bundle.add_mount("/out", "bind", str(out), ["rbind", "rw"])
    return out


def init_pid(pyrunc: Pyrunc, cid: str) -> int:
    return int(pyrunc.state(cid)["pid"])


# --- limits in the files, the init in every hierarchy, cleanup ---------------------------------


@pytest.mark.skipif(not V1, reason="checks v1 file names")
def test_limits_in_files_and_init_in_every_hierarchy(
    pyrunc: Pyrunc, bundle: Bundle, cgroups: CgroupTracker
) -> None:
    parent = cgroups(f"/{unique()}")
    path = f"{parent}/ctr"
    res = {
        "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "pids": {"limit": 50},
        "devices": [{"allow": False, "access": "rwm"}],
    }
    majors = [line.split() for line in read("/proc/partitions").splitlines()[2:] if line.strip()]
    if majors:
        res["blockIO"] = {"throttleReadBpsDevice": [
            {"major": int(majors[0][0]), "minor": int(majors[0][1]), "rate": 1 << 20}]}
    set_resources(bundle, path, res)
    bundle.set_args("sleep", "1000")
    pyrunc("run", "-d", "-b", bundle, "lim", check=True)
    pid = init_pid(pyrunc, "lim")
    # /proc/<pid>/cgroup names the container's cgroup in every hierarchy, cgroup2 included
    seen = proc_cgroups(pid)
    for h in LAYOUT.hierarchies:
        key = h.key or ""
        assert seen.get(key) == path, (key, seen)
    assert read(cdir(path, "memory") + "/memory.limit_in_bytes") == str(64 << 20)
    assert read(cdir(path, "memory") + "/memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(cdir(path, "memory") + "/memory.swappiness") == "10"
    assert read(cdir(path, "cpu") + "/cpu.shares") == "512"
    assert read(cdir(path, "cpu") + "/cpu.cfs_quota_us") == "50000"
    assert read(cdir(path, "cpuset") + "/cpuset.cpus") == "0"
    assert read(cdir(path, "pids") + "/pids.max") == "50"
    if majors:
        got = read(cdir(path, "blkio") + "/blkio.throttle.read_bps_device")
        assert got == f"{majors[0][0]}:{majors[0][1]} {1 << 20}"
    # the device list is runc's (deny all, then its defaults)
    devices_list = read(cdir(path, "devices") + "/devices.list").splitlines()
    assert sorted(devices_list) == sorted([
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm",
        "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"])
    # what hot commands need is in state.json, as plain data
    state = json.loads((pyrunc.root / "lim" / "state.json").read_text())
    record = state["pyrunc"]["cgroup"]
    assert record["path"] == path
    assert {d["key"]: d["dir"] for d in record["dirs"]} == dirs_of(path)
    assert state["pyrunc"]["freezer_state"] == cdir(path, "freezer") + "/freezer.state"
    pyrunc("delete", "--force", "lim", check=True)
    assert_gone(path)
    assert_gone(parent)  # made by pyrunc for this container, so removed too


def test_default_path_and_relative_path(pyrunc: Pyrunc, bundle: Bundle,
                                        cgroups: CgroupTracker) -> None:
    from pyrunc.cgroups.paths import root_tag

    cid = unique("dflt")
    tag = root_tag(str(pyrunc.root))
    cgroups(f"/pyrunc/{tag}/{cid}")
    rel = unique("rel")
    cgroups(f"/pyrunc/{rel}/x")
    bundle.set_args("sleep", "1000")
    pyrunc("run", "-d", "-b", bundle, cid, check=True)
    # a --root other than /run/pyrunc gets its own parent: two roots never share a cgroup
    assert set(proc_cgroups(init_pid(pyrunc, cid)).values()) == {f"/pyrunc/{tag}/{cid}"}
    set_resources(bundle, f"{rel}/x", None)
    pyrunc("run", "-d", "-b", bundle, "relative", check=True)
    assert set(proc_cgroups(init_pid(pyrunc, "relative")).values()) == {f"/pyrunc/{rel}/x"}
    pyrunc("delete", "--force", cid, check=True)
    pyrunc("delete", "--force", "relative", check=True)
    assert_gone(f"/pyrunc/{tag}")
    assert_gone(f"/pyrunc/{rel}")


# --- the OOM killer and events ---------------------------------------------------------------


@pytest.mark.skipif(LAYOUT.for_controller("memory") is None, reason="no memory controller")
def test_oom_kill_is_reported_by_events(pyrunc: Pyrunc, bundle: Bundle, cgroups: CgroupTracker,
                                        tmp_path: Path) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, {"memory": {"limit": 32 << 20, "swap": 32 << 20}})
    # dd's 96M buffer cannot fit in 32M: the kernel kills dd, the shell lives on. Only once
    # `events` watches (its first stats line) may dd run: it reports OOMs from its start on
    go = out_dir(bundle, tmp_path) / "go"
    bundle.sh("while [ ! -e /out/go ]; do sleep 0.02; done; "
              "dd if=/dev/zero of=/dev/null bs=96M count=1; echo dd=$?; sleep 0.6")
    pyrunc("run", "-d", "-b", bundle, "oom", check=True)
    events = pyrunc.start_background("events", "--interval", "250ms", "oom")
    wait_until(lambda: '"type":"stats"' in events.stdout_so_far(), timeout=30,
               what="the first stats line of events")
    go.touch()
    result = events.wait(timeout=20)  # ends by itself when the container stops
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {"type": "oom", "id": "oom"} in lines
    stats = [e for e in lines if e["type"] == "stats"]
    assert stats and stats[0]["id"] == "oom"
    assert stats[0]["data"]["memory"]["usage"]["limit"] == 32 << 20
    if V1:
        control = read(cdir(path, "memory") + "/memory.oom_control")
        assert "oom_kill 1" in control
    pyrunc("delete", "oom", check=True)
    assert_gone(path)


def test_events_stats_shape(pyrunc: Pyrunc, bundle: Bundle, cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}})
    bundle.set_args("sleep", "1000")
    pyrunc("run", "-d", "-b", bundle, "st", check=True)
    proc = pyrunc("events", "--stats", "st", check=True)
    event = json.loads(proc.stdout)
    assert event["type"] == "stats" and event["id"] == "st"
    data = event["data"]
    assert set(data) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert data["pids"] == {"current": 1, "limit": 20}
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["memory"]["usage"]["usage"] > 0
    assert "total" in data["cpu"]["usage"]
    pyrunc("kill", "st", "KILL", check=True)
    wait_until(lambda: pyrunc.status("st") == "stopped", what="stopped")
    proc = pyrunc("events", "--stats", "st")
    assert proc.returncode == 1 and "container with id st is not running" in proc.stderr


# --- pids ------------------------------------------------------------------------------------


def test_fork_bomb_stops_at_the_pids_limit(pyrunc: Pyrunc, bundle: Bundle, tmp_path: Path,
                                           cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    out = out_dir(bundle, tmp_path)
    set_resources(bundle, path, {"pids": {"limit": 8}})
    # a bounded bomb: each round forks a sleeper; ash gives up at the first failed fork
    bundle.sh("i=0; while [ $i -lt 40 ]; do sleep 30 & echo $! >> /out/pids; i=$((i+1)); done; "
              "echo finished > /out/end")
    pyrunc("run", "-d", "-b", bundle, "bomb", check=True)
    wait_until(lambda: pyrunc.status("bomb") == "stopped", what="the shell to give up")
    started = (out / "pids").read_text().split()
    assert len(started) == 7  # 8 tasks: the shell and 7 sleepers
    assert not (out / "end").exists()
    pyrunc("delete", "bomb", check=True)
    assert_gone(path)


# --- pause / resume ----------------------------------------------------------------------------


def test_pause_stops_the_container_and_resume_restarts_it(
    pyrunc: Pyrunc, bundle: Bundle, tmp_path: Path, cgroups: CgroupTracker
) -> None:
    path = cgroups(f"/{unique()}")
    out = out_dir(bundle, tmp_path)
    set_resources(bundle, path, None)
    bundle.sh("i=0; while true; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; "
              "sleep 0.02; done")
    pyrunc("run", "-d", "-b", bundle, "pz", check=True)

    def count() -> int:
        try:
            return int((out / "n").read_text() or 0)
        except (OSError, ValueError):
            return 0

    wait_until(lambda: count() > 2, what="the counter")
    pyrunc("pause", "pz", check=True)
    assert pyrunc.status("pz") == "paused"
    freezer = json.loads((pyrunc.root / "pz" / "state.json").read_text())["pyrunc"]["freezer_state"]
    assert read(freezer) in ("FROZEN", "1")
    before = count()
    time.sleep(0.4)
    assert count() == before, "a paused container kept running"
    again = pyrunc("pause", "pz")
    assert again.returncode == 1 and "container not running" in again.stderr
    pyrunc("resume", "pz", check=True)
    assert pyrunc.status("pz") == "running"
    wait_until(lambda: count() > before + 3, what="the counter to move again")
    again = pyrunc("resume", "pz")
    assert again.returncode == 1 and "container not paused" in again.stderr
    # delete --force of a paused container (v1 tasks only die once thawed)
    pyrunc("pause", "pz", check=True)
    pyrunc("delete", "--force", "pz", check=True)
    assert_gone(path)


def test_a_created_container_can_be_paused(pyrunc: Pyrunc, bundle: Bundle,
                                          cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, None)
    bundle.set_args("sleep", "1000")
    pyrunc("create", "-b", bundle, "cp", check=True)
    pyrunc("pause", "cp", check=True)
    assert pyrunc.status("cp") == "paused"  # as runc: frozen wins over created
    start = pyrunc("start", "cp")
    assert start.returncode == 1 and "cannot start an already paused container" in start.stderr
    pyrunc("resume", "cp", check=True)
    assert pyrunc.status("cp") == "created"
    pyrunc("start", "cp", check=True)
    assert pyrunc.status("cp") == "running"
    pyrunc("delete", "--force", "cp", check=True)
    assert_gone(path)


# --- update, ps, kill --all ------------------------------------------------------------------


@pytest.mark.skipif(not V1, reason="checks v1 file names")
def test_update_changes_the_files(pyrunc: Pyrunc, bundle: Bundle, tmp_path: Path,
                                  cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, {"memory": {"limit": 64 << 20, "swap": 128 << 20}})
    bundle.set_args("sleep", "1000")
    pyrunc("run", "-d", "-b", bundle, "up", check=True)
    mem = cdir(path, "memory")
    pyrunc("update", "--memory", "100m", "--cpu-share", "300", "--pids-limit", "77",
           "--cpuset-cpus", "0", "up", check=True)
    assert read(mem + "/memory.limit_in_bytes") == str(100 << 20)
    assert read(cdir(path, "cpu") + "/cpu.shares") == "300"
    assert read(cdir(path, "pids") + "/pids.max") == "77"
    # podman's document: the limit grows past the old memory+swap, swap is written first
    doc = {"memory": {"limit": 256 << 20, "swap": 512 << 20}, "cpu": {"shares": 512}}
    pyrunc("update", "--resources", "-", "up", input=json.dumps(doc), check=True)
    assert read(mem + "/memory.limit_in_bytes") == str(256 << 20)
    assert read(mem + "/memory.memsw.limit_in_bytes") == str(512 << 20)
    doc_file = tmp_path / "res.json"
    doc_file.write_text(json.dumps({"pids": {"limit": -1}}))
    pyrunc("update", "-r", doc_file, "up", check=True)
    assert read(cdir(path, "pids") + "/pids.max") == "max"
    # errors name the field and change nothing
    bad = pyrunc("update", "--resources", "-", "up", input='{"pids": {"limit": "x"}}')
    assert bad.returncode == 1 and "pids.limit" in bad.stderr
    bad = pyrunc("update", "--cpuset-cpus", "4096", "up")
    assert bad.returncode == 1
    assert "linux.resources.cpu.cpus: write '4096'" in bad.stderr
    pyrunc("delete", "--force", "up", check=True)
    stopped = pyrunc("update", "--memory", "1g", "up")
    assert stopped.returncode == 1 and "does not exist" in stopped.stderr
    assert_gone(path)


def test_ps_and_kill_all_through_the_cgroup(pyrunc: Pyrunc, bundle: Bundle,
                                            cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, None)
    # share the host's pid namespace: kill --all cannot rely on a pid namespace here
    lin = bundle.config["linux"]
    lin["namespaces"] = [n for n in lin["namespaces"] if n["type"] != "pid"]
    bundle.sh("sleep 1001 & sleep 1002 & exec sleep 1003")
    pyrunc("run", "-d", "-b", bundle, "pskill", check=True)
    init = init_pid(pyrunc, "pskill")
    procs_file = os.path.join(next(iter(dirs_of(path).values())), "cgroup.procs")
    wait_until(lambda: len(read(procs_file).split()) == 3, what="three processes")
    pids = json.loads(pyrunc("ps", "--format", "json", "pskill", check=True).stdout)
    assert sorted(pids) == sorted(int(p) for p in read(procs_file).split())
    assert init in pids and len(pids) == 3
    table = pyrunc("ps", "pskill", check=True).stdout.splitlines()
    assert table[0].split()[:3] == ["UID", "PID", "PPID"]
    assert sorted(int(line.split()[1]) for line in table[1:]) == sorted(pids)
    assert any("sleep 1002" in line for line in table)
    custom = pyrunc("ps", "pskill", "-o", "pid,args", check=True).stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and len(custom) == 4
    pyrunc("kill", "--all", "pskill", "KILL", check=True)
    wait_until(lambda: not read(procs_file).split(), what="every process to die")
    pyrunc("delete", "pskill", check=True)
    assert_gone(path)


# --- devices -----------------------------------------------------------------------------------


def _free_char_major() -> int:
    used = set()
    for line in read("/proc/devices").split("Block devices:")[0].splitlines()[1:]:
        parts = line.split()
        if parts and parts[0].isdigit():
            used.add(int(parts[0]))
    return next(m for m in range(240, 200, -1) if m not in used)


@pytest.mark.skipif(LAYOUT.for_controller("devices") is None and LAYOUT.kind != "v2",
                    reason="no devices controller")
def test_denied_device_cannot_be_opened(pyrunc: Pyrunc, bundle: Bundle,
                                        cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    free = _free_char_major()
    set_resources(
        bundle, path,
        {"devices": [{"allow": False, "access": "rwm"},
                     {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"}]},
        devices=[{"type": "c", "path": "/dev/foo", "major": 1, "minor": 3, "fileMode": 0o666},
                 {"type": "c", "path": "/dev/ok", "major": free, "minor": 7, "fileMode": 0o666}],
    )
    bundle.sh("echo x > /dev/foo; echo foo=$?; cat /dev/foo; echo read=$?; cat /dev/ok; "
              "echo ok=$?; head -c 3 /dev/zero | wc -c")
    proc = pyrunc("run", "-b", bundle, "devs")
    out = proc.stdout + proc.stderr
    # /dev/foo (1:3) exists, but the cgroup denies writing it: EPERM
    assert "can't create /dev/foo: Operation not permitted" in out, out
    assert "foo=1" in out and "read=0" in out
    # /dev/ok is only in linux.devices: the node exists, but nothing allows it (S13, as runc)
    assert "can't open '/dev/ok': Operation not permitted" in out and "ok=1" in out, out
    assert "3" in proc.stdout.splitlines()[-1]  # the defaults (/dev/zero) stay allowed
    assert_gone(path)


# --- failures leave nothing behind --------------------------------------------------------------


def test_failed_create_removes_its_cgroups(pyrunc: Pyrunc, bundle: Bundle,
                                           cgroups: CgroupTracker) -> None:
    parent = cgroups(f"/{unique()}")
    path = f"{parent}/a/b"
    set_resources(bundle, path, {"memory": {"limit": 64 << 20}, "cpu": {"cpus": "4096"}})
    proc = pyrunc("create", "-b", bundle, "bad")
    assert proc.returncode == 1
    assert "linux.resources.cpu.cpus: write '4096' to " in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not (pyrunc.root / "bad").exists()
    assert_gone(parent)


@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "cgroupns"])
def test_init_joined_before_hooks_and_cgroupns(pyrunc: Pyrunc, bundle: Bundle, tmp_path: Path,
                                                cgroups: CgroupTracker, cgroupns: bool) -> None:
    """create joins the init to its cgroups while the init mounts (plan.py's cgroup sync
    point); still, a createRuntime hook finds the init in every one of them, and a cgroup
    namespace is unshared only after the join: its root is the container's cgroup."""
    path = cgroups(f"/{unique()}")
    seen = tmp_path / "hook-cgroup"
    script = ("pid=$(grep -o '\"pid\": *[0-9]*' | grep -o '[0-9]*$'); "
              f"cat /proc/$pid/cgroup > {seen}")
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                                 "args": ["sh", "-c", script]}]}
    if cgroupns:
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    bundle.set_args("cat", "/proc/self/cgroup")
    set_resources(bundle, path, None)
    proc = pyrunc("run", "-b", bundle, "joined", check=True)
    in_hook = {}
    for line in seen.read_text().splitlines():
        _, controllers, where = line.split(":", 2)
        in_hook[controllers] = where
    inside = {line.split(":", 2)[1]: line.split(":", 2)[2]
              for line in proc.stdout.splitlines()}
    for h in LAYOUT.hierarchies:
        key = h.key or ""
        assert in_hook.get(key) == path, (key, in_hook)
        assert inside.get(key) == ("/" if cgroupns else path), (key, inside)
    assert_gone(path)


def test_init_failing_while_joined_reports_its_own_error(pyrunc: Pyrunc, bundle: Bundle,
                                                          cgroups: CgroupTracker) -> None:
    """The init's first mount fails while create is joining it to its cgroups: the error is
    the init's (not a cgroup write to a pid that is gone), and the cgroups are removed."""
    path = cgroups(f"/{unique()}")
    bundle.config["mounts"].insert(0, {"destination": "/scratch", "type": "tmpfs",
                                       "source": "tmpfs", "options": ["size=not-a-size"]})
    set_resources(bundle, path, {"memory": {"limit": 64 << 20}})
    proc = pyrunc("create", "-b", bundle, "early")
    assert proc.returncode == 1
    assert "/scratch" in proc.stderr and "cgroup" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not (pyrunc.root / "early").exists()
    assert_gone(path)


def test_unavailable_controller_is_a_clear_error(pyrunc: Pyrunc, bundle: Bundle,
                                                 cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    candidates = [
        ("net_cls", {"network": {"classID": 1}}, "linux.resources.network.classID: "),
        ("rdma", {"rdma": {"mlx5_0": {"hcaHandles": 1}}}, "linux.resources.rdma.mlx5_0: "),
        ("hugetlb", {"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]},
         "linux.resources.hugepageLimits[0]: "),
    ]
    missing = [(c, r, m) for c, r, m in candidates if LAYOUT.for_controller(c) is None]
    if not missing:
        pytest.skip("this host has every controller mounted")
    controller, res, message = missing[0]
    set_resources(bundle, path, res)
    proc = pyrunc("create", "-b", bundle, "nores")
    assert proc.returncode == 1
    assert message + f"this host has no {controller} controller" in proc.stderr
    assert_gone(path)


def test_non_empty_cgroup_warns_and_a_joined_one_is_kept(
    pyrunc: Pyrunc, bundle: Bundle, cgroups: CgroupTracker
) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, None)
    bundle.set_args("sleep", "1000")
    # only one hierarchy has the cgroup, with a process in it: a warning, as runc 1.1.5, and
    # delete removes only the directories create made in the other hierarchies
    squatted = cdir(path, "pids") if V1 else dirs_of(path)[""]
    os.makedirs(squatted)
    squatter = subprocess.Popen(["sleep", "100"])
    try:
        with open(os.path.join(squatted, "cgroup.procs"), "w") as f:
            f.write(str(squatter.pid))
        proc = pyrunc("create", "-b", bundle, "full")
        assert proc.returncode == 0, proc.stderr
        assert "level=warning" in proc.stderr
        assert "container's cgroup is not empty: 1 process(es) found" in proc.stderr
        pyrunc("delete", "--force", "full", check=True)
        left = [d for d in dirs_of(path).values() if os.path.exists(d)]
        assert left == [squatted]
    finally:
        squatter.kill()
        squatter.wait()
    for key, d in dirs_of(path).items():
        os.makedirs(d, exist_ok=True)
        if key and "cpuset" in key.split(","):
            for name in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(d, name), "w") as f:
                    f.write(read(os.path.join(os.path.dirname(d), name)))
    # the cgroups existed before: a container joins them and delete leaves them
    set_resources(bundle, path, {"pids": {"limit": 30}})
    pyrunc("run", "-d", "-b", bundle, "joined", check=True)
    assert set(proc_cgroups(init_pid(pyrunc, "joined")).values()) == {path}
    pyrunc("delete", "--force", "joined", check=True)
    assert all(os.path.isdir(d) for d in dirs_of(path).values())


# --- what podman and containerd send ------------------------------------------------------------


def test_podman_style_config(pyrunc: Pyrunc, bundle: Bundle, cgroups: CgroupTracker) -> None:
    cid = unique("podman")
    path = cgroups(f"/libpod_parent/libpod-{cid}")
    set_resources(bundle, path, {"devices": [{"allow": False, "access": "rwm"}],
                                 "memory": {"limit": 48 << 20}})
    lin = bundle.config["linux"]
    lin["namespaces"].append({"type": "cgroup"})
    mem_sub = os.path.basename(LAYOUT.for_controller("memory").mount) if V1 else ""
    limit_file = f"/sys/fs/cgroup/{mem_sub}/memory.limit_in_bytes" if V1 else \
        "/sys/fs/cgroup/memory.max"
    bundle.sh(f"echo hi > /dev/null && echo null-ok; head -c 4 /dev/urandom | wc -c; "
              f"cat {limit_file}; cat /proc/self/cgroup")
    proc = pyrunc("run", "-b", bundle, cid)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert "null-ok" in out and "4" in out
    assert str(48 << 20) in out  # the container's own cgroup is its /sys/fs/cgroup
    assert "0::/" in out  # and its cgroup namespace root
    assert_gone(path)


def test_containerd_style_config(pyrunc: Pyrunc, bundle: Bundle, cgroups: CgroupTracker) -> None:
    ns = unique("k8s")
    path = cgroups(f"/{ns}/ctr1")
    set_resources(bundle, path, {"cpu": {"shares": 256}, "pids": {"limit": 100}})
    bundle.set_args("sleep", "1000")
    pyrunc("create", "-b", bundle, "--pid-file", bundle.path / "init.pid", "ctr1", check=True)
    pid = int((bundle.path / "init.pid").read_text())
    assert set(proc_cgroups(pid).values()) == {path}
    pyrunc("start", "ctr1", check=True)
    proc = pyrunc("ps", "--format", "json", "ctr1", check=True)
    assert json.loads(proc.stdout + proc.stderr) == [pid]
    doc = {"cpu": {"shares": 512}}
    pyrunc("update", "--resources", "-", "ctr1", input=json.dumps(doc), check=True)
    if V1:
        assert read(cdir(path, "cpu") + "/cpu.shares") == "512"
    pyrunc("kill", "--all", "ctr1", "9", check=True)
    wait_until(lambda: pyrunc.status("ctr1") == "stopped", what="stopped")
    pyrunc("delete", "ctr1", check=True)
    assert_gone(f"/{ns}")


# --- hybrid extras: the cgroup2 side ------------------------------------------------------------


@pytest.mark.skipif(LAYOUT.kind != "hybrid", reason="hybrid hosts only")
def test_unified_keys_on_the_hybrid_cgroup2(pyrunc: Pyrunc, bundle: Bundle,
                                             cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, {"unified": {"cgroup.max.descendants": "3"}})
    bundle.set_args("sleep", "1000")
    pyrunc("run", "-d", "-b", bundle, "uni", check=True)
    assert read(dirs_of(path)[""] + "/cgroup.max.descendants") == "3"
    pyrunc("delete", "--force", "uni", check=True)
    set_resources(bundle, path, {"unified": {"memory.max": "100"}})
    proc = pyrunc("create", "-b", bundle, "uni2")
    assert proc.returncode == 1
    assert "linux.resources.unified.memory.max: controller 'memory' is not available" in proc.stderr
    assert_gone(path)


@pytest.mark.skipif(LAYOUT.unified is None, reason="no cgroup2 hierarchy")
def test_v2_device_program_on_this_hosts_cgroup2(cgroups: CgroupTracker, tmp_path: Path) -> None:
    """The eBPF device program a v2-only host gets, attached for real to a cgroup2 directory
    of this host and checked against what a process in it can open."""
    from pyrunc.cgroups import bpf
    from pyrunc.cgroups import devices as dev

    path = cgroups(f"/{unique()}")
    d = dirs_of(path)[""]
    os.makedirs(d)
    rules = dev.container_rules([{"allow": False, "access": "rwm"},
                                 {"allow": False, "type": "c", "major": 1, "minor": 3,
                                  "access": "w"}])
    bpf.apply_device_program(d, dev.encode(dev.compile_program(rules)))
    block = next((p for p in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0")
                  if os.path.exists(p)), None)
    script = (
        "import os,sys\n"
        "def probe(p, flags):\n"
        "    try:\n"
        "        os.close(os.open(p, flags)); return 'ok'\n"
        "    except OSError as e: return e.strerror\n"
        f"print(probe('/dev/null', os.O_RDONLY), probe('/dev/null', os.O_WRONLY), "
        f"probe('/dev/zero', os.O_RDWR), probe({block!r}, os.O_RDONLY) if {block!r} else 'x')\n"
    )

    def enter() -> None:
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    proc = subprocess.run([sys.executable, "-c", script], preexec_fn=enter, capture_output=True,
                          text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    assert words[0] == "ok"  # read /dev/null: a default
    assert " ".join(words[1:5]) == "Operation not permitted ok"  # write /dev/null: denied
    if block:
        assert proc.stdout.strip().endswith("Operation not permitted")  # a block device: denied


# --- hot commands stay light ---------------------------------------------------------------------


def test_hot_commands_do_not_import_the_spec_model(pyrunc: Pyrunc, bundle: Bundle,
                                                   cgroups: CgroupTracker) -> None:
    path = cgroups(f"/{unique()}")
    set_resources(bundle, path, None)
    bundle.set_args("sleep", "1000")
    pyrunc("run", "-d", "-b", bundle, "hot", check=True)
    for args in (["state", "hot"], ["kill", "hot", "CONT"], ["pause", "hot"], ["resume", "hot"],
                 ["ps", "-f", "json", "hot"], ["ps", "hot"], ["list"],
                 ["delete", "--force", "hot"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "pyrunc", "--root", str(pyrunc.root),
             *args], capture_output=True, text=True, timeout=30,
        )
        assert proc.returncode == 0, (args, proc.stderr[-500:])
        imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
                    if line.startswith("import time:")]
        heavy = [m for m in imported if m.split(".")[0] in ("attr", "attrs", "cattrs")
                 or m.startswith("pyrunc.spec")]
        assert not heavy, (args, heavy)
    assert_gone(path)
