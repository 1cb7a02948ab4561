"""runtime.md: the operations (state, create, start, kill, delete), their errors and the state.

Every test drives the runtime through its CLI only. The spec does not define a command line; the
suite uses the one runc, crun and pyrunc share (`--root DIR create --bundle B ID`, ...).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from harness import (
    CHECKER_IN_CONTAINER,
    IO_IN_CONTAINER,
    Case,
    cgroup_dir,
    cgroup_path_of,
    schema_errors,
)

req = pytest.mark.req


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def _wait_file(path: Path, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return True
        time.sleep(0.02)
    return False


# --- operations -------------------------------------------------------------------------


@req("runtime.md#scope-of-a-container-1", "runtime.md#operations-1")
def test_operations_on_own_container(case: Case) -> None:
    """The caller that created a container can state, start, kill and delete it."""
    cid = case.must_create()
    assert case.rt.state(cid)["status"] == "created"
    case.must_start(cid)
    assert case.rt.state(cid)["status"] == "running"
    res = case.rt("kill", cid, "KILL")
    assert res.ok, res
    assert case.wait_stopped(cid) == "stopped"
    res = case.delete(cid)
    assert res.ok, res
    assert case.rt.status(cid) is None


@pytest.mark.parametrize(
    "op",
    [
        pytest.param("state", marks=req("runtime.md#query-state-1")),
        pytest.param("start", marks=req("runtime.md#start-1")),
        pytest.param("kill", marks=req("runtime.md#kill-1")),
        pytest.param("delete", marks=req("runtime.md#delete-1")),
    ],
)
def test_operation_without_id(case: Case, op: str) -> None:
    """Each operation generates an error when it is not given a container id."""
    res = case.rt(op)
    assert not res.ok, f"`{op}` without an id succeeded: {res.out[:200]}"


@req("runtime.md#query-state-2")
def test_state_of_unknown_container(case: Case) -> None:
    res = case.rt("state", case.session.unique("nosuch"))
    assert not res.ok, f"state of a container that does not exist succeeded: {res.out[:200]}"


# --- the state --------------------------------------------------------------------------


def _state_problems(state: dict, cid: str, bundle: Path, status: str) -> list[str]:
    problems = schema_errors("state-schema.json", state)
    for key in ("ociVersion", "id", "status", "bundle"):
        if key not in state:
            problems.append(f"{key} is missing")
    if state.get("id") != cid:
        problems.append(f"id is {state.get('id')!r}, not {cid!r}")
    if state.get("status") != status:
        problems.append(f"status is {state.get('status')!r}, expected {status!r}")
    if status in ("created", "running") and not (
        isinstance(state.get("pid"), int) and state["pid"] > 0
    ):
        problems.append(f"pid is {state.get('pid')!r} while {status}")
    b = state.get("bundle", "")
    if not (isinstance(b, str) and b.startswith("/")):
        problems.append(f"bundle {b!r} is not an absolute path")
    elif os.path.realpath(b) != os.path.realpath(bundle):
        problems.append(f"bundle {b!r} is not {bundle}")
    return problems


@req(
    "runtime.md#query-state-3",
    "runtime.md#state-1",
    "runtime.md#state-2",
    "runtime.md#state-4",
    "runtime.md#state-5",
    "runtime.md#state-6",
    "runtime.md#state-7",
    "runtime.md#state-8",
)
@pytest.mark.parametrize("phase", ["created", "running", "stopped"])
def test_state_document(case: Case, phase: str) -> None:
    """`state` returns the spec's state (schema, required fields, the phase's status)."""
    case.set_args(CHECKER_IN_CONTAINER, "wait-signal", f"{IO_IN_CONTAINER}/signal")
    cid = case.must_create()
    if phase in ("running", "stopped"):
        case.must_start(cid)
    if phase == "stopped":
        case.rt("kill", cid, "KILL")
        case.wait_stopped(cid)
    state = case.rt.state(cid)
    problems = _state_problems(state, cid, case.bundle, phase)
    assert not problems, f"state {json.dumps(state)}: " + "; ".join(problems)


@req("runtime.md#state-7")
def test_state_bundle_is_absolute_for_relative_path(case: Case) -> None:
    """Created with `--bundle .`, the state still holds the bundle's absolute path."""
    case.write_config()
    cid = case.new_id()
    res = case.rt("create", "--bundle", ".", cid, cwd=str(case.bundle))
    assert res.ok, res
    bundle = case.rt.state(cid).get("bundle", "")
    assert bundle.startswith("/") and os.path.realpath(bundle) == str(case.bundle.resolve()), bundle


# --- create ---------------------------------------------------------------------------


@req("runtime.md#create-1")
def test_create_without_id(case: Case) -> None:
    case.write_config()
    res = case.rt("create", "--bundle", str(case.bundle))
    assert not res.ok, "create without an id succeeded"


@req("runtime.md#create-1")
@pytest.mark.parametrize("where", ["missing-dir", "not-a-bundle"])
def test_create_without_bundle(case: Case, where: str) -> None:
    """No usable bundle path: a directory that does not exist, or a cwd with no config.json."""
    cid = case.new_id()
    if where == "missing-dir":
        res = case.rt("create", "--bundle", str(case.dir / "nonexistent"), cid)
    else:
        empty = case.dir / "empty"
        empty.mkdir()
        res = case.rt("create", cid, cwd=str(empty))
    assert not res.ok, f"create with no bundle ({where}) succeeded"
    assert case.rt.status(cid) is None, "a container was created anyway"


@req("runtime.md#create-2", "runtime.md#state-3")
def test_create_duplicate_id(case: Case) -> None:
    """A second create with the same id fails and leaves the first container as it was."""
    cid = case.must_create()
    before = case.rt.state(cid)
    other = case.dir / "bundle2"
    case.write_config(bundle=other)
    _, res = case.create(cid, bundle=other, write=False)
    assert not res.ok, "create with an id already in use succeeded"
    after = case.rt.state(cid)
    assert after.get("pid") == before.get("pid") and after.get("status") == "created", after
    assert os.path.realpath(after["bundle"]) == str(case.bundle.resolve()), after
    assert _alive(before["pid"]), "the first container's process died"


@req("runtime.md#create-2")
@pytest.mark.parametrize("bad_id", ["", "a/b", "..", "../escape"])
def test_create_invalid_id(case: Case, bad_id: str) -> None:
    """Ids that cannot name a container (empty, a path) are refused; none is created."""
    case.write_config()
    res = case.rt("create", "--bundle", str(case.bundle), bad_id)
    if res.ok:
        case.ids.append(bad_id)
    assert not res.ok, f"create accepted the id {bad_id!r}"
    listing = case.rt("list", "-q")
    assert not listing.out.strip(), f"a container exists after the refused create: {listing.out!r}"


@req("runtime.md#create-3", "runtime.md#create-5", "runtime.md#lifecycle-3")
def test_create_does_not_run_the_program(case: Case) -> None:
    """After create the container exists with a live process, but process.args has not run."""
    marker = case.io / "started"
    case.set_args(
        CHECKER_IN_CONTAINER, "write", f"{IO_IN_CONTAINER}/started", "yes", "--then-sleep"
    )
    cid = case.must_create()
    state = case.rt.state(cid)
    assert state["status"] == "created", state
    assert _alive(state["pid"]), "no live container process after create"
    time.sleep(0.3)
    assert not marker.exists(), "the user program ran before start"
    case.must_start(cid)
    assert _wait_file(marker), "the user program did not run after start"


def _ns(pid: int | str, kind: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


@req("runtime.md#create-4", "runtime.md#lifecycle-1", "runtime.md#lifecycle-3")
def test_create_applies_config_before_start(case: Case) -> None:
    """Between create and start: namespaces, hostname, mounts and cgroup are already in place."""
    case.config["hostname"] = "created-host"
    cid = case.must_create()
    pid = case.pid_of[cid]
    problems = []
    for conf, kind in [("pid", "pid"), ("network", "net"), ("ipc", "ipc"), ("uts", "uts"),
                       ("mount", "mnt")]:  # fmt: skip
        if _ns(pid, kind) == _ns("self", kind):
            problems.append(f"{conf} namespace is the host's")
    uts = subprocess.run(
        ["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True, text=True
    )
    if uts.stdout.strip() != "created-host":
        problems.append(f"hostname is {uts.stdout.strip()!r} {uts.stderr.strip()}")
    mounts = Path(f"/proc/{pid}/mountinfo").read_text()
    points = {line.split()[4] for line in mounts.splitlines()}
    for dest in ("/proc", "/dev", "/dev/pts", "/sys", IO_IN_CONTAINER):
        if dest not in points:
            problems.append(f"{dest} is not mounted")
    cg = cgroup_path_of(pid, "pids")
    if cg is not None and not cg.endswith(case.cgroups_path):
        problems.append(f"pids cgroup is {cg}, not {case.cgroups_path}")
    assert not problems, "; ".join(problems)


@req("runtime.md#lifecycle-4")
def test_config_changes_after_create_have_no_effect(case: Case) -> None:
    """Rewriting config.json between create and start changes nothing in the container."""
    case.config["hostname"] = "before"
    case.set_args(CHECKER_IN_CONTAINER, "write", f"{IO_IN_CONTAINER}/ran", "original")
    cid = case.must_create()
    changed = json.loads((case.bundle / "config.json").read_text())
    changed["hostname"] = "after"
    changed["process"]["args"] = [CHECKER_IN_CONTAINER, "write", f"{IO_IN_CONTAINER}/ran", "new"]
    (case.bundle / "config.json").write_text(json.dumps(changed))
    case.must_start(cid)
    case.wait_stopped(cid)
    ran = (case.io / "ran").read_text() if (case.io / "ran").exists() else None
    assert ran == "original", f"the process that ran wrote {ran!r}"


# --- start ----------------------------------------------------------------------------


@req("runtime.md#start-2")
@pytest.mark.parametrize("status", ["running", "stopped"])
def test_start_not_created(case: Case, status: str) -> None:
    """start on a running or stopped container is an error and changes nothing."""
    runs = case.io / "runs"
    case.set_args(
        "/bin/sh", "-c", f"echo run >> {IO_IN_CONTAINER}/runs; exec {CHECKER_IN_CONTAINER} sleep"
    )
    cid = case.must_create()
    case.must_start(cid)
    assert _wait_file(runs)
    pid = case.pid_of[cid]
    if status == "stopped":
        case.rt("kill", cid, "KILL")
        assert case.wait_stopped(cid) == "stopped"
    res = case.rt("start", cid)
    assert not res.ok, f"start of a {status} container succeeded"
    time.sleep(0.2)
    state = case.rt.state(cid)
    assert state["status"] == status, state
    if status == "running":
        assert state["pid"] == pid and _alive(pid)
    assert runs.read_text().count("run") == 1, "the program ran again"


@req("runtime.md#start-4", "config.md#process-1")
def test_start_without_process(case: Case) -> None:
    """A config without `process` may be created, but start must fail."""
    del case.config["process"]
    cid, res = case.create()
    if not res.ok:
        reason = res.err.strip()[:200]
        pytest.skip(f"create refused a config without process (start cannot be tried): {reason}")
    res = case.rt("start", cid)
    assert not res.ok, "start of a container without process succeeded"


# --- kill -----------------------------------------------------------------------------


@req("runtime.md#kill-3")
@pytest.mark.parametrize("sig", ["SIGUSR1", "SIGTERM", "SIGHUP"])
def test_kill_sends_signal(case: Case, sig: str) -> None:
    signal_file = case.io / "signal"
    case.set_args(CHECKER_IN_CONTAINER, "wait-signal", f"{IO_IN_CONTAINER}/signal")
    cid = case.must_create()
    case.must_start(cid)
    assert _wait_file(signal_file), "the container process did not start"
    res = case.rt("kill", cid, sig)
    assert res.ok, res
    want = f"signal {int(getattr(signal, sig))}"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and signal_file.read_text().strip() != want:
        time.sleep(0.02)
    assert signal_file.read_text().strip() == want


@req("runtime.md#kill-2", "runtime.md#kill-3")
def test_kill_created_container(case: Case) -> None:
    """A created container can be signalled (SIGKILL ends its process)."""
    cid = case.must_create()
    pid = case.pid_of[cid]
    res = case.rt("kill", cid, "SIGKILL")
    assert res.ok, res
    assert case.wait_stopped(cid) == "stopped"
    assert not _alive(pid)


@req("runtime.md#kill-2")
def test_kill_stopped_container(case: Case) -> None:
    """kill on a stopped container is an error and leaves it stopped."""
    case.set_args("/bin/true")
    cid = case.run_to_completion()
    res = case.rt("kill", cid, "SIGKILL")
    assert not res.ok, "kill of a stopped container succeeded"
    assert case.rt.status(cid) == "stopped"


# --- delete ---------------------------------------------------------------------------


@req("runtime.md#delete-2")
@pytest.mark.parametrize("status", ["created", "running"])
def test_delete_not_stopped(case: Case, status: str) -> None:
    """delete (without force) of a created or running container fails and changes nothing."""
    cid = case.must_create()
    if status == "running":
        case.must_start(cid)
    pid = case.pid_of[cid]
    res = case.delete(cid)
    time.sleep(0.1)
    after = case.rt.status(cid)
    assert not res.ok and after == status and _alive(pid), (
        f"delete of a {status} container: exit {res.rc}, status now {after!r}, "
        f"process {'alive' if _alive(pid) else 'gone'}"
    )


@req("runtime.md#delete-3", "runtime.md#lifecycle-16")
def test_delete_removes_container_resources(case: Case) -> None:
    """After delete: no state, the cgroups the runtime made are gone, the id can be reused."""
    case.set_args("/bin/true")
    cid = case.must_create()
    pid = case.pid_of[cid]
    cgroups = {}
    for ctrl in ("pids", "memory", "devices", ""):
        path = cgroup_path_of(pid, ctrl)
        if path and path.endswith(case.cgroups_path):
            cgroups[ctrl or "unified"] = cgroup_dir(ctrl, path)
    case.must_start(cid)
    assert case.wait_stopped(cid) == "stopped"
    res = case.delete(cid)
    assert res.ok, res
    problems = []
    if case.rt.status(cid) is not None:
        problems.append("state still answers after delete")
    for ctrl, d in cgroups.items():
        if d.exists():
            problems.append(f"cgroup {d} ({ctrl}) is still there")
    _, again = case.create(cid)
    if not again.ok:
        problems.append(f"the id cannot be used again: {again}")
    assert not problems, "; ".join(problems)


@req("runtime.md#delete-4")
def test_delete_keeps_what_it_did_not_create(case: Case) -> None:
    """A joined network namespace and a bind-mounted host directory survive delete."""
    netns = f"oc-{case.session.unique('ns')}"[:40]
    add = subprocess.run(["ip", "netns", "add", netns], capture_output=True, text=True)
    if add.returncode != 0:
        pytest.skip(f"ip netns add failed: {add.stderr.strip()}")
    case.cleanups.append(lambda: subprocess.run(["ip", "netns", "del", netns], capture_output=True))
    ns_path = f"/run/netns/{netns}"
    ino = os.stat(ns_path).st_ino
    shared = case.dir / "shared"
    shared.mkdir()
    (shared / "keep").write_text("keep\n")
    for ns in case.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = ns_path
    case.add_mount("/mnt/a", None, str(shared), ["bind"])
    case.set_args("/bin/true")
    cid = case.run_to_completion()
    res = case.delete(cid)
    assert res.ok, res
    assert os.path.exists(ns_path) and os.stat(ns_path).st_ino == ino, "the joined netns is gone"
    assert (shared / "keep").read_text() == "keep\n", "the bind-mounted host directory changed"


# --- errors ---------------------------------------------------------------------------


@req("runtime.md#errors-1", "runtime.md#create-6", "runtime.md#lifecycle-2")
@pytest.mark.parametrize(
    "breakage", ["unknown-fstype", "missing-executable", "bad-rootfs", "unwritable-cgroup-limit"]
)
def test_failed_create_leaves_nothing(case: Case, breakage: str) -> None:
    """A create that cannot be carried out fails and leaves no container, process or cgroup."""
    if breakage == "unknown-fstype":
        case.add_mount("/mnt/a", "no-such-filesystem", "none", [])
    elif breakage == "unwritable-cgroup-limit":
        # a throttle for a device that is not a block device: the kernel refuses the write
        case.config["linux"]["resources"] = {
            "pids": {"limit": 100},
            "blockIO": {"throttleReadBpsDevice": [{"major": 1, "minor": 3, "rate": 1048576}]},
        }
    elif breakage == "missing-executable":
        case.set_args("/no/such/program")
    else:
        case.config["root"]["path"] = str(case.dir / "no-rootfs")
    cid, res = case.create()
    problems = []
    if res.ok:
        problems.append(f"create succeeded ({breakage})")
    if case.rt.status(cid) is not None and res.ok is False:
        problems.append("a container exists after the failed create")
    for ctrl in ("pids", "memory", "devices", "cpu"):
        if cgroup_dir(ctrl, case.cgroups_path).exists():
            problems.append(f"cgroup {ctrl}:{case.cgroups_path} was left behind")
    listing = case.rt("list", "-q")
    if listing.out.strip() and not res.ok:
        problems.append(f"`list` shows {listing.out.strip()!r}")
    if not res.ok:
        case.set_args("/bin/true")
        case.config["mounts"] = [m for m in case.config["mounts"] if m["destination"] != "/mnt/a"]
        case.config["root"]["path"] = str(case.session.rootfs)
        case.config["linux"].pop("resources", None)
        _, again = case.create(cid)
        if not again.ok:
            problems.append(f"the id cannot be used after the failed create: {again}")
    assert not problems, "; ".join(problems)
