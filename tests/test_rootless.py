"""Rootless: pyrunc run by a real unprivileged user, alone and under rootless podman, with runc
doing the same in the same run (the reference).

The module makes its own user (useradd, a unique name, a subuid/subgid range) and a runtime
directory for it (/run/user/UID, its $XDG_RUNTIME_DIR); teardown kills that user's processes
(by pid), removes its delegated cgroup, its storage, home and runtime directory, and the user,
even when a test failed.

The user cannot run this interpreter when it lives under /root (mode 0700, pyenv's). It runs
the first Python of the same version it can execute (this one, else /usr/bin/pythonX.Y: the
built extensions are for that ABI), importing pyrunc and its dependencies (attrs, cattrs) from
copies in a root-owned, world-readable directory: the checkout itself may not be readable.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, new_id
from helpers_clients import rootfs_tarball, run_cmd

RUNC = shutil.which("runc")
SETPRIV = shutil.which("setpriv")
DEPENDENCIES = ("attr", "attrs", "cattr", "cattrs", "typing_extensions")
PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"


class User:
    """The unprivileged test user and how to run things as it."""

    def __init__(self, name: str, shared: Path) -> None:
        pw = pwd.getpwnam(name)
        self.name = name
        self.uid = pw.pw_uid
        self.gid = pw.pw_gid
        self.home = Path(pw.pw_dir)
        self.rundir = Path(f"/run/user/{self.uid}")
        self.shared = shared  # root-owned, world-readable: pyrunc, its dependencies, wrappers
        self.python = ""
        self.cgroup: Path | None = None  # a cgroup2 directory delegated to the user, if made

    @property
    def subids(self) -> tuple[int, int]:
        """(first subordinate uid, count) from /etc/subuid (the same range in /etc/subgid)."""
        for line in Path("/etc/subuid").read_text().splitlines():
            name, start, count = line.split(":")
            if name == self.name:
                return int(start), int(count)
        raise AssertionError(f"{self.name} has no /etc/subuid range")

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "PATH": PATH,
            "XDG_RUNTIME_DIR": str(self.rundir), "LANG": "C.UTF-8",
            "PYTHONPATH": f"{self.shared}/pkg:{self.shared}/deps",
        }
        env.update(extra)
        return env

    def run(self, *argv: str | Path, cwd: Path | None = None, delegated: bool = False,
            timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        """argv as the user (setpriv: real, effective and saved ids, its groups), started in
        the delegated cgroup when asked (moving a process there needs root)."""
        cmd = [SETPRIV, f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--",
               *map(str, argv)]
        if delegated:
            assert self.cgroup is not None
            cmd = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', f"{self.cgroup}/cgroup.procs", *cmd]
        return run_cmd(cmd, env=self.env(**env), cwd=str(cwd or self.home), timeout=timeout)

    def pyrunc(self, *args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-m", "pyrunc", *args, **kwargs)

    def runtime(self, runtime: str, *args: str | Path,
                **kwargs: Any) -> subprocess.CompletedProcess[str]:
        if runtime == "runc":
            return self.run(RUNC, *args, **kwargs)
        return self.pyrunc(*args, **kwargs)

    def pids(self) -> list[int]:
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}").st_uid == self.uid:
                        out.append(int(entry))
                except OSError:
                    pass
        return out


def _useradd() -> str:
    name = f"prl{os.getpid()}"
    run_cmd(["useradd", "--create-home", "--shell", "/bin/sh", "--user-group", name],
            check=True)
    # a subordinate range of its own (useradd adds one where login.defs says so; not always)
    for path, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        lines = Path(path).read_text().splitlines() if os.path.exists(path) else []
        if any(line.split(":")[0] == name for line in lines):
            continue
        end = max([100000] + [int(s) + int(n) for _, s, n in (x.split(":") for x in lines)])
        run_cmd(["usermod", flag, f"{end}-{end + 65535}", name], check=True)
    return name


def _user_python(user: User) -> str:
    """The first interpreter of this Python's version that the user can execute, and that is
    the same Python for the user as for root (pyenv's binary, its libpython unreadable, would
    load the system's libpython and stdlib instead)."""
    want = f"{sys.version_info[0]}.{sys.version_info[1]}"
    candidates = [os.path.realpath(sys.executable), f"/usr/bin/python{want}",
                  f"/usr/local/bin/python{want}"]
    code = "import sys; print('%d.%d' % sys.version_info[:2], sys.version, sys.prefix)"
    for candidate in candidates:
        if not os.path.exists(candidate):
            continue
        probe = user.run(candidate, "-c", code)
        as_root = run_cmd([candidate, "-c", code], cwd="/")
        if (probe.returncode == 0 and probe.stdout.split()[0] == want
                and probe.stdout == as_root.stdout):
            return candidate
    pytest.skip(f"no Python {want} the test user can execute (tried {candidates})")


def _copy_python_code(shared: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.c", "*.pyc")
    shutil.copytree(REPO / "pyrunc", shared / "pkg" / "pyrunc", ignore=ignore)
    (shared / "deps").mkdir()
    for name in DEPENDENCIES:
        try:
            module = __import__(name)
        except ImportError:
            continue
        source = Path(module.__file__)
        if source.name == "__init__.py":
            shutil.copytree(source.parent, shared / "deps" / name, ignore=ignore)
        else:
            shutil.copy2(source, shared / "deps" / source.name)
    run_cmd(["chmod", "-R", "a+rX", str(shared)], check=True)


def _remove_cgroup(path: Path, timeout: float = 10) -> None:
    """Kill what is in a cgroup tree, then rmdir it bottom up. A SIGKILLed task leaves its
    cgroup only when it has run its exit, later on a loaded host: until then rmdir is EBUSY,
    retried up to `timeout`."""
    deadline = time.monotonic() + timeout
    for d in sorted((p for p in [path, *path.rglob("*")] if p.is_dir()),
                    key=lambda p: -len(p.parts)):  # fmt: skip
        while True:
            with contextlib.suppress(OSError):
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
            try:
                d.rmdir()
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    if os.geteuid() != 0:
        pytest.skip("the rootless tests make a user: run them as root")
    if SETPRIV is None or shutil.which("useradd") is None:
        pytest.skip("setpriv and useradd are needed (util-linux, passwd)")
    if shutil.which("newuidmap") is None:
        pytest.skip("newuidmap is missing: apt-get install uidmap")
    shared = Path(tempfile.mkdtemp(prefix="pyrunc-rootless-"))
    shared.chmod(0o755)
    name = _useradd()
    u = User(name, shared)
    problems: list[str] = []
    try:
        u.rundir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chown(u.rundir, u.uid, u.gid)
        _copy_python_code(shared)
        u.python = _user_python(u)
        probe = u.run(u.python, "-c", "import pyrunc._executor, pyrunc._linux, pyrunc.spec.model")
        assert probe.returncode == 0, f"the test user cannot import pyrunc: {probe.stderr}"
        yield u
    finally:
        # everything of the user's: podman's storage first (files owned by its subuids)
        if shutil.which("podman") and (u.home / ".local/share/containers").exists():
            u.run("podman", "system", "reset", "--force", timeout=120)
        for _attempt in range(50):
            pids = u.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        else:
            problems.append(f"processes of {name} survived SIGKILL: {u.pids()}")
        if u.cgroup is not None and u.cgroup.exists():
            try:
                _remove_cgroup(u.cgroup)
            except OSError as e:
                problems.append(f"cannot remove {u.cgroup}: {e}")
        run_cmd(["userdel", "--remove", name])
        for path in (u.home, u.rundir, shared):
            shutil.rmtree(path, ignore_errors=True)
        for path in ("/etc/passwd", "/etc/subuid", "/etc/subgid"):
            if any(line.split(":")[0] == name for line in Path(path).read_text().splitlines()):
                problems.append(f"{name} is still in {path}")
        assert not problems, "; ".join(problems)


@pytest.fixture
def delegated(user: User) -> Iterator[Path]:
    """A cgroup2 directory delegated to the user (an administrator's chown, as systemd's
    Delegate=yes does), which the user's commands are started in."""
    from pyrunc.cgroups.layout import detect

    unified = detect().unified
    if unified is None:
        pytest.skip("no cgroup2 hierarchy mounted")
    path = Path(unified.mount) / f"pyrunc-rootless-{os.getpid()}"
    path.mkdir()
    user.cgroup = path
    for f in (path, path / "cgroup.procs", path / "cgroup.subtree_control",
              path / "cgroup.threads"):
        os.chown(f, user.uid, user.gid)
    try:
        yield path
    finally:
        user.cgroup = None
        _remove_cgroup(path)


class RootlessBundle:
    """A busybox bundle in the user's home with the config `spec --rootless` wrote for it."""

    def __init__(self, user: User, template: Path, runtime: str = "pyrunc") -> None:
        self.user = user
        self.path = user.home / new_id("b")
        run_cmd(["cp", "-a", str(template), str(self.path)], check=True)
        (self.path / "config.json").unlink()
        run_cmd(["chown", "-R", f"{user.uid}:{user.gid}", str(self.path)], check=True)
        spec = user.runtime(runtime, "spec", "--rootless", cwd=self.path)
        assert spec.returncode == 0, spec.stderr
        self.config: dict[str, Any] = json.loads((self.path / "config.json").read_text())
        self.config["process"]["terminal"] = False

    def write(self, *args: str) -> RootlessBundle:
        if args:
            self.config["process"]["args"] = list(args)
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self

    def sh(self, script: str) -> RootlessBundle:
        return self.write("sh", "-c", script)


@pytest.fixture
def rl_bundle(user: User, busybox_bundle: Path) -> Iterator[RootlessBundle]:
    b = RootlessBundle(user, busybox_bundle)
    yield b
    shutil.rmtree(b.path, ignore_errors=True)


def status_ids(pid: int) -> tuple[list[str], list[str]]:
    """(Uid, Gid) fields of /proc/PID/status, read from the host."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return fields["Uid"].split(), fields["Gid"].split()


def state_of(user: User, runtime: str, cid: str, **kwargs: Any) -> dict[str, Any]:
    proc = user.runtime(runtime, "state", cid, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def runtime_dir_entries(user: User, runtime: str) -> list[str]:
    d = user.rundir / runtime
    return sorted(os.listdir(d)) if d.is_dir() else []


# --- spec --------------------------------------------------------------------------------


def test_spec_rootless_is_runcs(user: User, tmp_path: Path) -> None:
    """`spec --rootless` by the user writes what runc writes (but the version it implements):
    a user namespace mapping the user's uid and gid to 0, no network namespace, /sys bound."""
    configs = {}
    for runtime in ("pyrunc", "runc"):
        d = user.home / f"spec-{runtime}"
        d.mkdir()
        os.chown(d, user.uid, user.gid)
        proc = user.runtime(runtime, "spec", "--rootless", cwd=d)
        assert proc.returncode == 0, proc.stderr
        configs[runtime] = json.loads((d / "config.json").read_text())
        shutil.rmtree(d)
    mine, runcs = configs["pyrunc"], configs["runc"]
    assert mine.pop("ociVersion") == "1.3.0"
    runcs.pop("ociVersion")
    assert mine == runcs
    linux = mine["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    assert "network" not in [ns["type"] for ns in linux["namespaces"]]
    assert "resources" not in linux
    # a second spec refuses to overwrite, as runc does
    d = user.home / "spec-twice"
    d.mkdir()
    os.chown(d, user.uid, user.gid)
    assert user.pyrunc("spec", "--rootless", cwd=d).returncode == 0
    again = user.pyrunc("spec", "--rootless", cwd=d)
    assert again.returncode == 1 and "config.json exists" in again.stderr


# --- running as the user -------------------------------------------------------------------


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_run_root_inside_user_outside(user: User, busybox_bundle: Path, runtime: str) -> None:
    """`spec --rootless` + `run`: uid 0 inside, the user's own uid outside (the host's
    /proc/PID/status), state under $XDG_RUNTIME_DIR/<runtime> (no --root), nothing left."""
    b = RootlessBundle(user, busybox_bundle, runtime)
    cid = new_id("rl")
    try:
        b.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
             "cat /proc/self/setgroups; exec sleep 60")
        run = user.runtime(runtime, "run", "--detach", cid, cwd=b.path)
        assert run.returncode == 0, run.stderr
        assert cid in runtime_dir_entries(user, runtime)
        pid = state_of(user, runtime, cid)["pid"]
        uids, gids = status_ids(pid)
        assert uids == [str(user.uid)] * 4 and gids == [str(user.gid)] * 4
        inside = user.runtime(runtime, "exec", cid, "sh", "-c", "id -u; cat /proc/1/cmdline")
        assert inside.returncode == 0, inside.stderr
        assert inside.stdout.startswith("0\nsleep")
    finally:
        user.runtime(runtime, "delete", "--force", cid)
    assert runtime_dir_entries(user, runtime) == []
    # the foreground run prints what the container printed
    b.sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/setgroups")
    fg = user.runtime(runtime, "run", cid, cwd=b.path)
    assert fg.returncode == 0, fg.stderr
    lines = [" ".join(line.split()) for line in fg.stdout.splitlines()]
    assert lines == ["0", "0", f"0 {user.uid} 1", f"0 {user.gid} 1", "deny"]
    assert runtime_dir_entries(user, runtime) == []
    shutil.rmtree(b.path)


def test_lifecycle_matches_runc(user: User, busybox_bundle: Path) -> None:
    """create, state, list, start, ps, exec, kill, delete by the user, with pyrunc and with
    runc: the same statuses and outputs, and nothing left in $XDG_RUNTIME_DIR."""
    seen: dict[str, list[Any]] = {}
    for runtime in ("pyrunc", "runc"):
        b = RootlessBundle(user, busybox_bundle, runtime)
        b.sh("trap 'exit 3' TERM; echo started > /tmp/started; while :; do sleep 1 & wait; done")
        cid = new_id("lc")
        got: list[Any] = []
        try:
            created = user.runtime(runtime, "create", cid, cwd=b.path)
            assert created.returncode == 0, created.stderr
            got.append(state_of(user, runtime, cid)["status"])
            listed = user.runtime(runtime, "list", "--format", "json")
            rows = json.loads(listed.stdout)
            got.append([(r["id"] == cid, r["status"], r["owner"]) for r in rows])
            started = user.runtime(runtime, "start", cid)
            assert started.returncode == 0, started.stderr
            got.append(state_of(user, runtime, cid)["status"])
            pid = state_of(user, runtime, cid)["pid"]
            if runtime == "pyrunc":  # runc's ps needs the container's cgroup, which it lacks
                ps = user.runtime(runtime, "ps", "--format", "json", cid)
                assert ps.returncode == 0, ps.stderr
                assert pid in json.loads(ps.stdout)
            for _ in range(100):
                ex = user.runtime(runtime, "exec", cid, "cat", "/tmp/started")
                if ex.returncode == 0:
                    break
                time.sleep(0.05)
            got.append((ex.returncode, ex.stdout))
            denied = user.runtime(runtime, "exec", "--user", "1234", cid, "id", "-u")
            got.append(denied.returncode != 0)  # uid 1234 is not mapped
            killed = user.runtime(runtime, "kill", cid, "TERM")
            assert killed.returncode == 0, killed.stderr
            for _ in range(100):
                status = state_of(user, runtime, cid)["status"]
                if status == "stopped":
                    break
                time.sleep(0.05)
            got.append(status)
            deleted = user.runtime(runtime, "delete", cid)
            got.append(deleted.returncode)
            got.append(user.runtime(runtime, "state", cid).returncode)
        finally:
            user.runtime(runtime, "delete", "--force", cid)
            shutil.rmtree(b.path)
        got.append(runtime_dir_entries(user, runtime))
        seen[runtime] = got
    assert seen["pyrunc"] == seen["runc"]
    assert seen["pyrunc"][0] == "created" and seen["pyrunc"][-1] == []
    assert seen["pyrunc"][1] == [(True, "created", user.name)]


def test_root_only_requests_fail_clearly(user: User, rl_bundle: RootlessBundle) -> None:
    """What needs host root gets one clear line (naming the JSON path) and leaves nothing
    behind; runc refuses the same configs."""
    original = json.loads(json.dumps(rl_bundle.config))
    cases: list[tuple[str, Any, str]] = [
        ("resources", lambda c: c["linux"].__setitem__(
            "resources", {"memory": {"limit": 64 << 20}}), "linux.resources.memory"),
        ("oomScoreAdj", lambda c: c["process"].__setitem__("oomScoreAdj", -500),
         "process.oomScoreAdj"),
        ("sysctl", lambda c: c["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward": "1"}),
         "linux.sysctl"),
        ("no userns", lambda c: c["linux"].__setitem__("namespaces", [
            ns for ns in c["linux"]["namespaces"] if ns["type"] != "user"]),
         "linux.namespaces"),
        ("groups", lambda c: c["process"]["user"].__setitem__("additionalGids", [5]),
         "process.user.additionalGids"),
    ]
    for name, change, field in cases:
        rl_bundle.config = json.loads(json.dumps(original))
        change(rl_bundle.config)
        rl_bundle.write("true")
        for runtime in ("pyrunc", "runc"):
            cid = new_id("rf")
            proc = user.runtime(runtime, "run", cid, cwd=rl_bundle.path)
            user.runtime(runtime, "delete", "--force", cid)
            if runtime == "runc":
                if name != "sysctl":  # runc 1.1.5 lets a host sysctl through to EACCES later
                    assert proc.returncode != 0, f"runc accepted {name}"
                continue
            assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and field in lines[0], (name, proc.stderr)
            assert "Traceback" not in proc.stderr
            assert runtime_dir_entries(user, "pyrunc") == [], name
    # the same resources in a config that asks for none are not needed: it just runs
    rl_bundle.config = json.loads(json.dumps(original))
    rl_bundle.config["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    rl_bundle.write("true")
    ok = user.pyrunc("run", new_id("rf"), cwd=rl_bundle.path)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr


def test_devices_are_bound_not_made(user: User, rl_bundle: RootlessBundle) -> None:
    """mknod needs host root: linux.devices and the default nodes are the host's, bound."""
    rl_bundle.config["linux"]["devices"] = [
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600}
    ]
    out = {}
    for runtime in ("pyrunc", "runc"):
        rl_bundle.write("sh", "-c", "stat -c '%t:%T %U' /dev/null /dev/fuse /dev/zero")
        proc = user.runtime(runtime, "run", new_id("dv"), cwd=rl_bundle.path)
        assert proc.returncode == 0, proc.stderr
        out[runtime] = proc.stdout
    assert out["pyrunc"] == out["runc"]
    assert out["pyrunc"].splitlines()[1].startswith("a:e5 ")  # 10:229 in hex


def test_id_ranges_through_newuidmap(user: User, rl_bundle: RootlessBundle) -> None:
    """More than the user's own id: the subordinate range too, written by newuidmap and
    newgidmap; a file chowned to a subordinate id inside is owned by that id outside."""
    start, count = user.subids
    linux = rl_bundle.config["linux"]
    for key, own in (("uidMappings", user.uid), ("gidMappings", user.gid)):
        linux[key] = [{"containerID": 0, "hostID": own, "size": 1},
                      {"containerID": 1, "hostID": start, "size": min(count, 65536)}]
    rl_bundle.config["root"]["readonly"] = False
    caps = rl_bundle.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind].append("CAP_CHOWN")
    out = {}
    for runtime in ("pyrunc", "runc"):
        name = f"owned-{runtime}"
        rl_bundle.sh(f"cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; "
                     f"id -G; touch /tmp/{name}; chown 1000:1000 /tmp/{name}")
        proc = user.runtime(runtime, "run", new_id("nm"), cwd=rl_bundle.path)
        assert proc.returncode == 0, proc.stderr
        out[runtime] = [" ".join(line.split()) for line in proc.stdout.splitlines()]
        st = os.stat(rl_bundle.path / "rootfs" / "tmp" / name)
        assert (st.st_uid, st.st_gid) == (start + 999, start + 999)
    assert out["pyrunc"] == out["runc"]
    assert out["pyrunc"][:2] == [f"0 {user.uid} 1", f"1 {start} {min(count, 65536)}"]
    assert out["pyrunc"][4:] == ["allow", "0"]
    # setgroups is allowed in that namespace (newgidmap): pyrunc sets additionalGids there,
    # where runc 1.1.5 refuses any for a caller that is not root
    rl_bundle.config["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [7]}
    rl_bundle.write("id", "-G")
    groups = user.pyrunc("run", new_id("nm"), cwd=rl_bundle.path)
    assert (groups.returncode, groups.stdout) == (0, "0 7\n"), groups.stderr


def test_delegated_cgroup_pause(user: User, rl_bundle: RootlessBundle, delegated: Path) -> None:
    """In a cgroup2 subtree delegated to the user the container gets a cgroup of its own
    there (pause and resume work, through cgroup.freeze); delete removes it."""
    cid = new_id("dg")
    rl_bundle.write("sleep", "60")
    try:
        run = user.pyrunc("run", "-d", cid, cwd=rl_bundle.path, delegated=True)
        assert run.returncode == 0, run.stderr
        pid = state_of(user, "pyrunc", cid)["pid"]
        line = next(x for x in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                    if x.startswith("0::"))
        own = "/" + delegated.name
        assert line.startswith(f"0::{own}/") and line.endswith(f"/{cid}")
        leaf = delegated / line[len(f"0::{own}/"):]
        assert leaf.is_dir() and leaf.stat().st_uid == user.uid
        # no v1 cgroup was made for it: it stays in the caller's there
        for entry in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            assert cid not in entry or entry.startswith("0::"), entry
        assert user.pyrunc("pause", cid).returncode == 0
        assert state_of(user, "pyrunc", cid)["status"] == "paused"
        assert (leaf / "cgroup.freeze").read_text().strip() == "1"
        assert user.pyrunc("resume", cid).returncode == 0
        assert state_of(user, "pyrunc", cid)["status"] == "running"
        ex = user.pyrunc("exec", cid, "cat", "/proc/self/cgroup", delegated=True)
        assert ex.returncode == 0 and line in ex.stdout.splitlines(), ex.stdout  # the init's
        # a caller outside the subtree cannot move it there: it stays in the caller's (runc)
        outside = user.pyrunc("exec", cid, "cat", "/proc/self/cgroup")
        assert outside.returncode == 0 and "0::/" in outside.stdout.splitlines(), outside.stderr
    finally:
        user.pyrunc("delete", "--force", cid)
    assert not leaf.exists()
    assert [p for p in delegated.iterdir() if p.is_dir()] == []


def test_no_delegated_cgroup_no_pause(user: User, rl_bundle: RootlessBundle) -> None:
    """Without a cgroup the user may write, the container has none: no host cgroup is made,
    and pause says why it cannot."""
    cid = new_id("nd")
    rl_bundle.write("sleep", "60")
    try:
        run = user.pyrunc("run", "-d", cid, cwd=rl_bundle.path)
        assert run.returncode == 0, run.stderr
        pid = state_of(user, "pyrunc", cid)["pid"]
        # in every hierarchy, the cgroup its caller was in (the test's own: setpriv's)
        assert Path(f"/proc/{pid}/cgroup").read_text() == Path("/proc/self/cgroup").read_text()
        paused = user.pyrunc("pause", cid)
        assert paused.returncode == 1 and "freezer" in paused.stderr
        assert state_of(user, "pyrunc", cid)["status"] == "running"
    finally:
        user.pyrunc("delete", "--force", cid)
    assert runtime_dir_entries(user, "pyrunc") == []


def test_interpreter_not_writable(user: User, rl_bundle: RootlessBundle) -> None:
    """S1 without root: the overlay cannot be mounted, so the created init runs from a sealed
    memfd copy of the interpreter, which neither the user nor the container can write."""
    cid = new_id("s1")
    rl_bundle.write("true")
    try:
        created = user.pyrunc("create", cid, cwd=rl_bundle.path)
        assert created.returncode == 0, created.stderr
        pid = state_of(user, "pyrunc", cid)["pid"]
        assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:pyrunc-python")
        # the user cannot reopen it (the init is not dumpable) ...
        probe = user.run(user.python, "-c", f"open('/proc/{pid}/exe', 'r+b')")
        assert probe.returncode != 0 and "PermissionError" in probe.stderr, probe.stderr
        # ... nor can the container's root, through /proc/1/exe
        inside = user.pyrunc("exec", cid, "sh", "-c", "echo x >> /proc/1/exe && echo WROTE")
        assert inside.returncode != 0 and "WROTE" not in inside.stdout
    finally:
        user.pyrunc("delete", "--force", cid)


# --- rootless podman ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def podman(user: User, busybox_bundle: Path) -> Iterator[dict[str, str]]:
    """The user's podman: storage in its home, cgroupfs (no systemd), pyrunc by a wrapper of
    the interpreter the user can run; the busybox rootfs imported as an image."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    wrapper = user.shared / "pyrunc"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH={user.shared}/pkg:{user.shared}/deps exec {user.python} -m pyrunc \"$@\"\n"
    )
    wrapper.chmod(0o755)
    conf = user.shared / "containers.conf"
    conf.write_text(
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        'runtime_supports_json = ["crun", "runc", "pyrunc"]\n'
        "[engine.runtimes]\n"
        f'pyrunc = ["{wrapper}"]\n'
        "[containers]\n"
        "default_ulimits = []\n"
    )
    conf.chmod(0o644)
    tarball = rootfs_tarball(busybox_bundle / "rootfs", user.shared / "busybox.tar")
    tarball.chmod(0o644)
    env = {"CONTAINERS_CONF": str(conf)}
    imported = user.run("podman", "import", tarball, "localhost/pyrunc-rootless", timeout=120,
                        **env)
    assert imported.returncode == 0, imported.stderr
    yield env


def podman_run(user: User, env: dict[str, str], runtime: str,
               *args: str) -> subprocess.CompletedProcess[str]:
    return user.run("podman", "--runtime", runtime, *args, timeout=120, **env)


def test_podman_run_rm(user: User, podman: dict[str, str]) -> None:
    """`podman --runtime X run --rm --network none`: root inside, the user's subordinate
    range mapped by podman, the same output with pyrunc and runc; storage in the user's home."""
    out = {}
    for runtime in ("pyrunc", "runc"):
        proc = podman_run(user, podman, runtime, "run", "--rm", "--network", "none",
                          "localhost/pyrunc-rootless", "sh", "-c",
                          "id -u; cat /proc/self/uid_map; ip -o link | wc -l; echo $((6*7))")
        assert proc.returncode == 0, proc.stderr
        out[runtime] = [" ".join(line.split()) for line in proc.stdout.splitlines()]
    assert out["pyrunc"] == out["runc"]
    start, count = user.subids
    assert out["pyrunc"][:3] == ["0", f"0 {user.uid} 1", f"1 {start} {count}"]
    assert out["pyrunc"][-2:] == ["1", "42"]  # only lo
    assert (user.home / ".local/share/containers/storage").is_dir()


def test_podman_detach_exec_stop(user: User, podman: dict[str, str]) -> None:
    """-d, exec, stop (TERM handled: exit 42), rm, with pyrunc and runc alike."""
    script = 'trap "exit 42" TERM; echo up; while :; do sleep 1 & wait $!; done'
    out = {}
    for runtime in ("pyrunc", "runc"):
        name = new_id(f"pd-{runtime}")
        try:
            started = podman_run(user, podman, runtime, "run", "-d", "--network", "none",
                                 "--name", name, "localhost/pyrunc-rootless", "sh", "-c",
                                 script)
            assert started.returncode == 0, started.stderr
            ex = podman_run(user, podman, runtime, "exec", name, "sh", "-c", "id -u; echo hi")
            assert ex.returncode == 0, ex.stderr
            stop = podman_run(user, podman, runtime, "stop", "-t", "10", name)
            assert stop.returncode == 0, stop.stderr
            inspect = podman_run(user, podman, runtime, "inspect", "--format",
                                 "{{.State.Status}} {{.State.ExitCode}}", name)
            out[runtime] = (ex.stdout, inspect.stdout.strip())
        finally:
            podman_run(user, podman, runtime, "rm", "--force", name)
    assert out["pyrunc"] == out["runc"] == ("0\nhi\n", "exited 42")


@pytest.fixture
def tun_for_users() -> Iterator[None]:
    """slirp4netns opens /dev/net/tun as the user: Debian's udev makes it 0666; this VM has it
    0600. Made 0666 for the test, put back after."""
    if shutil.which("slirp4netns") is None:
        pytest.skip("slirp4netns is not installed: apt-get install slirp4netns")
    mode = os.stat("/dev/net/tun").st_mode & 0o777
    os.chmod("/dev/net/tun", 0o666)
    try:
        yield
    finally:
        os.chmod("/dev/net/tun", mode)


def test_podman_slirp4netns(user: User, podman: dict[str, str], tun_for_users: None) -> None:
    """The rootless default network, slirp4netns: a tap0 with podman's address and route, the
    same with pyrunc and runc (no traffic leaves the machine: only the setup is looked at)."""
    out = {}
    for runtime in ("pyrunc", "runc"):
        proc = podman_run(user, podman, runtime, "run", "--rm", "--network", "slirp4netns",
                          "localhost/pyrunc-rootless", "sh", "-c",
                          "ip -4 -o addr show tap0 | awk '{print $4}'; ip -4 route | head -1")
        assert proc.returncode == 0, proc.stderr
        out[runtime] = proc.stdout
    assert out["pyrunc"] == out["runc"]
    assert out["pyrunc"].splitlines() == ["10.0.2.100/24", "default via 10.0.2.2 dev tap0 "]


def test_create_container_hook(user: User, busybox_bundle: Path) -> None:
    """A createContainer hook runs in the container's namespaces (its user namespace first:
    the others are out of an unprivileged caller's reach without it), as with runc."""
    out = {}
    for runtime in ("pyrunc", "runc"):
        b = RootlessBundle(user, busybox_bundle, runtime)
        mark = b.path / "hooked"
        b.config["hooks"] = {"createContainer": [{
            "path": "/bin/sh",
            "args": ["sh", "-c", f"id -u > {mark}; readlink /proc/self/ns/user >> {mark}"],
        }]}
        b.write("true")
        proc = user.runtime(runtime, "run", new_id("hk"), cwd=b.path)
        assert proc.returncode == 0, proc.stderr
        uid, userns = mark.read_text().split()
        out[runtime] = (uid, userns != os.readlink("/proc/self/ns/user"))
        shutil.rmtree(b.path)
    assert out["pyrunc"] == out["runc"] == ("0", True)


def test_rootless_flag(user: User, rl_bundle: RootlessBundle) -> None:
    """The global --rootless as runc: `auto` (the default) detects the unprivileged caller;
    `false` makes the caller's cgroups be used as root's would (so an unprivileged caller
    fails, with one line, leaving nothing); `true` is the same as auto here; anything else
    is refused naming the value. runc fails (or runs) for the same values."""
    rl_bundle.write("true")
    got: dict[str, list[Any]] = {}
    for runtime in ("pyrunc", "runc"):
        row: list[Any] = []
        for value in ("auto", "true", "false", "bogus"):
            cid = new_id("rf")
            proc = user.runtime(runtime, "--rootless", value, "run", cid, cwd=rl_bundle.path)
            user.runtime(runtime, "delete", "--force", cid)
            row.append(proc.returncode == 0)
            if runtime == "pyrunc" and proc.returncode != 0:
                lines = proc.stderr.strip().splitlines()
                assert len(lines) == 1 and "Traceback" not in proc.stderr, (value, proc.stderr)
                if value == "bogus":
                    assert "bogus" in lines[0], proc.stderr
            assert runtime_dir_entries(user, runtime) == [], (runtime, value)
        got[runtime] = row
    assert got["pyrunc"] == got["runc"] == [True, True, False, False]


def test_networks_need_root(user: User, rl_bundle: RootlessBundle) -> None:
    """pyrunc's bridge networks and linux.netDevices make host links and rules, which need
    host root: an unprivileged caller gets one line naming what asked for them, before
    anything is made, and nothing is left. (A rootless container's network is slirp4netns's,
    as podman's; `network create` only writes a record under the caller's state root.)"""
    made = user.pyrunc("network", "create", "--subnet", "10.239.7.0/24", "rlnet")
    assert made.returncode == 0, made.stderr
    try:
        rl_bundle.config["linux"]["namespaces"].append({"type": "network"})
        rl_bundle.write("true")
        cases = [(["--network", "rlnet"], "--network: pyrunc's bridge networks need root")]
        rl_bundle.config["annotations"] = {"org.pyrunc.network": "rlnet"}
        rl_bundle.write()
        cases.append(([], "annotations.org.pyrunc.network: pyrunc's bridge networks need root"))
        for extra, want in cases:
            proc = user.pyrunc("run", *extra, new_id("nw"), cwd=rl_bundle.path)
            assert proc.returncode == 1 and one_line(proc.stderr).endswith(
                want + " (they make host links and nftables rules); a rootless container's "
                "network is slirp4netns's\""), proc.stderr
        del rl_bundle.config["annotations"]
        rl_bundle.config["linux"]["netDevices"] = {"lo": {"name": "x0"}}
        rl_bundle.write()
        proc = user.pyrunc("run", new_id("nw"), cwd=rl_bundle.path)
        assert proc.returncode == 1, proc.stderr
        assert "config.json: linux.netDevices: moving a host network device into the " \
            "container needs root" in one_line(proc.stderr), proc.stderr
        assert not Path("/sys/class/net/pyr-rlnet").exists()
    finally:
        assert user.pyrunc("network", "rm", "rlnet").returncode == 0
    assert runtime_dir_entries(user, "pyrunc") == []


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]
