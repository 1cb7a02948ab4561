"""OCI hooks through the real CLI: when and where each kind runs, what it gets, and failures.

runtime.md (lifecycle steps 3-13) and config.md (POSIX-platform hooks):
prestart, createRuntime -> runtime namespace, during create, before pivot_root;
createContainer -> container namespace, during create, before pivot_root;
startContainer -> container namespace (its path resolves there), during start, before the
user program; poststart -> runtime namespace, after the user program started, before start
returns; poststop -> runtime namespace, after the container is deleted, before delete returns.
Each hook gets the state on stdin; `pid` is the pid as seen by the namespace the hook runs in.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import Bundle, Pyrunc, error_message, new_id, pid_alive

# A hook that records one tab-separated line per call in the log file $2:
#   kind, pid seen by the hook's $$ namespace check, mnt ns, pid ns, probe output, state JSON
# $3 (optional) is a shell snippet whose output is recorded as "probe" ($state and $pid set).
RECORDER = r"""#!/bin/sh
state=$(cat)
pid=$(printf '%s' "$state" | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
probe=""
if [ -n "$3" ]; then probe=$(eval "$3" 2>&1 | tr '\n\t' '  '); fi
printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$(readlink /proc/self/ns/mnt)" \
    "$(readlink /proc/self/ns/pid)" "$probe" "$state" >> "$2"
"""

ORDER = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")  # fmt: skip


class Record:
    def __init__(self, line: str) -> None:
        kind, mnt, pidns, probe, state = line.split("\t", 4)
        self.kind = kind
        self.mnt = mnt
        self.pidns = pidns
        self.probe = probe.strip()
        self.state: dict[str, Any] = json.loads(state)


def read_log(path: Path) -> list[Record]:
    if not path.exists():
        return []
    return [Record(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def recorder(tmp_path: Path) -> Path:
    path = tmp_path / "hooks" / "record.sh"
    path.parent.mkdir()
    path.write_text(RECORDER)
    path.chmod(0o755)
    return path


def hook(path: Path | str, *args: str, **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "args": [os.path.basename(str(path)), *args], **extra}


def failing(message: str, status: int = 3) -> dict[str, Any]:
    return {"path": "/bin/sh", "args": ["sh", "-c", f"cat >/dev/null; echo {message} >&2; "
                                        f"exit {status}"]}  # fmt: skip


def assert_gone(pyrunc: Pyrunc, cid: str) -> None:
    proc = pyrunc("state", cid)
    assert proc.returncode == 1 and "does not exist" in proc.stderr, proc
    assert not (pyrunc.root / cid).exists()


def wait_dead(pid: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return False


# --- when and where -------------------------------------------------------------------


def test_hooks_order_state_and_namespaces(
    bundle: Bundle, pyrunc: Pyrunc, recorder: Path
) -> None:
    log = recorder.parent / "log"
    rootfs = os.path.realpath(bundle.rootfs)
    # startContainer runs in the container: its path resolves in the rootfs, and it writes
    # through a bind mount of the log's directory
    (bundle.rootfs / "record.sh").write_text(RECORDER)
    (bundle.rootfs / "record.sh").chmod(0o755)
    bundle.add_mount("/hooklog", "bind", str(recorder.parent), ["rbind"])
    annotations = {"org.example.hooks": "yes"}
    bundle.config["annotations"] = annotations
    probes = {
        # the runtime environment exists: the init's mount namespace has the rootfs mounts
        "prestart": f'grep -c " {rootfs}/proc " /proc/$pid/mountinfo',
        "createRuntime": f'grep -c " {rootfs}/proc " /proc/$pid/mountinfo',
        # in the container's mount namespace, before pivot_root: the host's tree around it
        "createContainer": f'grep -c " {rootfs}/proc " /proc/self/mountinfo',
        # in the container, before the user program: pid 1 has not exec'd `sleep` yet
        "startContainer": "tr '\\0' ' ' < /proc/1/cmdline",
        # after the user program started
        "poststart": "tr '\\0' ' ' < /proc/$pid/cmdline",
        # after the container is deleted
        "poststop": f"test -e {pyrunc.root}/$(printf '%s' \"$state\" | "
                    "sed -n 's/.*\"id\": *\"\\([^\"]*\\)\".*/\\1/p') && echo present || echo gone",
    }  # fmt: skip
    hooks: dict[str, list[dict[str, Any]]] = {}
    for kind in ORDER:
        if kind == "startContainer":
            hooks[kind] = [hook("/record.sh", kind, "/hooklog/log", probes[kind])]
        else:
            hooks[kind] = [hook(recorder, kind, str(log), probes[kind])]
    hooks["prestart"].append(hook(recorder, "prestart-2", str(log)))
    bundle.config["hooks"] = hooks
    bundle.set_args("sleep", "1000")
    cid = new_id("hook")

    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    container_pidns = os.readlink(f"/proc/{pid}/ns/pid")
    assert [r.kind for r in read_log(log)] == [
        "prestart", "prestart-2", "createRuntime", "createContainer"
    ]
    pyrunc("start", cid, check=True)
    assert [r.kind for r in read_log(log)][4:] == ["startContainer", "poststart"]
    pyrunc("kill", cid, "KILL", check=True)
    pyrunc.wait_status(cid, "stopped")
    pyrunc("delete", cid, check=True)
    records = [r for r in read_log(log) if r.kind != "prestart-2"]
    assert [r.kind for r in records] == list(ORDER)
    by_kind = {r.kind: r for r in records}

    host_mnt = os.readlink("/proc/self/ns/mnt")
    host_pidns = os.readlink("/proc/self/ns/pid")
    expected_status = {
        "prestart": "created", "createRuntime": "created", "createContainer": "created",
        "startContainer": "created", "poststart": "running", "poststop": "stopped",
    }  # fmt: skip
    for kind, record in by_kind.items():
        state = record.state
        assert state["status"] == expected_status[kind], (kind, state)
        assert state["id"] == cid and state["bundle"] == str(bundle.path), (kind, state)
        assert state["ociVersion"], kind
        assert state.get("annotations") == annotations, (kind, state)
        in_container = kind in ("createContainer", "startContainer")
        assert record.mnt == (container_mnt if in_container else host_mnt), kind
        assert record.pidns == (container_pidns if in_container else host_pidns), kind
    # runtime.md: pid as seen by the runtime for runtime-namespace hooks...
    for kind in ("prestart", "createRuntime", "poststart"):
        assert by_kind[kind].state["pid"] == pid, kind
    assert by_kind["prestart"].probe == "1"
    assert by_kind["createRuntime"].probe == "1"
    assert by_kind["createContainer"].probe == "1"
    assert by_kind["startContainer"].probe != "sleep 1000"
    assert by_kind["poststart"].probe == "sleep 1000"
    assert by_kind["poststop"].probe == "gone"


def test_container_namespace_hooks_get_the_container_pid(
    bundle: Bundle, pyrunc: Pyrunc, recorder: Path
) -> None:
    """runtime.md, state.pid: "For hooks executed in the container namespace, it is the pid as
    seen by the container" - 1 with a new pid namespace (runc passes 1 to createContainer)."""
    log = recorder.parent / "log"
    (bundle.rootfs / "record.sh").write_text(RECORDER)
    (bundle.rootfs / "record.sh").chmod(0o755)
    bundle.add_mount("/hooklog", "bind", str(recorder.parent), ["rbind"])
    bundle.config["hooks"] = {
        "createContainer": [hook(recorder, "createContainer", str(log))],
        "startContainer": [hook("/record.sh", "startContainer", "/hooklog/log")],
    }
    bundle.set_args("sleep", "1000")
    cid = new_id("hook")
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    pyrunc("start", cid, check=True)
    pids = {r.kind: r.state.get("pid") for r in read_log(log)}
    assert pids == {"createContainer": 1, "startContainer": 1}


def test_hook_args_and_env_exactly_as_given(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    script = (f'echo "$0" > {out}.argv0; /bin/cat /proc/$$/cmdline > {out}.cmdline; '
              f"/bin/cat /proc/$$/environ > {out}.env")
    env = ["HOOK_ONE=1", "HOOK_TWO=two words", "EMPTY="]
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sh", "args": ["my-hook-name", "-c", script],
                           "env": env}],
    }  # fmt: skip
    bundle.set_args("true")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("hook"))
    assert proc.returncode == 0, proc.stderr
    # args[0] is the hook's argv[0] ($0 of `sh -c`), the rest follow as given
    assert Path(f"{out}.argv0").read_text().strip() == "my-hook-name"
    argv = Path(f"{out}.cmdline").read_bytes().split(b"\0")[:-1]
    assert argv == [b"my-hook-name", b"-c", script.encode()]
    # the environment is exactly env: nothing of the runtime's own
    assert Path(f"{out}.env").read_bytes().split(b"\0")[:-1] == [e.encode() for e in env]


def test_hook_without_args_or_env(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = tmp_path / "bare-hook"
    script.write_text(f"#!/bin/sh\n/bin/cat /proc/$$/environ > {out}.env\n"
                      f'echo "$#" > {out}.argc\n')
    script.chmod(0o755)
    bundle.config["hooks"] = {"prestart": [{"path": str(script)}]}
    bundle.set_args("true")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("hook"))
    assert proc.returncode == 0, proc.stderr
    assert Path(f"{out}.argc").read_text().strip() == "0"  # argv is just the path
    # no env: the runtime's own environment (runc and crun), here the test's
    seen = set(Path(f"{out}.env").read_bytes().split(b"\0")[:-1])
    assert {f"{k}={v}".encode() for k, v in os.environ.items()} <= seen


# --- failures ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create(
    bundle: Bundle, pyrunc: Pyrunc, recorder: Path, kind: str
) -> None:
    log = recorder.parent / "log"
    # the first prestart hook records the init's pid (as the runtime sees it)
    hooks: dict[str, list[dict[str, Any]]] = {"prestart": [hook(recorder, "seen", str(log))]}
    hooks.setdefault(kind, []).append(failing(f"{kind}-says-no"))
    bundle.config["hooks"] = hooks
    bundle.set_args("sleep", "1000")
    cid = new_id("hook")
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    message = error_message(proc.stderr)
    assert kind in message and "/bin/sh" in message and f"{kind}-says-no" in message, message
    assert_gone(pyrunc, cid)
    assert os.listdir(pyrunc.root) == []
    init = read_log(log)[0].state["pid"]
    assert wait_dead(init), f"the init {init} outlived the failed create"


def test_failed_create_runs_poststop_hooks(
    bundle: Bundle, pyrunc: Pyrunc, recorder: Path
) -> None:
    """runtime.md: a failing createRuntime hook -> "stop the container, and continue the
    lifecycle at step 12" (destroy), then step 13: poststop hooks MUST be invoked (runc does)."""
    log = recorder.parent / "log"
    bundle.config["hooks"] = {
        "createRuntime": [failing("no")],
        "poststop": [hook(recorder, "poststop", str(log))],
    }
    bundle.write()
    cid = new_id("hook")
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    assert_gone(pyrunc, cid)
    assert [r.kind for r in read_log(log)] == ["poststop"]


def test_hook_timeout(bundle: Bundle, pyrunc: Pyrunc) -> None:
    # a sleep this test can find again, far longer than the CLI's 30 s: that create returns
    # at all (not its duration, which a loaded host stretches) shows the hook was not awaited
    marker = f"1000.{uuid.uuid4().int % 10**6:06d}"
    bundle.config["hooks"] = {
        "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", marker], "timeout": 1}],
    }
    bundle.write()
    cid = new_id("hook")
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    message = error_message(proc.stderr)
    assert "createRuntime" in message and "/bin/sleep" in message, message
    assert "did not finish within 1s" in message, message  # the config's timeout, not 30 s
    assert_gone(pyrunc, cid)
    # the hook itself was killed
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            assert cmdline != f"sleep\0{marker}\0".encode() or not pid_alive(int(name))


def _created_with(pyrunc: Pyrunc, bundle: Bundle, hooks: dict[str, Any]) -> tuple[str, int]:
    bundle.config["hooks"] = hooks
    bundle.set_args("sleep", "1000")
    cid = new_id("hook")
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    return cid, pyrunc.state(cid)["pid"]


def test_failing_start_container_hook_fails_start(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """runtime.md step 7: a failing startContainer hook -> error, stop the container; the user
    program never runs."""
    cid, pid = _created_with(pyrunc, bundle, {"startContainer": [failing("sc-says-no")]})
    proc = pyrunc("start", cid)
    assert proc.returncode == 1
    message = error_message(proc.stderr)
    assert "startContainer" in message and "sc-says-no" in message, message
    assert wait_dead(pid), "the container was not stopped after its startContainer hook failed"
    status = pyrunc.status(cid)
    assert status in (None, "stopped"), status
    pyrunc("delete", "--force", cid, check=True)
    assert_gone(pyrunc, cid)


def test_failing_poststart_hook_fails_start(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """runtime.md step 9: a failing poststart hook -> error, stop the container (runc kills it)."""
    cid, pid = _created_with(pyrunc, bundle, {"poststart": [failing("ps-says-no")]})
    proc = pyrunc("start", cid)
    assert proc.returncode == 1
    message = error_message(proc.stderr)
    assert "poststart" in message and "ps-says-no" in message, message
    assert wait_dead(pid), "the container still runs after its poststart hook failed"
    status = pyrunc.status(cid)
    assert status in (None, "stopped"), status
    pyrunc("delete", "--force", cid, check=True)
    assert_gone(pyrunc, cid)


def test_failing_poststop_hook_is_a_warning(
    bundle: Bundle, pyrunc: Pyrunc, recorder: Path, tmp_path: Path
) -> None:
    log = recorder.parent / "log"
    hooks = {"poststop": [failing("pst-says-no"), hook(recorder, "poststop-2", str(log))]}
    cid, pid = _created_with(pyrunc, bundle, hooks)
    pyrunc("start", cid, check=True)
    pyrunc("kill", cid, "KILL", check=True)
    pyrunc.wait_status(cid, "stopped")
    runtime_log = tmp_path / "runtime.json"
    proc = pyrunc("--log", runtime_log, "--log-format", "json", "delete", cid)
    assert proc.returncode == 0, proc.stderr
    assert_gone(pyrunc, cid)
    records = [json.loads(line) for line in runtime_log.read_text().splitlines()]
    warnings = [r["msg"] for r in records if r["level"] == "warning"]
    assert any("poststop" in w and "pst-says-no" in w for w in warnings), records
    assert not [r for r in records if r["level"] == "error"]
    # the remaining hooks continue as if the hook had succeeded
    assert [r.kind for r in read_log(log)] == ["poststop-2"]


def test_missing_hook_executable_fails_create(bundle: Bundle, pyrunc: Pyrunc,
                                              tmp_path: Path) -> None:
    missing = tmp_path / "no-such-hook"
    bundle.config["hooks"] = {"createRuntime": [{"path": str(missing)}]}
    bundle.write()
    cid = new_id("hook")
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    assert str(missing) in error_message(proc.stderr)
    assert_gone(pyrunc, cid)
