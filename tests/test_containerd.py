"""containerd drives pyrunc: Debian's containerd 1.6 and its runc v2 shim run real containers
with `ctr run --runc-binary <pyrunc>`, and the same scenarios with runc in the same run, so
that a failure of pyrunc can be told apart from a problem of the machine.

The containerd is private: a subprocess with its own config.toml (root, state, the gRPC and
ttrpc sockets and the plugins' /opt directory in a temporary directory, the CRI plugin off),
driven by `ctr --address SOCK --namespace test`. The image is the busybox bundle's rootfs as an
OCI image built with umoci and `ctr images import`ed. Each runtime keeps its state in its own
`--runc-root` in the temporary directory. Teardown kills and deletes tasks, containers and
images, stops containerd, kills any shim it left, deletes containers the runtimes still hold,
unmounts what is left under the directory and removes it, even when a test failed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import new_id, pid_alive
from helpers_clients import (
    COLS,
    ROWS,
    RUNTIMES,
    HostState,
    build_oci_archive,
    delete_runtime_leftovers,
    kill_processes_mentioning,
    pyrunc_executable,
    run_cmd,
    run_in_pty,
    runtime_binary,
    state_of,
    unmount_under,
    wait_until,
)

NAMESPACE = "test"
IMAGE = "localhost/pyrunc-test-busybox:latest"
# echoes go to files in /out (a bind mount): a detached task's stdio is nobody's; the long
# sleep keeps a second process in the task at every moment
SERVICE = (
    'trap "echo usr1 >> /out/signals" USR1; trap "exit 42" TERM; sleep 86400 & '
    "echo started > /out/started; while :; do sleep 1 & wait $!; done"
)
# ctr resizes the task's pty only after `start`: wait until the size has arrived
WAIT_FOR_SIZE = (
    'for i in $(seq 100); do s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ] '
    '&& break; sleep 0.05; done; echo "size $s"'
)


class Containerd:
    def __init__(self, tmp: Path, pyrunc: Path) -> None:
        self.tmp = tmp
        self.pyrunc = pyrunc
        self.sock = tmp / "containerd.sock"
        self.config = tmp / "config.toml"
        self.config.write_text(
            "version = 2\n"
            f'root = "{tmp / "root"}"\n'
            f'state = "{tmp / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.sock}"\n'
            "[ttrpc]\n"
            f'  address = "{self.sock}.ttrpc"\n'
            "[debug]\n"
            '  address = ""\n'
            "[metrics]\n"
            '  address = ""\n'
            '[plugins."io.containerd.internal.v1.opt"]\n'
            f'  path = "{tmp / "opt"}"\n'
        )
        self.log = tmp / "containerd.log"
        self.fifo_dir = tmp / "fifo"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"containerd exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            return self.sock.exists() and self("version").returncode == 0

        assert wait_until(ready, timeout=30), f"containerd not ready:\n{self.log.read_text()}"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __call__(self, *args: Any, check: bool = False, timeout: float = 60) -> Any:
        return run_cmd(self.argv(*args), timeout=timeout, check=check)

    def argv(self, *args: Any) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", NAMESPACE, *map(str, args)]

    def runc_root(self, runtime: str) -> Path:
        return self.tmp / "runc-root" / runtime

    def run_args(self, runtime: str) -> list[str]:
        """`ctr run` flags giving the task to `runtime` (the shim calls it with
        `--root <runc-root>/<namespace>`)."""
        return [
            "--runc-binary", runtime_binary(runtime, self.pyrunc),
            "--runc-root", str(self.runc_root(runtime)),
            "--fifo-dir", str(self.fifo_dir),
        ]

    def runtime_state(self, runtime: str, cid: str) -> subprocess.CompletedProcess[str]:
        root = self.runc_root(runtime) / NAMESPACE
        return state_of(runtime_binary(runtime, self.pyrunc), cid, str(root))

    def tasks(self) -> dict[str, tuple[int, str]]:
        """task id -> (pid, STATUS)"""
        out = {}
        for line in self("task", "ls", check=True).stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) == 3:
                out[fields[0]] = (int(fields[1]), fields[2])
        return out

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> None:
        assert wait_until(
            lambda: self.tasks().get(cid, (0, ""))[1] == want, timeout=timeout
        ), f"task {cid} did not become {want}: {self.tasks().get(cid)}"

    def remove(self, cid: str) -> None:
        """Kill, delete the task and the container, whatever state they are in."""
        if cid in self.tasks():
            self("task", "kill", "--all", "--signal", "SIGKILL", cid)
            wait_until(lambda: self.tasks().get(cid, (0, "STOPPED"))[1] == "STOPPED", 10)
            self("task", "delete", "--force", cid)
        if cid in self("container", "ls", "-q").stdout.split():
            self("container", "delete", cid)


@pytest.fixture(scope="module")
def containerd(
    busybox_bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Containerd]:
    for tool in ("containerd", "ctr", "umoci"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed: bash tests/setup.sh installs it")
    host = HostState(paths=("/run/containerd",), cgroups=(NAMESPACE,))
    tmp = tmp_path_factory.mktemp("containerd")
    ctd = Containerd(tmp, pyrunc_executable(tmp))
    problems: list[str] = []
    try:
        archive = build_oci_archive(busybox_bundle / "rootfs", tmp)
        ctd.start()
        ctd("images", "import", "--base-name", IMAGE.rsplit(":", 1)[0], archive, check=True,
            timeout=120)
        archive.unlink()
        assert IMAGE in ctd("images", "ls", "-q", check=True).stdout.split()
        yield ctd
        left = ctd("container", "ls", "-q").stdout.split()
        if left:
            problems.append(f"containers left behind by the tests: {left}")
    finally:
        problems += _teardown(ctd, host)
    assert not problems, "; ".join(problems)


def _teardown(ctd: Containerd, host: HostState) -> list[str]:
    problems = []
    if ctd.proc is not None and ctd.proc.poll() is None:
        try:
            for cid in ctd("container", "ls", "-q").stdout.split():
                ctd.remove(cid)
            for image in ctd("images", "ls", "-q").stdout.split():
                ctd("images", "remove", image)
        except Exception as e:  # a hung ctr must not stop the clean-up
            problems.append(f"ctr clean-up: {e}")
    ctd.stop()
    # shims outlive containerd; theirs name our socket in their command line
    killed = kill_processes_mentioning(str(ctd.sock))
    if killed:
        problems.append(f"killed shims still running: {killed}")
    for runtime in RUNTIMES:
        left = delete_runtime_leftovers(
            runtime_binary(runtime, ctd.pyrunc), ctd.runc_root(runtime) / NAMESPACE
        )
        if left:
            problems.append(f"{runtime} still had containers: {left}")
    unmount_under(ctd.tmp)
    shutil.rmtree(ctd.tmp, ignore_errors=True)
    host.restore()
    return problems


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """A host directory bound at /out in the tasks that take it (`bind_out`)."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def bind_out(out: Path) -> list[str]:
    return ["--mount", f"type=bind,src={out},dst=/out,options=rbind:rw"]


@pytest.fixture
def task(containerd: Containerd, runtime: str, out: Path) -> Iterator[str]:
    """A detached task running SERVICE with `runtime`; removed at teardown."""
    cid = new_id(f"ctr-{runtime}")
    try:
        containerd("run", "-d", *containerd.run_args(runtime), *bind_out(out), IMAGE, cid,
                   "sh", "-c", SERVICE, check=True)
        assert wait_until(lambda: (out / "started").exists()), "the task did not start"
        yield cid
    finally:
        containerd.remove(cid)


def test_run_rm_passes_exit_code_and_output(containerd: Containerd, runtime: str) -> None:
    cid = new_id(f"ctr-{runtime}")
    proc = containerd(
        "run", "--rm", *containerd.run_args(runtime), IMAGE, cid,
        "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7",
    )
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "to-stdout\n"
    assert "to-stderr" in proc.stderr
    assert cid not in containerd("container", "ls", "-q").stdout.split()


def test_run_t_has_a_terminal_of_the_clients_size(containerd: Containerd, runtime: str) -> None:
    cid = new_id(f"ctr-{runtime}")
    rc, output = run_in_pty(
        containerd.argv("run", "-t", "--rm", *containerd.run_args(runtime), IMAGE, cid,
                        "sh", "-c", f"tty; {WAIT_FOR_SIZE}; exit 2"),
    )
    assert rc == 2, output
    assert "/dev/pts/0\n" in output
    assert f"size {ROWS} {COLS}\n" in output


def test_task_exec(containerd: Containerd, task: str) -> None:
    proc = containerd(
        "task", "exec", "--exec-id", "plain", "--user", "65534", "--cwd", "/tmp",
        "--fifo-dir", containerd.fifo_dir, task,
        "sh", "-c", 'echo "$(id -u) $(pwd)"; echo to-stderr >&2; exit 3',
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "65534 /tmp\n"
    assert "to-stderr" in proc.stderr


def test_task_exec_t(containerd: Containerd, task: str) -> None:
    rc, output = run_in_pty(
        containerd.argv("task", "exec", "-t", "--exec-id", "tty", "--fifo-dir",
                        containerd.fifo_dir, task, "sh", "-c", f"tty; {WAIT_FOR_SIZE}; exit 9"),
    )
    assert rc == 9, output
    assert "/dev/pts/" in output
    assert f"size {ROWS} {COLS}\n" in output


def test_task_ps_and_metrics(containerd: Containerd, task: str) -> None:
    pid, status = containerd.tasks()[task]
    assert status == "RUNNING"
    lines = containerd("task", "ps", task, check=True).stdout.splitlines()
    pids = [int(line.split()[0]) for line in lines[1:]]
    assert pid in pids and len(pids) >= 2, lines  # sh and its sleep
    metrics = json.loads(containerd("task", "metrics", "--format", "json", task,
                                    check=True).stdout)
    assert metrics["pids"]["current"] >= 2
    assert metrics["memory"]["usage"]["usage"] > 0
    assert metrics["cpu"]["usage"]["total"] > 0


def test_task_pause_resume(containerd: Containerd, runtime: str, task: str) -> None:
    containerd("task", "pause", task, check=True)
    containerd.wait_status(task, "PAUSED")
    assert json.loads(containerd.runtime_state(runtime, task).stdout)["status"] == "paused"
    containerd("task", "resume", task, check=True)
    containerd.wait_status(task, "RUNNING")
    assert json.loads(containerd.runtime_state(runtime, task).stdout)["status"] == "running"


def test_task_kill_and_delete(containerd: Containerd, runtime: str, task: str) -> None:
    containerd("task", "kill", task, check=True)  # SIGTERM: the trap exits 42
    containerd.wait_status(task, "STOPPED")
    proc = containerd("task", "delete", task, check=True)
    assert "exit code 42" in proc.stderr
    assert task not in containerd.tasks()
    gone = containerd.runtime_state(runtime, task)
    assert gone.returncode != 0 and "does not exist" in gone.stderr, gone
    containerd("container", "delete", task, check=True)


def test_task_kill_all(containerd: Containerd, runtime: str, out: Path) -> None:
    """`task kill -a` signals every process of the container, not only its init."""
    (out / "bg.sh").write_text(
        "trap 'echo bg >> /out/signals' USR1\n"
        "echo $$ > /out/bg.pid\n"
        "while :; do sleep 1 & wait $!; done\n"
    )
    cid = new_id(f"ctr-{runtime}")
    try:
        containerd("run", "-d", *containerd.run_args(runtime), *bind_out(out), IMAGE, cid,
                   "sh", "-c", f"sh /out/bg.sh & {SERVICE}", check=True)
        assert wait_until(lambda: (out / "started").exists() and (out / "bg.pid").exists())
        pids = [int(line.split()[0]) for line in
                containerd("task", "ps", cid, check=True).stdout.splitlines()[1:]]
        containerd("task", "kill", "--all", "--signal", "SIGUSR1", cid, check=True)
        signals = out / "signals"
        assert wait_until(
            lambda: signals.exists() and sorted(signals.read_text().split()) == ["bg", "usr1"]
        ), signals.read_text() if signals.exists() else "no signal seen"
        containerd("task", "kill", "--all", "--signal", "SIGKILL", cid, check=True)
        containerd.wait_status(cid, "STOPPED")
        assert wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=5)
        containerd("task", "delete", cid, check=True)
    finally:
        containerd.remove(cid)
    assert cid not in containerd("container", "ls", "-q").stdout.split()
    assert not os.path.exists(containerd.runc_root(runtime) / NAMESPACE / cid)
