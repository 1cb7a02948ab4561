"""Differential tests: the same scenario run with pyrunc and with runc 1.1.5, comparing what a
user sees (exit status, the gist of the message, the effect on the container), for the
behaviours where a runc user would otherwise see pyrunc differ (issue 14, part B).

Each test runs once per runtime through the `rt` fixture: its own --root, container ids from
new_id (they name the cgroup too), and a teardown that force-deletes what a test left.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Bundle, new_id, pid_alive

RUNTIMES = ("pyrunc", "runc")


class Runtime:
    """`rt(*args)` runs `RUNTIME --root ROOT *args` to completion (output into files)."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        if name == "pyrunc":
            self.argv = [sys.executable, "-m", "pyrunc"]
        else:
            path = shutil.which(name)
            if path is None:
                pytest.skip(f"{name} is not installed: bash tests/setup.sh")
            self.argv = [path]

    def __call__(
        self, *args: Any, timeout: float = 30, global_args: tuple[str, ...] = (), **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        argv = [*self.argv, *global_args, "--root", str(self.root), *map(str, args)]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kw.setdefault("stdin", subprocess.DEVNULL)
            proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=kw.pop("cwd", REPO), **kw)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                argv, rc, out.read().decode(errors="replace"), err.read().decode(errors="replace")
            )

    def ok(self, *args: Any, **kw: Any) -> subprocess.CompletedProcess[str]:
        proc = self(*args, **kw)
        assert proc.returncode == 0, f"{self.name} {args}: {proc.returncode} {proc.stderr}"
        return proc

    def state(self, cid: str) -> dict[str, Any]:
        return json.loads(self.ok("state", cid).stdout)

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.state(cid)
            if state["status"] == want:
                return state
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: {cid} did not become {want} ({state})")


@pytest.fixture(params=RUNTIMES)
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    root = tmp_path / f"root-{request.param}"
    root.mkdir(mode=0o700)
    runtime = Runtime(request.param, root)
    yield runtime
    for name in sorted(os.listdir(root)):
        runtime("delete", "--force", name)
    shutil.rmtree(root, ignore_errors=True)


def without_namespace(bundle: Bundle, kind: str) -> None:
    ns = bundle.config["linux"]["namespaces"]
    bundle.config["linux"]["namespaces"] = [n for n in ns if n["type"] != kind]


def cgroup_pids(rt: Runtime, cid: str) -> list[int]:
    """The pids in the container's cgroup, as `ps` (both runtimes) reports them."""
    proc = rt.ok("ps", "--format", "json", cid)
    return json.loads(proc.stdout or "[]") or []


# --- kill --all of a stopped container ------------------------------------------------


def test_kill_all_reaches_leftovers_of_stopped_container(rt: Runtime, bundle: Bundle) -> None:
    """With the host's pid namespace, the init's exit leaves its children running in the
    cgroup: `kill --all ID KILL` still reaches them (containerd's shim sends exactly this
    for pods sharing one pid namespace) and `kill --all ID 0` of the stopped container
    succeeds."""
    without_namespace(bundle, "pid")
    bundle.config["root"]["readonly"] = False
    bundle.sh("sleep 1000 & echo $! > /leftover; exit 0")
    cid = new_id("pk")
    rt.ok("run", "--detach", "--bundle", bundle.path, cid)
    rt.wait_status(cid, "stopped")
    leftover = int((bundle.rootfs / "leftover").read_text())
    assert pid_alive(leftover)
    assert cgroup_pids(rt, cid) == [leftover]
    rt.ok("kill", "--all", cid, "0")
    assert pid_alive(leftover)
    plain = rt("kill", cid, "KILL")
    assert plain.returncode == 1 and "not running" in plain.stderr
    rt.ok("kill", "--all", cid, "KILL")
    deadline = time.monotonic() + 10
    while pid_alive(leftover) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(leftover)
    rt.ok("kill", "--all", cid, "0")
    rt.ok("delete", cid)


# --- capabilities ------------------------------------------------------------------------


def cap_eff(rt: Runtime, cid: str, *exec_args: str) -> tuple[int, str]:
    proc = rt.ok("exec", *exec_args, cid, "sh", "-c", "grep CapEff /proc/self/status")
    return int(proc.stdout.split()[1], 16), proc.stderr


def test_unknown_capabilities_warn_and_are_skipped(rt: Runtime, bundle: Bundle) -> None:
    """runtime-spec 1.3.0: an unknown capability MUST be logged as a warning and SHOULD NOT
    fail; runc warns naming it and skips it, in the config and in `exec --cap`."""
    caps = bundle.process["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = ["CAP_KILL", "CAP_NO_SUCH_ONE", "CAP_CHOWN"]
    bundle.set_args("sleep", "1000")
    cid = new_id("pc")
    created = rt.ok("run", "--detach", "--bundle", bundle.path, cid)
    assert "CAP_NO_SUCH_ONE" in created.stderr and "warn" in created.stderr
    eff, err = cap_eff(rt, cid)
    assert eff == (1 << 5) | (1 << 0)  # KILL, CHOWN
    assert "CAP_NO_SUCH_ONE" in err
    eff, err = cap_eff(rt, cid, "--cap", "CAP_NET_RAW", "--cap", "CAP_NOT_EITHER")
    assert eff == (1 << 5) | (1 << 0) | (1 << 13)
    assert "CAP_NOT_EITHER" in err and "warn" in err
    rt.ok("kill", cid, "KILL")
