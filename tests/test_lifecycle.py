"""The container lifecycle through the real CLI: create, start, state, kill, delete, run, list."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Bundle,
    Pyrunc,
    new_id,
    new_processes_of,
    other_pidns_processes,
    pid_alive,
)
from helpers_security import wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
SLEEP = ("sleep", "1000")
# sh as pid 1 only gets a signal from outside its namespace if it has a handler: trap it
TRAP_TERM = 'trap "echo got-TERM; exit 3" TERM; while true; do sleep 0.1; done'


def assert_valid_state(validator: Any, state: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(state), key=str)
    assert not errors, f"state does not match state-schema.json: {[e.message for e in errors]}"


def assert_gone(pyrunc: Pyrunc, cid: str) -> None:
    proc = pyrunc("state", cid)
    assert proc.returncode == 1, proc.stdout
    assert "does not exist" in proc.stderr
    assert not (pyrunc.root / cid).exists()


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode(errors="replace").split("\0")[:-1]


def catches(pid: int, signum: int) -> bool:
    """Whether the process has a handler installed for signum (SigCgt in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except OSError:
        pass
    return False


def create_started(pyrunc: Pyrunc, bundle: Bundle, cid: str, *args: str) -> int:
    """create + start a container running `args` (default: sleep); returns the init pid."""
    bundle.set_args(*(args or SLEEP))
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pyrunc("start", cid, check=True)
    return pyrunc.wait_status(cid, "running")["pid"]


# --- the normal path ----------------------------------------------------------------


def test_full_lifecycle(
    cid: str, bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path, state_validator: Any
) -> None:
    bundle.set_args(*SLEEP)
    pid_file = tmp_path / "init.pid"
    created = pyrunc("create", "--bundle", bundle.path, "--pid-file", pid_file, cid)
    assert created.returncode == 0, created.stderr
    assert created.stderr == ""

    state = pyrunc.state(cid)
    assert_valid_state(state_validator, state)
    assert state["status"] == "created"
    assert state["id"] == cid
    assert state["bundle"] == str(bundle.path)
    assert RFC3339.match(state["created"]), state["created"]
    pid = state["pid"]
    assert isinstance(pid, int) and pid > 0
    raw = pid_file.read_bytes()
    assert raw.isdigit(), f"pid file must hold digits only, got {raw!r}"
    assert int(raw) == pid
    assert pid_alive(pid)
    # the user process has not been exec'd yet
    assert cmdline(pid) != list(SLEEP)

    started = pyrunc("start", cid)
    assert started.returncode == 0, started.stderr
    state = pyrunc.state(cid)
    assert_valid_state(state_validator, state)
    assert state["status"] == "running"
    assert state["pid"] == pid
    assert cmdline(pid) == list(SLEEP)

    killed = pyrunc("kill", cid, "KILL")
    assert killed.returncode == 0, killed.stderr
    state = pyrunc.wait_status(cid, "stopped")
    assert_valid_state(state_validator, state)
    assert state["pid"] == 0
    assert not pid_alive(pid)

    deleted = pyrunc("delete", cid)
    assert deleted.returncode == 0, deleted.stderr
    assert_gone(pyrunc, cid)
    assert os.listdir(pyrunc.root) == []


def test_process_exiting_by_itself_is_stopped(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.sh("exit 0")
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pyrunc("start", cid, check=True)
    assert pyrunc.wait_status(cid, "stopped")["pid"] == 0
    pyrunc("delete", cid, check=True)
    assert_gone(pyrunc, cid)


def test_relative_bundle_is_stored_absolute(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.set_args(*SLEEP)
    pyrunc("create", "--bundle", ".", cid, check=True, cwd=bundle.path)
    assert pyrunc.state(cid)["bundle"] == str(bundle.path)


def test_relative_pid_file(cid: str, bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    bundle.set_args(*SLEEP)
    workdir = tmp_path / "work"
    workdir.mkdir()
    pyrunc("create", "--bundle", bundle.path, "--pid-file", "init.pid", cid, check=True,
           cwd=workdir)
    assert (workdir / "init.pid").read_text() == str(pyrunc.state(cid)["pid"])


def test_init_killed_from_the_host_is_stopped(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    pid = create_started(pyrunc, bundle, cid)
    os.kill(pid, signal.SIGKILL)
    assert pyrunc.wait_status(cid, "stopped")["pid"] == 0
    pyrunc("delete", cid, check=True)
    assert_gone(pyrunc, cid)


def test_run_kills_the_init_s_orphans(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    before = other_pidns_processes()
    bundle.sh("sleep 1000 & sleep 1001 & exit 4")
    # sleeps of 1000 s: the run returning within its 20 s shows it did not wait for them
    proc = pyrunc("run", "--bundle", bundle.path, cid, timeout=20)
    assert proc.returncode == 4, proc.stderr
    assert new_processes_of(before, pyrunc.root, bundle.path) == []
    assert os.listdir(pyrunc.root) == []


# --- wrong transitions --------------------------------------------------------------


def test_start_twice_fails(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    pid = create_started(pyrunc, bundle, cid)
    again = pyrunc("start", cid)
    assert again.returncode == 1
    assert "cannot start an already running container" in again.stderr
    state = pyrunc.state(cid)
    assert (state["status"], state["pid"]) == ("running", pid)


def test_start_after_stop_fails(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    create_started(pyrunc, bundle, cid)
    pyrunc("kill", cid, "KILL", check=True)
    pyrunc.wait_status(cid, "stopped")
    again = pyrunc("start", cid)
    assert again.returncode == 1
    assert "cannot start a container that has stopped" in again.stderr
    assert pyrunc.status(cid) == "stopped"


def test_delete_running_without_force_fails(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    pid = create_started(pyrunc, bundle, cid)
    before = sorted(os.listdir(pyrunc.root / cid))
    proc = pyrunc("delete", cid)
    assert proc.returncode == 1
    assert f"cannot delete container {cid} that is not stopped: running" in proc.stderr
    state = pyrunc.state(cid)
    assert (state["status"], state["pid"]) == ("running", pid)
    assert pid_alive(pid)
    assert sorted(os.listdir(pyrunc.root / cid)) == before


def test_delete_force_running(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    pid = create_started(pyrunc, bundle, cid)
    proc = pyrunc("delete", "--force", cid)
    assert proc.returncode == 0, proc.stderr
    assert not pid_alive(pid)
    assert_gone(pyrunc, cid)


def test_delete_created_kills_init(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.set_args(*SLEEP)
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    assert pid_alive(pid)
    proc = pyrunc("delete", cid)
    assert proc.returncode == 0, proc.stderr
    assert not pid_alive(pid)
    assert_gone(pyrunc, cid)


def test_delete_force_created(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.set_args(*SLEEP)
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    pyrunc("delete", "--force", cid, check=True)
    assert not pid_alive(pid)
    assert_gone(pyrunc, cid)


def test_kill_stopped_fails(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.sh("exit 0")
    assert pyrunc("run", "--keep", "--bundle", bundle.path, cid).returncode == 0
    assert pyrunc.status(cid) == "stopped"
    proc = pyrunc("kill", cid, "KILL")
    assert proc.returncode == 1
    assert "container not running" in proc.stderr
    assert pyrunc.status(cid) == "stopped"


def test_kill_created_container(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.set_args(*SLEEP)
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    pyrunc("kill", cid, "KILL", check=True)
    pyrunc.wait_status(cid, "stopped")
    assert not pid_alive(pid)


def test_kill_term_stops_a_created_container(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    """runc: the signal reaches the waiting init (runc init dies of SIGTERM), the container is
    stopped and can no longer be started; a signal must not be swallowed while `kill` says 0."""
    bundle.set_args(*SLEEP)
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    pyrunc("kill", cid, "TERM", check=True)
    pyrunc.wait_status(cid, "stopped", timeout=5)
    assert not pid_alive(pid)
    assert pyrunc("start", cid).returncode == 1


def test_kill_invalid_signal_changes_nothing(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    pid = create_started(pyrunc, bundle, cid)
    proc = pyrunc("kill", cid, "NOSUCHSIGNAL")
    assert proc.returncode == 1
    assert "signal" in proc.stderr
    assert pyrunc.status(cid) == "running"
    assert pid_alive(pid)


SANDBOX = """
sleep 1000 & canary=$!
$PYRUNC create --bundle "$BUNDLE" "$CID" >/dev/null 2>&1 || echo create-failed
[ -z "$FORCE" ] || $PYRUNC start "$CID" || echo start-failed
init=$($PYRUNC state "$CID" | sed -n 's/.*"pid": \\([0-9]*\\).*/\\1/p')
$PYRUNC delete $FORCE "$CID" >/dev/null 2>&1
echo "delete=$?"
alive() { s=$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
alive $canary && echo canary=alive || echo canary=killed
alive $init && echo init=alive || echo init=gone
kill -9 $canary 2>/dev/null
exit 0
"""


@pytest.mark.parametrize("force", [True, False], ids=["delete-force-running", "delete-created"])
def test_delete_without_pid_namespace_kills_only_the_container(
    cid: str, bundle: Bundle, pyrunc: Pyrunc, force: bool
) -> None:
    """A container sharing the caller's pid namespace: delete must kill its processes only.

    Run in a throwaway pid namespace (unshare) holding a canary process, so that a runtime that
    signals every process of the namespace kills the canary, not this machine."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is needed to sandbox this test")
    namespaces = bundle.config["linux"]["namespaces"]
    bundle.config["linux"]["namespaces"] = [ns for ns in namespaces if ns["type"] != "pid"]
    bundle.set_args(*SLEEP)
    env = dict(
        os.environ,
        PYRUNC=f"{sys.executable} -m pyrunc --root {pyrunc.root}",
        BUNDLE=str(bundle.path),
        CID=cid,
        FORCE="--force" if force else "",  # with --force: started first, then deleted
    )
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", SANDBOX],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "failed" not in proc.stdout, proc.stdout
    assert proc.stdout.split() == ["delete=0", "canary=alive", "init=gone"]


@pytest.mark.parametrize(
    "args",
    [
        ("start", "nosuch"),
        ("state", "nosuch"),
        ("kill", "nosuch"),
        ("kill", "nosuch", "KILL"),
        ("delete", "nosuch"),
    ],
    ids=" ".join,
)
def test_unknown_id(pyrunc: Pyrunc, args: tuple[str, ...]) -> None:
    proc = pyrunc(*args)
    assert proc.returncode == 1
    assert "does not exist" in proc.stderr
    assert proc.stdout == ""
    assert os.listdir(pyrunc.root) == []


def test_delete_force_unknown_id_succeeds(pyrunc: Pyrunc) -> None:
    """runc: `delete --force` of a container that does not exist is not an error (exit 0)."""
    proc = pyrunc("delete", "--force", "nosuch")
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(pyrunc.root) == []


@pytest.mark.parametrize("bad_id", ["../x", "a/b", "..", "../root/y"])
@pytest.mark.parametrize("command", ["create", "run"])
def test_bad_ids_rejected(
    bundle: Bundle, pyrunc: Pyrunc, root_parent: Path, command: str, bad_id: str
) -> None:
    bundle.set_args(*SLEEP)
    proc = pyrunc(command, "--bundle", bundle.path, bad_id)
    assert proc.returncode == 1
    assert "invalid container id" in proc.stderr
    assert os.listdir(root_parent) == ["root"]
    assert os.listdir(pyrunc.root) == []


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete"])
def test_bad_id_rejected_by_other_commands(
    pyrunc: Pyrunc, root_parent: Path, command: str
) -> None:
    (root_parent / "x").mkdir()
    proc = pyrunc(command, "../x")
    assert proc.returncode == 1
    assert "invalid container id" in proc.stderr
    assert (root_parent / "x").is_dir()
    assert sorted(os.listdir(root_parent)) == ["root", "x"]


# --- run ----------------------------------------------------------------------------


def test_run_prints_and_cleans_up(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    proc = pyrunc("run", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from pyrunc: hostname pyrunc, pid 1\n"
    assert os.listdir(pyrunc.root) == []


@pytest.mark.parametrize("status", [0, 1, 7, 126, 255])
def test_run_passes_exit_status(cid: str, bundle: Bundle, pyrunc: Pyrunc, status: int) -> None:
    bundle.sh(f"exit {status}")
    proc = pyrunc("run", "--bundle", bundle.path, cid)
    assert proc.returncode == status, proc.stderr
    assert os.listdir(pyrunc.root) == []


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_run_killed_by_signal(cid: str, bundle: Bundle, pyrunc: Pyrunc, sig: str) -> None:
    bundle.set_args(*SLEEP)
    running = pyrunc.start_background("run", "--bundle", bundle.path, cid)
    try:
        pid = pyrunc.wait_status(cid, "running")["pid"]
        killed = pyrunc("kill", cid, sig)
        assert killed.returncode == 0, killed.stderr
    finally:
        result = running.wait(timeout=15)
    assert result.returncode == 128 + signal.SIGKILL, result.stderr
    assert not pid_alive(pid)
    assert os.listdir(pyrunc.root) == []


@pytest.mark.parametrize("sig", [None, "TERM", "SIGTERM", "15", "sigterm"])
def test_kill_term_reaches_trap(cid: str, bundle: Bundle, pyrunc: Pyrunc, sig: str | None) -> None:
    bundle.sh(TRAP_TERM)
    running = pyrunc.start_background("run", "--bundle", bundle.path, cid)
    try:
        pid = pyrunc.wait_status(cid, "running")["pid"]
        wait_for(lambda: catches(pid, signal.SIGTERM), what="the TERM trap")
        killed = pyrunc("kill", cid, *([sig] if sig else []))
        assert killed.returncode == 0, killed.stderr
    finally:
        result = running.wait(timeout=15)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "got-TERM\n"


def test_run_forwards_sigterm(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.sh(TRAP_TERM)
    running = pyrunc.start_background("run", "--bundle", bundle.path, cid)
    try:
        pid = pyrunc.wait_status(cid, "running")["pid"]
        wait_for(lambda: catches(pid, signal.SIGTERM), what="the TERM trap")
        os.kill(running.pid, signal.SIGTERM)
    finally:
        result = running.wait(timeout=15)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "got-TERM\n"
    assert os.listdir(pyrunc.root) == []


def test_run_no_pivot(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.sh("echo $$; ls /; cat /etc/hostname 2>/dev/null; exit 0")
    proc = pyrunc("run", "--no-pivot", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[0] == "1"
    assert sorted(lines[1:]) == sorted(os.listdir(bundle.rootfs))


def test_run_detach_leaves_running_container(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.set_args(*SLEEP)
    # returning within its 15 s shows run -d did not wait for the 1000 s sleep
    proc = pyrunc("run", "--detach", "--bundle", bundle.path, cid, timeout=15)
    assert proc.returncode == 0, proc.stderr
    state = pyrunc.state(cid)
    assert state["status"] == "running"
    assert pid_alive(state["pid"])
    assert cmdline(state["pid"]) == list(SLEEP)


def test_run_keep_leaves_stopped_container(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.sh("exit 5")
    proc = pyrunc("run", "--keep", "--bundle", bundle.path, cid)
    assert proc.returncode == 5, proc.stderr
    state = pyrunc.state(cid)
    assert (state["status"], state["pid"]) == ("stopped", 0)
    pyrunc("delete", cid, check=True)
    assert_gone(pyrunc, cid)


def test_run_with_existing_id_fails_and_keeps_the_other(
    cid: str, bundle: Bundle, pyrunc: Pyrunc
) -> None:
    pid = create_started(pyrunc, bundle, cid)
    proc = pyrunc("run", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    assert f"container with id exists: {cid}" in proc.stderr
    state = pyrunc.state(cid)
    assert (state["status"], state["pid"]) == ("running", pid)


# --- list ---------------------------------------------------------------------------


@pytest.fixture
def three_containers(bundle: Bundle, pyrunc: Pyrunc) -> dict[str, dict[str, Any]]:
    """One created, one running and one stopped container (their ids sort in that order)."""
    ids = [new_id(prefix) for prefix in ("a-created", "b-running", "c-stopped")]
    bundle.set_args(*SLEEP)
    pyrunc("create", "--bundle", bundle.path, ids[0], check=True)
    pyrunc("run", "--detach", "--bundle", bundle.path, ids[1], check=True)
    bundle.sh("exit 0")
    pyrunc("run", "--keep", "--bundle", bundle.path, ids[2], check=True)
    return {cid: pyrunc.state(cid) for cid in ids}


def test_list_table(pyrunc: Pyrunc, three_containers: dict[str, dict[str, Any]]) -> None:
    proc = pyrunc("list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert sorted(rows) == sorted(three_containers)
    for cid, state in three_containers.items():
        row = rows[cid]
        assert row[1] == str(state["pid"])
        assert row[2] == state["status"]
        assert row[3] == state["bundle"]
        assert row[4] == state["created"]
        assert row[5] == "root"
    assert [rows[c][2] for c in sorted(rows)] == ["created", "running", "stopped"]
    assert rows[sorted(rows)[2]][1] == "0"
    # columns line up with the header
    header = lines[0]
    for line in lines[1:]:
        for name, col in zip(("PID", "STATUS", "BUNDLE"), (1, 2, 3), strict=True):
            assert line[header.index(name) :].split()[0] == line.split()[col]


def test_list_json(
    pyrunc: Pyrunc, three_containers: dict[str, dict[str, Any]], state_validator: Any
) -> None:
    proc = pyrunc("list", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    items = json.loads(proc.stdout)
    assert isinstance(items, list) and len(items) == 3
    by_id = {item["id"]: item for item in items}
    assert sorted(by_id) == sorted(three_containers)
    for cid, item in by_id.items():
        assert item["status"] == three_containers[cid]["status"]
        assert item["pid"] == three_containers[cid]["pid"]
        assert item["bundle"] == three_containers[cid]["bundle"]
        assert_valid_state(state_validator, item)


def test_list_quiet(pyrunc: Pyrunc, three_containers: dict[str, dict[str, Any]]) -> None:
    proc = pyrunc("list", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == sorted(three_containers)


def test_list_empty_root(pyrunc: Pyrunc) -> None:
    proc = pyrunc("list")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    # runc prints `null` (a nil Go slice) for no containers
    assert pyrunc("list", "--format", "json", check=True).stdout == "null\n"
    assert pyrunc("list", "-q", check=True).stdout == ""


# --- concurrency --------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_create_same_id(
    bundle: Bundle, pyrunc: Pyrunc, state_validator: Any, attempt: int
) -> None:
    bundle.set_args(*SLEEP)
    cid = new_id(f"race{attempt}")
    first = pyrunc.start_background("create", "--bundle", bundle.path, cid)
    second = pyrunc.start_background("create", "--bundle", bundle.path, cid)
    results = [first.wait(), second.wait()]
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 1], [(r.returncode, r.stderr) for r in results]
    loser = next(r for r in results if r.returncode == 1)
    assert f"container with id exists: {cid}" in loser.stderr
    raw = (pyrunc.root / cid / "state.json").read_text()
    json.loads(raw)  # not corrupt
    state = pyrunc.state(cid)
    assert_valid_state(state_validator, state)
    assert state["status"] == "created"
    assert pid_alive(state["pid"])
    assert os.listdir(pyrunc.root) == [cid]
    pyrunc("start", cid, check=True)
    assert pyrunc.status(cid) == "running"


# --- logging ------------------------------------------------------------------------


def test_log_json(pyrunc: Pyrunc, tmp_path: Path) -> None:
    log = tmp_path / "pyrunc.log"
    proc = pyrunc("--log", log, "--log-format", "json", "state", "nosuch")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["container does not exist"]
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "error"
    assert record["msg"] == "container does not exist"
    assert RFC3339.match(record["time"]), record["time"]
    datetime.fromisoformat(record["time"])


def test_log_json_create_failure(cid: str, bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    bundle.set_args("nosuchbin")
    log = tmp_path / "pyrunc.log"
    proc = pyrunc("--log", log, "--log-format", "json", "create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "error"
    assert 'exec: "nosuchbin": executable file not found in $PATH' in record["msg"]
    assert record["msg"] == proc.stderr.strip()
    assert RFC3339.match(record["time"])


def test_log_text(pyrunc: Pyrunc, tmp_path: Path) -> None:
    log = tmp_path / "pyrunc.log"
    proc = pyrunc("--log", log, "--log-format", "text", "state", "nosuch")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["container does not exist"]
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    m = re.fullmatch(r'time="([^"]+)" level=error msg="container does not exist"', lines[0])
    assert m, lines[0]
    assert RFC3339.match(m.group(1))


def test_unopenable_log_still_gives_the_error(pyrunc: Pyrunc, tmp_path: Path) -> None:
    """A --log in a directory that is gone (a client's bundle removed early): the error is
    still one line on stderr, not a traceback about the log."""
    log = tmp_path / "gone" / "log.json"
    proc = pyrunc("--log", log, "--log-format", "json", "state", "nosuch")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["container does not exist"]
    assert not log.parent.exists()


def test_error_without_log_is_one_text_line_on_stderr(pyrunc: Pyrunc) -> None:
    proc = pyrunc("state", "nosuch")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(r'time="[^"]+" level=error msg="container does not exist"', lines[0])
