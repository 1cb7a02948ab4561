"""`pyrunc exec` into a running container, through the real CLI (runc's behaviour as reference)."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from conftest import Bundle, Pyrunc, pid_alive
from helpers_security import (
    ConsoleReceiver,
    cap_mask,
    one_line,
    proc_status,
    start_sleeper,
    wait_for,
)

NAMESPACES = ("pid", "mnt", "uts", "ipc", "net")


def test_exec_joins_the_container(bundle: Bundle, pyrunc: Pyrunc) -> None:
    marker = f"marker-{os.getpid()}"
    (bundle.rootfs / marker).write_text("inside\n")
    init = start_sleeper(pyrunc, bundle)
    script = (
        "echo pid=$$; hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; ls /; "
        + "; ".join(f"readlink /proc/self/ns/{ns}" for ns in NAMESPACES)
        + "; ls /proc | grep -c '^[0-9]'"
    )
    proc = pyrunc("exec", "ex1", "sh", "-c", script)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # the container's pid namespace: a small pid, and its init is pid 1
    pid = int(lines[0].removeprefix("pid="))
    assert 1 < pid < 10, lines
    assert lines[1] == "pyrunc"
    assert lines[2].strip() == "sleep 1000"
    # the container's mount namespace and rootfs
    assert marker in lines and "bin" in lines
    links = lines[-1 - len(NAMESPACES) : -1]
    for ns, link in zip(NAMESPACES, links, strict=True):
        assert link == os.readlink(f"/proc/{init}/ns/{ns}"), ns
        assert link != os.readlink(f"/proc/self/ns/{ns}"), ns
    # only the container's processes are visible: init, sh, ls, grep (a few)
    assert int(lines[-1]) < 10


@pytest.mark.parametrize("status", [0, 3, 42])
def test_exit_status_passes_through(bundle: Bundle, pyrunc: Pyrunc, status: int) -> None:
    start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "ex1", "sh", "-c", f"exit {status}")
    assert proc.returncode == status, proc.stderr
    assert proc.stderr == ""


def test_exit_by_signal_is_128_plus_n(bundle: Bundle, pyrunc: Pyrunc) -> None:
    start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "ex1", "sh", "-c", "kill -9 $$")
    assert proc.returncode == 128 + signal.SIGKILL, proc.stderr


def test_env_user_groups_cwd(bundle: Bundle, pyrunc: Pyrunc) -> None:
    start_sleeper(pyrunc, bundle)
    proc = pyrunc(
        "exec", "-e", "FOO=bar baz", "-e", "TERM=dumb", "-u", "65534:65534",
        "-g", "5", "-g", "7", "--cwd", "/tmp", "ex1",
        "sh", "-c", 'echo "$FOO|$TERM|$PATH"; id -u; id -g; id -G; pwd; cat /proc/self/status',
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    env_path = next(e for e in bundle.process["env"] if e.startswith("PATH="))
    assert lines[0] == f"bar baz|dumb|{env_path.removeprefix('PATH=')}"
    assert lines[1:4] == ["65534", "65534", "65534 5 7"]
    assert lines[4] == "/tmp"
    status = proc_status("\n".join(lines[5:]))
    assert status["Uid"].split() == ["65534"] * 4
    assert status["Groups"].split() == ["5", "7"]
    # a non-root user keeps no capability (none is ambient+inheritable in the config)
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(status[field], 16) == 0, field


def test_user_uid_only_keeps_config_gid(bundle: Bundle, pyrunc: Pyrunc) -> None:
    start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "-u", "1000", "ex1", "sh", "-c", "id -u; id -g")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1000", "0"]


def test_cap_adds_a_capability_but_never_inheritable(bundle: Bundle, pyrunc: Pyrunc) -> None:
    init = start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "--cap", "CAP_SYS_ADMIN", "ex1", "cat", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    status = proc_status(proc.stdout)
    base = int(proc_status(init)["CapEff"], 16)
    want = base | cap_mask("SYS_ADMIN")
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[field], 16) == want, field
    # CVE-2022-29162: exec --cap must not fill the inheritable set
    assert int(status["CapInh"], 16) == 0


def test_no_new_privs_flag(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["noNewPrivileges"] = False
    bundle.write()
    start_sleeper(pyrunc, bundle)
    without = pyrunc("exec", "ex1", "cat", "/proc/self/status")
    assert without.returncode == 0, without.stderr
    assert proc_status(without.stdout)["NoNewPrivs"] == "0"
    with_flag = pyrunc("exec", "--no-new-privs", "ex1", "cat", "/proc/self/status")
    assert with_flag.returncode == 0, with_flag.stderr
    assert proc_status(with_flag.stdout)["NoNewPrivs"] == "1"


def test_process_file(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    start_sleeper(pyrunc, bundle)
    process = {
        "terminal": False,
        "user": {"uid": 123, "gid": 456, "additionalGids": [789]},
        "args": ["sh", "-c", 'echo "$ONLY|${TERM:-unset}"; id -u; id -g; id -G; pwd; exit 5'],
        "env": ["PATH=/bin:/usr/bin", "ONLY=from-process-json"],
        "cwd": "/etc",
        "noNewPrivileges": True,
    }
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    proc = pyrunc("exec", "--process", path, "ex1")
    assert proc.returncode == 5, proc.stderr
    # the process spec replaces the container's: no TERM from config.json
    assert proc.stdout.splitlines() == ["from-process-json|unset", "123", "456", "456 789", "/etc"]


def test_process_file_invalid_is_one_line(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    start_sleeper(pyrunc, bundle)
    path = tmp_path / "process.json"
    path.write_text(json.dumps({"args": "not-a-list", "cwd": "/"}))
    proc = pyrunc("exec", "--process", path, "ex1")
    assert proc.returncode == 255
    assert "process.args" in one_line(proc.stderr)


@pytest.mark.parametrize("text", ["null", "[]"])
def test_process_file_not_an_object_is_one_line(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path, text: str
) -> None:
    """runc refuses these with one line too (a null process is an empty one there)."""
    start_sleeper(pyrunc, bundle)
    path = tmp_path / "process.json"
    path.write_text(text)
    proc = pyrunc("exec", "--process", path, "ex1")
    assert proc.returncode == 255
    assert "internal error" not in proc.stderr
    assert "process" in one_line(proc.stderr)


def test_detach_pid_file(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    init = start_sleeper(pyrunc, bundle)
    pid_file = tmp_path / "exec.pid"
    proc = pyrunc("exec", "--detach", "--pid-file", pid_file, "ex1", "sleep", "777", timeout=10)
    assert proc.returncode == 0, proc.stderr
    raw = pid_file.read_bytes()
    assert raw.isdigit(), f"pid file must hold digits only, got {raw!r}"
    pid = int(raw)
    try:
        assert pid_alive(pid)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:-1] == [b"sleep", b"777"]
        assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
        # inside, it is one of the container's small pids
        nspid = proc_status(pid)["NSpid"].split()
        assert nspid[0] == str(pid) and 1 < int(nspid[-1]) < 10
    finally:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), what="the detached process to die")
    assert pyrunc.status("ex1") == "running"


def test_tty_with_console_socket(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    start_sleeper(pyrunc, bundle)
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    proc = pyrunc("exec", "-t", "--console-socket", receiver.path, "ex1", "sh", "-c",
                  "tty; test -t 0 && test -t 1 && echo stdio-is-tty")
    output = receiver.wait()
    assert proc.returncode == 0, proc.stderr
    assert len(receiver.fds_received) == 1, "one SCM_RIGHTS fd: the pty master"
    assert re.search(r"^/dev/pts/\d+\r?$", output, re.M), output
    assert "stdio-is-tty" in output


def test_tty_relayed_without_console_socket(bundle: Bundle, pyrunc: Pyrunc) -> None:
    start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "-t", "ex1", "tty")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^/dev/pts/\d+\r?$", proc.stdout, re.M), proc.stdout


def test_tty_detached_needs_console_socket(bundle: Bundle, pyrunc: Pyrunc) -> None:
    start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "-t", "--detach", "ex1", "tty")
    assert proc.returncode == 255
    assert "console socket" in one_line(proc.stderr)


def test_exec_in_stopped_container_fails(bundle: Bundle, pyrunc: Pyrunc) -> None:
    init = start_sleeper(pyrunc, bundle)
    pyrunc("kill", "ex1", "KILL", check=True)
    pyrunc.wait_status("ex1", "stopped")
    wait_for(lambda: not pid_alive(init), what="the init to die")
    proc = pyrunc("exec", "ex1", "true")
    assert proc.returncode == 255
    assert "cannot exec in a stopped container" in one_line(proc.stderr)


def test_exec_unknown_id_fails(pyrunc: Pyrunc) -> None:
    proc = pyrunc("exec", "nosuchcontainer", "true")
    assert proc.returncode == 255
    # runc: "exec failed: container does not exist" (clients match "does not exist")
    assert "does not exist" in one_line(proc.stderr), proc.stderr
    assert os.listdir(pyrunc.root) == []


def test_exec_missing_executable(bundle: Bundle, pyrunc: Pyrunc) -> None:
    start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "ex1", "no-such-binary")
    assert proc.returncode == 255
    line = one_line(proc.stderr)
    # runc's words (in the text log the quotes are escaped)
    assert "no-such-binary" in line and "executable file not found in $PATH" in line
    assert pyrunc.status("ex1") == "running"


def test_exec_inherits_capabilities(bundle: Bundle, pyrunc: Pyrunc) -> None:
    init = start_sleeper(pyrunc, bundle)
    proc = pyrunc("exec", "ex1", "cat", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    inside, of_init = proc_status(proc.stdout), proc_status(init)
    want = cap_mask(*bundle.process["capabilities"]["bounding"])
    for field in ("CapEff", "CapPrm", "CapBnd", "CapInh", "NoNewPrivs"):
        assert inside[field] == of_init[field], field
    assert int(inside["CapBnd"], 16) == want


def test_exec_inherits_seccomp(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 18}],  # EXDEV
    }  # fmt: skip
    bundle.write()
    init = start_sleeper(pyrunc, bundle)
    assert proc_status(init)["Seccomp"] == "2"
    proc = pyrunc("exec", "ex1", "sh", "-c", "grep ^Seccomp: /proc/self/status; mkdir /tmp/x")
    assert proc.returncode != 0
    assert "Seccomp:\t2" in proc.stdout
    assert "Invalid cross-device link" in proc.stderr
