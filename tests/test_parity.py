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


# --- cgroup resources ----------------------------------------------------------------------

V1 = Path("/sys/fs/cgroup")


def v1_cgroup_file(rt: Runtime, cid: str, controller: str, name: str) -> str:
    """A cgroup v1 file of the container's, found from its init's /proc/PID/cgroup."""
    pid = rt.state(cid)["pid"]
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return (V1 / controllers / path.lstrip("/") / name).read_text().strip()
    raise AssertionError(f"no {controller} cgroup for {cid}")


def needs_v1(controller: str, name: str) -> None:
    if not (V1 / controller / name).exists():
        pytest.skip(f"this host has no cgroup v1 {controller} with {name}")


def test_zero_resources_mean_unset(rt: Runtime, bundle: Bundle) -> None:
    """docker 20.10 sends blockIO.weight 0 (and other zeros) for what its user did not set:
    runc leaves those alone instead of writing 0."""
    bundle.config["linux"]["resources"] = {
        "blockIO": {"weight": 0, "leafWeight": 0},
        "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernelTCP": 0},
        "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""},
        "network": {"classID": 0},
    }
    bundle.sh("echo ran")
    proc = rt("run", "--bundle", bundle.path, new_id("pz"))
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr


def test_update_memory_unlimited_lifts_swap(rt: Runtime, bundle: Bundle) -> None:
    """`update --memory -1` without --memory-swap on v1: runc lifts memsw first, else the
    kernel refuses a memory limit above it (EINVAL)."""
    needs_v1("memory", "memory.memsw.limit_in_bytes")
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20, "swap": 96 << 20}}
    bundle.set_args("sleep", "1000")
    cid = new_id("pm")
    rt.ok("run", "--detach", "--bundle", bundle.path, cid)
    assert v1_cgroup_file(rt, cid, "memory", "memory.memsw.limit_in_bytes") == str(96 << 20)
    rt.ok("update", "--memory", "-1", cid)
    unlimited = v1_cgroup_file(rt, cid, "memory", "memory.limit_in_bytes")
    assert int(unlimited) > 1 << 60
    assert v1_cgroup_file(rt, cid, "memory", "memory.memsw.limit_in_bytes") == unlimited
    rt.ok("kill", cid, "KILL")


@pytest.fixture
def cpu_parent(rt: Runtime) -> Iterator[str]:
    """A cgroup v1 cpu parent limited to half a CPU (quota 50000 per 100000), so that a
    shorter period with the old quota exceeds it; removed at teardown in every hierarchy
    (after `rt` deleted the containers)."""
    del rt
    needs_v1("cpu", "cpu.cfs_quota_us")
    name = new_id("parb-cpu")
    made = V1 / "cpu" / name
    made.mkdir()
    (made / "cpu.cfs_quota_us").write_text("50000")
    yield name
    for hierarchy in [*V1.iterdir(), V1]:
        for sub in (hierarchy / name).glob("*") if (hierarchy / name).is_dir() else []:
            if sub.is_dir():
                sub.rmdir()
        if (hierarchy / name).is_dir():
            (hierarchy / name).rmdir()


def test_update_cpu_period_retried_after_quota(
    rt: Runtime, bundle: Bundle, cpu_parent: str
) -> None:
    """update --cpu-period 50000 --cpu-quota 25000 from quota 50000/period 100000 under a
    parent of half a CPU: the period alone would mean a whole CPU (EINVAL); runc writes the
    quota and then the period again."""
    cid = new_id("pq")
    bundle.config["linux"]["cgroupsPath"] = f"/{cpu_parent}/{cid}"
    bundle.config["linux"]["resources"] = {"cpu": {"quota": 50000, "period": 100000}}
    bundle.set_args("sleep", "1000")
    rt.ok("run", "--detach", "--bundle", bundle.path, cid)
    rt.ok("update", "--cpu-period", "50000", "--cpu-quota", "25000", cid)
    assert v1_cgroup_file(rt, cid, "cpu", "cpu.cfs_period_us") == "50000"
    assert v1_cgroup_file(rt, cid, "cpu", "cpu.cfs_quota_us") == "25000"
    rt.ok("kill", cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt.ok("delete", cid)


def test_update_rdt_schemas_refused_without_resctrl(rt: Runtime, bundle: Bundle) -> None:
    if Path("/sys/fs/resctrl/schemata").exists():
        pytest.skip("this host has resctrl")
    bundle.set_args("sleep", "1000")
    cid = new_id("pr")
    rt.ok("run", "--detach", "--bundle", bundle.path, cid)
    for flag, what in (("--l3-cache-schema", "l3 cache schema is not enabled"),
                       ("--mem-bw-schema", "memory bandwidth schema is not enabled")):
        proc = rt("update", flag, "L3:0=f", cid)
        assert proc.returncode == 1 and what in proc.stderr, proc.stderr
    rt.ok("kill", cid, "KILL")


# --- hooks -------------------------------------------------------------------------------


def test_host_hook_through_proc_exe(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """dockerd's prestart hook is /proc/<dockerd's pid>/exe: a hook that runs on the host side
    may be a /proc magic link (only what runs in the container may not, S1)."""
    host_proc = subprocess.Popen(["/bin/busybox", "sleep", "100"])
    try:
        marker = tmp_path / f"hook-ran-{rt.name}"
        bundle.config["hooks"] = {"prestart": [
            {"path": f"/proc/{host_proc.pid}/exe", "args": ["touch", str(marker)]}]}
        bundle.sh("echo ran")
        proc = rt("run", "--bundle", bundle.path, new_id("ph"))
        assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
        assert marker.exists()
    finally:
        host_proc.kill()
        host_proc.wait()


# --- the command line ----------------------------------------------------------------------


def test_run_no_subreaper(rt: Runtime, bundle: Bundle) -> None:
    bundle.sh("echo ran")
    proc = rt("run", "--no-subreaper", "--bundle", bundle.path, new_id("ps"))
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr


def test_rootless_takes_true_false_auto(rt: Runtime, bundle: Bundle) -> None:
    bundle.sh("echo ran")
    for value in ("true", "false", "auto"):
        proc = rt("run", "--bundle", bundle.path, new_id("pl"), global_args=("--rootless", value))
        assert (proc.returncode, proc.stdout) == (0, "ran\n"), (value, proc.stderr)
    proc = rt("run", "--bundle", bundle.path, new_id("pl"), global_args=("--rootless", "maybe"))
    assert proc.returncode == 1 and "maybe" in proc.stderr, proc.stderr
    assert not os.listdir(rt.root)


def test_help_command(rt: Runtime) -> None:
    proc = rt("help")
    assert proc.returncode == 0, proc.stderr
    for command in ("create", "exec", "list", "update"):
        assert command in proc.stdout
    proc = rt("help", "list")
    assert proc.returncode == 0, proc.stderr
    assert "--format" in proc.stdout and "--quiet" in proc.stdout


def test_version_lines(rt: Runtime) -> None:
    lines = rt.ok("--version").stdout.splitlines()
    assert lines[0].startswith(f"{rt.name} version ")
    assert lines[1].startswith("commit: ")
    assert any(line.startswith("spec: ") for line in lines)


def test_list_json_is_compact(rt: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "1000")
    cid = new_id("pj")
    rt.ok("run", "--detach", "--bundle", bundle.path, cid)
    out = rt.ok("list", "--format", "json").stdout
    assert out.startswith('[{"ociVersion":"') and out.endswith("}]\n"), out
    assert ", " not in out and '": ' not in out
    (row,) = json.loads(out)
    assert set(row) >= {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                        "owner"}
    assert (row["id"], row["status"]) == (cid, "running")
    rt.ok("kill", cid, "KILL")


def test_rootfs_symlink_refused(rt: Runtime, bundle: Bundle) -> None:
    (bundle.path / "real-rootfs").mkdir()
    os.rename(bundle.rootfs, bundle.path / "real-rootfs" / "fs")
    os.symlink("real-rootfs/fs", bundle.rootfs)
    proc = rt("run", "--bundle", bundle.path, new_id("py"))
    assert proc.returncode == 1
    assert "invalid rootfs: not an absolute path, or a symlink" in proc.stderr, proc.stderr
    assert not os.listdir(rt.root)


def test_missing_bundle_and_config(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    proc = rt("run", "--bundle", tmp_path / "no-such-bundle", new_id("pb"))
    assert proc.returncode == 1
    assert "no-such-bundle: no such file or directory" in proc.stderr, proc.stderr
    os.unlink(bundle.config_path)
    proc = rt("run", "--bundle", bundle.path, new_id("pb"))
    assert proc.returncode == 1
    assert "JSON specification file config.json not found" in proc.stderr, proc.stderr
    assert not os.listdir(rt.root)


@pytest.fixture
def squatted_cgroup(rt: Runtime) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A cgroup (every v1 hierarchy and cgroup2) that already holds a host process; the
    process and the directories are removed at teardown, after `rt` deleted the containers."""
    del rt
    name = new_id("parb-ne")
    squatter = subprocess.Popen(["sleep", "1000"])
    made = []
    try:
        for hierarchy in sorted(V1.iterdir()):
            d = hierarchy / name
            if not (hierarchy / "cgroup.procs").exists():
                continue
            d.mkdir()
            made.append(d)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if (hierarchy / f).exists():
                    (d / f).write_text((hierarchy / f).read_text())
            (d / "cgroup.procs").write_text(str(squatter.pid))
        yield name, squatter
    finally:
        squatter.kill()
        squatter.wait()
        for d in reversed(made):
            for sub in sorted(d.glob("*/"), reverse=True):
                if sub.is_dir():
                    sub.rmdir()
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


def test_non_empty_cgroup_warns_frozen_refused(
    rt: Runtime, bundle: Bundle, squatted_cgroup: tuple[str, subprocess.Popen[bytes]]
) -> None:
    """runc 1.1.5 warns about a cgroup that already has processes and goes on; a frozen one
    stays an error."""
    name, squatter = squatted_cgroup
    bundle.config["linux"]["cgroupsPath"] = f"/{name}"
    bundle.sh("echo ran")
    proc = rt("run", "--bundle", bundle.path, new_id("pn"))
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
    assert "level=warning" in proc.stderr
    assert "container's cgroup is not empty: 1 process(es) found" in proc.stderr
    assert squatter.poll() is None
    freezer = V1 / "freezer" / name / "freezer.state"
    if not freezer.exists():
        return
    freezer.write_text("FROZEN")
    try:
        proc = rt("run", "--bundle", bundle.path, new_id("pn"))
        assert proc.returncode == 1 and "frozen" in proc.stderr, proc.stderr
    finally:
        freezer.write_text("THAWED")
    assert not os.listdir(rt.root)


# --- the runtime's own spec --------------------------------------------------------------


def test_own_spec_runs_without_a_warning(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """`spec` then `run` of its config (the busybox rootfs, a non-terminal process): no warning
    on stderr (the capability sets `spec` writes are ones the runtime applies as they are)."""
    spec_dir = tmp_path / f"spec-{rt.name}"
    spec_dir.mkdir()
    os.symlink(bundle.rootfs, spec_dir / "rootfs")
    rt.ok("spec", "--bundle", spec_dir)
    config = json.loads((spec_dir / "config.json").read_text())
    assert config["process"]["capabilities"]["ambient"]  # the set the warning was about
    config["process"].update(terminal=False, args=["sh", "-c", "grep CapAmb /proc/self/status"])
    config["root"]["path"] = str(bundle.rootfs)
    (spec_dir / "config.json").write_text(json.dumps(config))
    proc = rt.ok("run", "--bundle", spec_dir, new_id("ps"))
    assert proc.stderr == ""
    # an ambient capability needs the inheritable one, which `spec` leaves out: runc 1.1.5
    # raises none and says nothing (libcontainer/capabilities: ambient errors ignored)
    assert proc.stdout == "CapAmb:\t0000000000000000\n"


# --- --debug -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_debug_narrates_into_the_log(rt: Runtime, bundle: Bundle, tmp_path: Path,
                                     fmt: str) -> None:
    """`--debug --log FILE --log-format F`: debug-level records in runc's (logrus') shape; pyrunc's
    say what the init is about to do (namespaces, each mount, pivot, exec) and each hook."""
    log = tmp_path / f"{rt.name}.log"
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/true", "args": ["true"]}]}
    bundle.sh("echo ran")
    proc = rt("run", "--bundle", bundle.path, new_id("pd"),
              global_args=("--debug", "--log", str(log), "--log-format", fmt))
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
    lines = log.read_text().splitlines()
    if fmt == "json":
        records = [json.loads(line) for line in lines]
        assert all({"level", "msg", "time"} <= set(r) for r in records), records[:3]
    else:
        assert all(line.startswith('time="') and " level=" in line for line in lines), lines[:3]
        records = [{"level": line.split(" level=")[1].split(" ")[0],
                    "msg": line.split(" msg=", 1)[1]} for line in lines]  # fmt: skip
    debug = [r["msg"] for r in records if r["level"] == "debug"]
    assert len(debug) >= 10, debug
    if rt.name == "pyrunc":
        text = "\n".join(debug)
        for said in ("new mount, uts, ipc, pid, network namespaces", "mount proc to /proc",
                     "pivot_root", "exec ['sh', '-c', 'echo ran']", "createRuntime hook 0",
                     "started as pid", "cgroup: init"):
            assert said in text, (said, text)


# --- seccomp ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["write", "default"])
def test_seccomp_notify_on_write_refused(rt: Runtime, bundle: Bundle, tmp_path: Path,
                                         where: str) -> None:
    """runc refuses SCMP_ACT_NOTIFY on write and as the default action: the init could never
    hand the notify fd over to the agent."""
    seccomp: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW",
                               "listenerPath": str(tmp_path / "agent.sock"), "syscalls": []}
    if where == "write":
        seccomp["syscalls"] = [{"names": ["mkdir", "write"], "action": "SCMP_ACT_NOTIFY"}]
    else:
        seccomp["defaultAction"] = "SCMP_ACT_NOTIFY"
    bundle.config["linux"]["seccomp"] = seccomp
    bundle.sh("echo ran")
    proc = rt("run", "--bundle", bundle.path, new_id("pw"))
    assert proc.returncode == 1
    wanted = ("cannot be used for the write syscall" if where == "write"
              else "cannot be used as default action")
    assert wanted in proc.stderr, proc.stderr
    assert not os.listdir(rt.root)


UNISTD_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
PROBE_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        long nr = strtol(argv[i], NULL, 0);
        errno = 0;
        long r = syscall(nr, -1L, 0L, 0L, 0L, 0L, 0L);
        printf("%ld:%d\n", nr, r < 0 ? errno : 0);
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def syscall_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static binary that makes the syscalls named by number and prints `NR:ERRNO`."""
    if os.uname().machine != "x86_64" or not UNISTD_64.exists() or not shutil.which("gcc"):
        pytest.skip("needs x86_64, gcc and the kernel headers")
    work = tmp_path_factory.mktemp("probe")
    (work / "probe.c").write_text(PROBE_C)
    built = subprocess.run(["gcc", "-static", "-O1", "-o", str(work / "probe"),
                            str(work / "probe.c")], capture_output=True, text=True)
    if built.returncode != 0:
        pytest.skip(f"cannot build a static probe: {built.stderr[-300:]}")
    return work / "probe"


def x86_64_syscalls() -> dict[str, int]:
    out = {}
    for line in UNISTD_64.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "#define" and parts[1].startswith("__NR_"):
            out[parts[1][5:]] = int(parts[2])
    return out


def test_seccomp_enosys_for_syscalls_newer_than_the_profile(
    rt: Runtime, bundle: Bundle, syscall_probe: Path
) -> None:
    """runc's -ENOSYS stub: a syscall numbered above every syscall the profile names (on its
    architectures) gets ENOSYS instead of the default action (here EPERM), so a newer libc
    falls back; one below it that the profile does not name still gets the default."""
    table = x86_64_syscalls()
    last = table["rseq"]  # 334: everything up to it allowed, but tkill (200)
    allowed = sorted(n for n, nr in table.items() if nr <= last and n != "tkill")
    shutil.copy(syscall_probe, bundle.rootfs / "probe")
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
    }
    newer = table["close_range"]  # 436
    bundle.set_args("/probe", str(table["tkill"]), str(newer), str(table["getpid"]),
                    str(0x40000000 | 600))
    proc = rt("run", "--bundle", bundle.path, new_id("pe"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{table['tkill']}:1",  # EPERM: below the last named syscall, not named
        f"{newer}:38",  # ENOSYS: newer than everything named
        f"{table['getpid']}:0",
        # x32: its own last number (its compat calls go up to 547), the same rule
        f"{0x40000000 | 600}:38",
    ]


def test_seccomp_no_enosys_stub_for_permissive_defaults(
    rt: Runtime, bundle: Bundle, syscall_probe: Path
) -> None:
    table = x86_64_syscalls()
    shutil.copy(syscall_probe, bundle.rootfs / "probe")
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["tkill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }
    bundle.set_args("/probe", str(table["tkill"]), str(table["close_range"]))
    proc = rt("run", "--bundle", bundle.path, new_id("pe"))
    assert proc.returncode == 0, proc.stderr
    # close_range(-1, 0, 0) runs: EINVAL (22) from the kernel, not ENOSYS
    assert proc.stdout.splitlines() == [f"{table['tkill']}:13", f"{table['close_range']}:22"]


# --- exec --cgroup -----------------------------------------------------------------------------


def container_cgroup_dirs(pid: int) -> dict[str, Path]:
    """{controllers (\"\" for cgroup2): directory} of a process, from the host's view."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        name = controllers.removeprefix("name=")  # name=systemd is mounted at .../systemd
        base = V1 / "unified" if controllers == "" else V1 / name
        if base.is_dir():
            out[controllers] = base / path.lstrip("/")
    return out


def test_exec_cgroup_joins_a_sub_cgroup(rt: Runtime, bundle: Bundle) -> None:
    """`exec --cgroup PATH` (every controller) and `--cgroup CTRL:PATH` run the process in an
    existing sub-cgroup of the container's; `..` is refused, so is an unknown controller."""
    bundle.set_args("sleep", "1000")
    cid = new_id("pg")
    rt.ok("run", "--detach", "--bundle", bundle.path, cid)
    dirs = container_cgroup_dirs(rt.state(cid)["pid"])
    for d in dirs.values():
        (d / "sub").mkdir()
        for f in ("cpuset.cpus", "cpuset.mems"):
            if (d / f).exists():
                (d / "sub" / f).write_text((d / f).read_text())
    try:
        show = ("sh", "-c", "sleep 0; cat /proc/self/cgroup")
        proc = rt("exec", "--cgroup", "sub", cid, *show)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines and all(ln.endswith("/sub") for ln in lines), proc.stdout
        proc = rt("exec", "--cgroup", "pids:sub", cid, *show)
        assert proc.returncode == 0, proc.stderr
        by_ctrl = {ln.split(":")[1]: ln for ln in proc.stdout.splitlines()}
        assert by_ctrl["pids"].endswith("/sub")
        assert not by_ctrl["memory"].endswith("/sub")
        for bad, why in (("../escape", "is not a sub cgroup path"),
                         ("nosuchctrl:sub", "unknown controller nosuchctrl")):
            proc = rt("exec", "--cgroup", bad, cid, "true")
            assert proc.returncode == 255 and why in proc.stderr, (bad, proc.stderr)
    finally:
        rt.ok("kill", cid, "KILL")
        rt.wait_status(cid, "stopped")
        for d in dirs.values():
            for _ in range(50):
                try:
                    (d / "sub").rmdir()
                    break
                except OSError:
                    time.sleep(0.05)


# --- events --stats ----------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """What a JSON document looks like without its numbers: the keys in their order, the
    type of each leaf, a list by its first element."""
    if isinstance(value, dict):
        return [(k, _shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def test_events_stats_has_runcs_shape(bundle: Bundle, tmp_path: Path) -> None:
    """`events --stats` of the same container, run by each runtime, has the same keys in the
    same order (memory's four entries, raw sorted as a Go map, blkio from the files runc
    picks: on this host BFQ's exist but are empty). The container makes every omitempty
    field it can nonzero: a tmpfs file (cache), a read past the page cache (blkio)."""
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 20}}
    bundle.sh("dd if=/dev/zero of=/dev/shm/f bs=4096 count=64 2>/dev/null; "
              "dd if=/bin/busybox of=/dev/null bs=4096 count=8 iflag=direct 2>/dev/null; "
              ": > /ready; exec sleep 1000")
    shapes = {}
    for name in RUNTIMES:
        root = tmp_path / f"root-{name}"
        root.mkdir(mode=0o700)
        rt = Runtime(name, root)
        cid = new_id("stats")
        ready = bundle.rootfs / "ready"
        ready.unlink(missing_ok=True)
        try:
            rt.ok("run", "--detach", "--bundle", bundle.path, cid)
            deadline = time.monotonic() + 60  # a wait for the container, not a measurement
            while not ready.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ready.exists(), f"{name}: the container did not get ready"
            event = json.loads(rt.ok("events", "--stats", cid).stdout)
            shapes[name] = _shape(event)
        finally:
            rt("delete", "--force", cid)
    assert shapes["pyrunc"] == shapes["runc"]
