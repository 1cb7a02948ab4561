"""docker drives pyrunc: Debian's docker.io (dockerd 20.10, its own managed containerd and the
runc v2 shim) runs real containers with `--runtime pyrunc`, and the same scenarios with
`--runtime runc` in the same run, so that a failure of pyrunc can be told apart from a problem
of the machine.

The daemon is private: data root, exec root, pid file and socket live in a short temporary
directory (unix socket paths are short), with no bridge, no iptables rules and a cgroup parent
of its own; pyrunc is registered with `--add-runtime pyrunc=<executable>` (what
/etc/docker/daemon.json's `runtimes` does for a user). The image is the busybox bundle's rootfs,
`docker import`ed. Teardown removes the containers, stops the daemon (and its containerd),
kills what still mentions the directory, unmounts and removes it, even when a test failed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_clients import (
    COLS,
    ROWS,
    RUNTIMES,
    HostState,
    kill_processes_mentioning,
    pyrunc_executable,
    rootfs_tarball,
    run_cmd,
    run_in_pty,
    unmount_under,
    wait_until,
)

IMAGE = "pyrunc-test-busybox:latest"
# says it started, exits 42 on TERM (sh as pid 1 has no default action for TERM)
SERVICE = 'echo started; trap "echo got term; exit 42" TERM; while :; do sleep 1 & wait $!; done'
V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
MEMORY_LIMIT = (
    "cat /sys/fs/cgroup/memory.max" if V2 else "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
)
PIDS_LIMIT = "cat /sys/fs/cgroup/pids.max" if V2 else "cat /sys/fs/cgroup/pids/pids.max"

_names = itertools.count(1)


def docker_cli() -> str | None:
    """Debian's docker client (the daemon's version); another one may come first in PATH."""
    return "/usr/bin/docker" if os.access("/usr/bin/docker", os.X_OK) else shutil.which("docker")


class Docker:
    """A private dockerd; `docker(*args)` runs the client against it."""

    def __init__(self, tmp: Path, pyrunc: Path, cli: str) -> None:
        self.tmp = tmp
        self.pyrunc = pyrunc
        self.sock = tmp / "docker.sock"
        self.cgroup_parent = f"parb-docker-{os.getpid()}"
        self.base = [cli, "-H", f"unix://{self.sock}"]
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_CONFIG"] = str(tmp / "client")
        self.daemon: subprocess.Popen[bytes] | None = None
        self.log = tmp / "dockerd.log"

    def start(self) -> None:
        argv = [
            "dockerd",
            "--data-root", str(self.tmp / "data"),
            "--exec-root", str(self.tmp / "exec"),
            "--pidfile", str(self.tmp / "dockerd.pid"),
            "-H", f"unix://{self.sock}",
            "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
            "--ip-masq=false", "--userland-proxy=false",
            "--exec-opt", "native.cgroupdriver=cgroupfs",
            "--cgroup-parent", f"/{self.cgroup_parent}",
            "--add-runtime", f"pyrunc={self.pyrunc}",
            "--config-file", str(self.tmp / "daemon.json"),
        ]  # fmt: skip
        (self.tmp / "daemon.json").write_text("{}\n")
        with open(self.log, "wb") as log:
            self.daemon = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
                start_new_session=True,
            )
        ok = wait_until(
            lambda: self.daemon is not None and (
                self.daemon.poll() is not None or self("version").returncode == 0
            ),
            timeout=60, interval=0.2,
        )
        if not ok or self.daemon.poll() is not None:
            raise AssertionError(f"dockerd did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> list[str]:
        problems = []
        if self.daemon is None or self.daemon.poll() is not None:
            return problems
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(60)
        except subprocess.TimeoutExpired:
            problems.append("dockerd did not stop on TERM")
            os.killpg(self.daemon.pid, signal.SIGKILL)
            self.daemon.wait()
        return problems

    def __call__(self, *args: Any, check: bool = False, timeout: float = 90, **kw: Any) -> Any:
        return run_cmd(
            [*self.base, *map(str, args)], env=self.env, timeout=timeout, check=check, **kw
        )

    def pty(self, *args: Any, timeout: float = 90) -> tuple[int, str]:
        return run_in_pty([*self.base, *map(str, args)], env=self.env, timeout=timeout)

    def names(self) -> list[str]:
        return self("ps", "-a", "--format", "{{.Names}}", check=True).stdout.split()


@pytest.fixture(scope="module")
def docker(busybox_bundle: Path) -> Iterator[Docker]:
    cli = docker_cli()
    if not shutil.which("dockerd") or cli is None:
        pytest.skip("docker is not installed: bash tests/setup.sh installs docker.io")
    host = HostState(paths=("/run/docker", "/etc/docker", "/run/containerd"))
    tmp = Path(tempfile.mkdtemp(prefix="pdk", dir="/tmp"))
    dk = Docker(tmp, pyrunc_executable(tmp), cli)
    problems: list[str] = []
    try:
        dk.start()
        tarball = rootfs_tarball(busybox_bundle / "rootfs", tmp / "rootfs.tar")
        dk("import", tarball, IMAGE, check=True, timeout=120)
        tarball.unlink()
        yield dk
        left = dk.names()
        if left:
            problems.append(f"containers left behind by the tests: {left}")
    finally:
        problems += _teardown(dk, host)
    assert not problems, "; ".join(problems)


def _teardown(dk: Docker, host: HostState) -> list[str]:
    problems = []
    if dk.daemon is not None and dk.daemon.poll() is None:
        try:
            ids = dk("ps", "-aq", timeout=60).stdout.split()
            if ids:
                dk("rm", "--force", *ids, timeout=120)
        except Exception as e:  # a hung daemon must not stop the clean-up
            problems.append(f"docker rm: {e}")
    problems += dk.stop()
    time.sleep(0.2)
    killed = kill_processes_mentioning(str(dk.tmp))  # containerd, shims, containers
    if killed:
        problems.append(f"killed processes still running for the private dockerd: {killed}")
    unmount_under(dk.tmp)
    shutil.rmtree(dk.tmp, ignore_errors=True)
    for mount in Path("/sys/fs/cgroup").iterdir():
        parent = mount / dk.cgroup_parent
        for sub, _, _ in sorted(os.walk(parent), key=lambda w: -len(w[0])):
            try:
                os.rmdir(sub)
            except OSError:
                pass
    host.restore()
    return problems


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return request.param


def new_name(runtime: str) -> str:
    return f"parb-{runtime}-{os.getpid()}-{next(_names)}"


def run_args(runtime: str, *args: str) -> list[str]:
    return ["run", "--runtime", runtime, "--network", "none", *args]


# --- scenarios ---------------------------------------------------------------------------


def test_run_rm_passes_exit_code_and_output(docker: Docker, runtime: str) -> None:
    name = new_name(runtime)
    proc = docker(*run_args(runtime, "--rm", "--name", name), IMAGE,
                  "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "to-stdout\n"
    assert "to-stderr" in proc.stderr
    assert name not in docker.names()


def test_detached_exec_logs_stop_rm(docker: Docker, runtime: str) -> None:
    name = new_name(runtime)
    try:
        docker(*run_args(runtime, "-d", "--name", name), IMAGE, "sh", "-c", SERVICE, check=True)
        assert wait_until(lambda: "started" in docker("logs", name).stdout), "no 'started'"
        proc = docker("exec", name, "sh", "-c", "echo from exec $$; exit 5")
        assert proc.returncode == 5, proc.stderr
        assert proc.stdout.startswith("from exec ")
        docker("stop", "--time", "20", name, check=True)
        code = docker("inspect", "--format", "{{.State.ExitCode}}", name, check=True)
        assert code.stdout.strip() == "42"
        assert "got term" in docker("logs", name).stdout
        docker("rm", name, check=True)
        assert name not in docker.names()
    finally:
        docker("rm", "--force", name)


def test_read_only_rootfs(docker: Docker, runtime: str) -> None:
    proc = docker(*run_args(runtime, "--rm", "--read-only"), IMAGE,
                  "sh", "-c", "touch /x || echo refused; touch /tmp/x 2>/dev/null || echo tmp")
    assert proc.returncode == 0, proc.stderr
    assert "Read-only file system" in proc.stderr
    assert proc.stdout.startswith("refused\n")


def test_memory_and_pids_limits(docker: Docker, runtime: str) -> None:
    proc = docker(*run_args(runtime, "--rm", "--memory", "64m", "--pids-limit", "50"), IMAGE,
                  "sh", "-c", f"{MEMORY_LIMIT}; {PIDS_LIMIT}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(64 << 20), "50"]


def test_run_it_has_a_terminal(docker: Docker, runtime: str) -> None:
    # docker sets the size after the start: wait for it inside
    script = ('tty; i=0; while [ $i -lt 100 ]; do s=$(stty size 2>/dev/null); '
              'case "$s" in ""|"0 0") sleep 0.1; i=$((i+1));; *) break;; esac; done; '
              'echo "size $s"; exit 4')
    rc, out = docker.pty(*run_args(runtime, "--rm", "-it"), IMAGE, "sh", "-c", script)
    assert rc == 4, out
    assert "/dev/pts/0\n" in out
    assert f"size {ROWS} {COLS}\n" in out
