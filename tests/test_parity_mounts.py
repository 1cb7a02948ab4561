"""Differential tests of mounts, the process and hooks (issue 14, part A): each scenario runs with
pyrunc and with runc 1.1.5 on the same bundle, and what a user sees (output, exit status, the
mount table, file owners) must be the same.

Every test gets both runtimes through the `both` fixture: a private --root each, container ids
from new_id (they name cgroups too), and a teardown that force-deletes what a test left.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, USERNS_HOST_BASE, Bundle, new_id
from helpers_clients import run_in_pty

RUNTIMES = ("pyrunc", "runc")


class Runtime:
    """`rt(*args)` runs `RUNTIME --root ROOT *args` to completion, output into files."""

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

    def cmd(self, *args: Any) -> list[str]:
        return [*self.argv, "--root", str(self.root), *map(str, args)]

    def __call__(self, *args: Any, timeout: float = 30, **kw: Any) -> subprocess.CompletedProcess:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            kw.setdefault("stdin", subprocess.DEVNULL)
            proc = subprocess.Popen(self.cmd(*args), stdout=out, stderr=err,
                                    cwd=kw.pop("cwd", REPO), **kw)
            try:
                rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                proc.args, rc, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )

    def run(self, bundle: Bundle, *flags: Any, **kw: Any) -> subprocess.CompletedProcess:
        """`run` the bundle in the foreground; the container is gone afterwards."""
        cid = new_id(f"para-{self.name}")
        proc = self("run", *flags, "--bundle", bundle.path, cid, **kw)
        self("delete", "--force", cid)
        return proc


@pytest.fixture
def both(tmp_path: Path) -> Iterator[dict[str, Runtime]]:
    rts = {}
    for name in RUNTIMES:
        root = tmp_path / f"root-{name}"
        root.mkdir(mode=0o700)
        rts[name] = Runtime(name, root)
    yield rts
    for rt in rts.values():
        for cid in os.listdir(rt.root):
            rt("delete", "--force", cid)
        left = os.listdir(rt.root)
        shutil.rmtree(rt.root, ignore_errors=True)
        assert not left, f"{rt.name} left {left}"


def outputs(both: dict[str, Runtime], bundle: Bundle, *flags: Any) -> dict[str, tuple[int, str]]:
    """(exit status, stdout) of the bundle with each runtime."""
    out = {}
    for name, rt in both.items():
        proc = rt.run(bundle, *flags)
        out[name] = (proc.returncode, proc.stdout)
        if proc.returncode != 0:
            out[name] += (proc.stderr,)  # type: ignore[assignment]
    return out


def assert_same(both: dict[str, Runtime], bundle: Bundle, *flags: Any, status: int = 0) -> str:
    """Both runtimes give the same exit status and stdout; returns the stdout."""
    got = outputs(both, bundle, *flags)
    assert got["runc"][0] == status, f"runc itself: {got['runc']}"
    if got["pyrunc"][:2] != got["runc"][:2]:
        diff = difflib.unified_diff(got["runc"][1].splitlines(), got["pyrunc"][1].splitlines(),
                                    "runc", "pyrunc", lineterm="")
        raise AssertionError(f"status runc {got['runc'][0]}, pyrunc {got['pyrunc'][0]} "
                             f"{got['pyrunc'][2:]}\n" + "\n".join(diff))
    return got["pyrunc"][1]


# the mount table of the container, mount options and super options per mount point, with
# what differs between two runs (ids, device numbers, tmpfs inode counts) left out
MOUNT_TABLE = r"""
while read -r id parent dev root point opts rest; do
  case "$point" in {prefix}*) ;; *) continue ;; esac
  set -- $rest
  tags=""; while [ "$1" != "-" ]; do tags="$tags ${{1%%:*}}"; shift; done
  super=$(echo "$4" | tr , '\n' | grep -v '^inode64$' | sort | tr '\n' ,)
  echo "$point $root $opts |$tags| $2 $super"
done < /proc/self/mountinfo | sort
"""


def mount_table(prefix: str) -> str:
    return MOUNT_TABLE.format(prefix=prefix)


# --- mount options ---------------------------------------------------------------------

# runc 1.1.5's `features` mountOptions, each on a mount of its own (bind, rbind and remount
# need a source or an existing mount and are tested elsewhere)
RUNC_OPTIONS = sorted(
    set(json.loads(subprocess.run(["runc", "features"], capture_output=True, text=True)
                   .stdout or '{"mountOptions": []}')["mountOptions"])
    - {"bind", "rbind", "remount"}
) if shutil.which("runc") else []
# listed by runc 1.1.5, which fails on them with EINVAL: it hands `defaults` to the kernel as
# data, and its `ratime`/`rnostrictatime` clear one bit of the atime field, which
# mount_setattr refuses (libcontainer/specconv/spec_linux.go, recAttrFlags). pyrunc does what
# mount(8) says: no flag for `defaults`, relatime for the other two.
RUNC_REFUSES = {"defaults": "relatime", "ratime": "relatime", "rnostrictatime": "relatime"}


def _option_mounts(bundle: Bundle, src: Path, options: list[str]) -> None:
    """A mount per option at /o/OPTION. The recursive ones on bind mounts: runc 1.1.5 returns
    from mountToRootfs' tmpfs case before setRecAttr (libcontainer/rootfs_linux.go), so it
    ignores them on a tmpfs (pyrunc applies them there too, as the spec says)."""
    from pyrunc.rootfs import RECURSIVE_OPTIONS

    for option in options:
        if option in RECURSIVE_OPTIONS:
            bundle.add_mount(f"/o/{option}", "bind", str(src), ["rbind", option])
        else:
            bundle.add_mount(f"/o/{option}", "tmpfs", "tmpfs", [option, "size=1m"])
    bundle.sh(mount_table("/o/"))


def test_every_mount_option_runc_lists(
    bundle: Bundle, both: dict[str, Runtime], tmp_path: Path
) -> None:
    """Every option of runc's `features` is accepted and gives the mount runc gives."""
    assert len(RUNC_OPTIONS) > 50, RUNC_OPTIONS
    (tmp_path / "src").mkdir()
    _option_mounts(bundle, tmp_path / "src", [o for o in RUNC_OPTIONS if o not in RUNC_REFUSES])
    table = assert_same(both, bundle)
    assert len(table.splitlines()) == len(RUNC_OPTIONS) - len(RUNC_REFUSES)
    opts = {line.split()[0][3:]: line.split()[2] for line in table.splitlines()}
    assert opts["rro"] == "ro,relatime" and opts["nosymfollow"] == "rw,relatime,nosymfollow"
    assert opts["symfollow"] == opts["tmpcopyup"] == opts["acl"] == "rw,relatime"

    bundle.config["mounts"] = bundle.original["mounts"]
    _option_mounts(bundle, tmp_path / "src", sorted(RUNC_REFUSES))
    proc = both["pyrunc"].run(bundle)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        point, _, opts = line.split()[:3]
        assert opts == "rw," + RUNC_REFUSES[point[3:]], line


def test_unknown_option_is_an_error_naming_it(bundle: Bundle, both: dict[str, Runtime]) -> None:
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["nosuid", "no-such-option", "size=1m"])
    bundle.sh("true")
    got = outputs(both, bundle)
    assert got["runc"][0] != 0 and got["pyrunc"][0] != 0, got
    assert "no-such-option" in got["pyrunc"][2], got["pyrunc"]


def _image_dir(rootfs: Path) -> None:
    """/data of the image: files of other owners and modes, a subdirectory, a symlink (no fifo:
    runc's copy-up fails on one, lchown of a file it did not make)."""
    data = rootfs / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a").write_text("alpha\n")
    (data / "sub" / "b").write_text("beta\n" * 10000)
    os.chown(data / "a", 0, 1001)
    os.chmod(data / "a", 0o640)
    os.chmod(data / "sub", 0o751)
    os.chown(data / "sub", 7, 8)
    os.symlink("a", data / "link")
    os.chmod(data, 0o1777)


LIST_DATA = (
    "cd /data && for f in . a sub sub/b link; do stat -c '%n %F %a %u:%g %s' $f; done; "
    "cat a; md5sum sub/b; touch new && echo writable; "
)


def test_tmpcopyup_copies_the_image_directory(bundle: Bundle, both: dict[str, Runtime]) -> None:
    _image_dir(bundle.rootfs)
    bundle.add_mount("/data", "tmpfs", "tmpfs", ["tmpcopyup", "nosuid", "size=4m"])
    bundle.sh(LIST_DATA + mount_table("/data"))
    out = assert_same(both, bundle)
    assert ". directory 1777 0:0" in out and "a regular file 640 0:1001 6" in out
    assert "alpha\n" in out and "writable\n" in out and "/data / rw,nosuid" in out
    assert not (bundle.rootfs / "data" / "new").exists()


def test_a_tmpfs_takes_the_mode_of_the_directory_it_covers(
    bundle: Bundle, both: dict[str, Runtime]
) -> None:
    _image_dir(bundle.rootfs)
    bundle.add_mount("/data", "tmpfs", "tmpfs", ["size=1m", "mode=700"])
    bundle.sh("stat -c '%a' /data; ls -A /data | wc -l")
    assert assert_same(both, bundle) == "1777\n0\n"


def test_read_only_tmpfs(bundle: Bundle, both: dict[str, Runtime]) -> None:
    _image_dir(bundle.rootfs)
    bundle.add_mount("/data", "tmpfs", "tmpfs", ["ro", "tmpcopyup", "size=1m"])
    bundle.sh("cat /data/a; touch /data/x 2>&1; " + mount_table("/data"))
    out = assert_same(both, bundle)
    assert "alpha\n" in out and "Read-only file system" in out and "/data / ro," in out


def test_read_only_dev(bundle: Bundle, both: dict[str, Runtime]) -> None:
    """A read-only tmpfs /dev gets its nodes, links and submounts first (runc)."""
    dev = next(m for m in bundle.config["mounts"] if m["destination"] == "/dev")
    dev["options"].append("ro")
    bundle.sh(
        "ls -l /dev/null /dev/zero /dev/ptmx /dev/fd | cut -c1-10; touch /dev/x 2>&1; "
        "echo ok > /dev/null && echo null works; echo shm > /dev/shm/f && cat /dev/shm/f; "
        + mount_table("/dev")
    )
    out = assert_same(both, bundle)
    assert "Read-only file system" in out and "/dev / ro,nosuid" in out and "shm\n" in out


# --- the process -----------------------------------------------------------------------


def test_a_cwd_only_root_may_enter(bundle: Bundle, both: dict[str, Runtime]) -> None:
    """chdir before the user drops its privileges, and again after (runc's finalizeNamespace):
    a cwd only root can enter works for another user; stdio becomes the user's."""
    (bundle.rootfs / "root").chmod(0o700)
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["cwd"] = "/root"
    bundle.sh("pwd; ls . 2>&1 | sed 's/.*: //'; stat -L -c %u /proc/self/fd/1")
    assert assert_same(both, bundle) == "/root\nPermission denied\n1000\n"


PTY_OWNER = "stat -c '%u %g %a' $(tty); stat -c %u /proc/self/fd/0"


def test_the_terminal_belongs_to_the_user(bundle: Bundle, both: dict[str, Runtime]) -> None:
    """create/run with a terminal: the pty slave is process.user's, group tty (devpts gid=5)."""
    bundle.process["terminal"] = True
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.sh(PTY_OWNER)
    seen = {}
    for name, rt in both.items():
        cid = new_id(f"para-{name}")
        rc, out = run_in_pty(rt.cmd("run", "--bundle", bundle.path, cid), timeout=30)
        rt("delete", "--force", cid)
        seen[name] = (rc, out)
    assert seen["runc"] == (0, "1000 5 620\n1000\n"), seen
    assert seen["pyrunc"] == seen["runc"]


def test_exec_t_terminal_belongs_to_the_user(bundle: Bundle, both: dict[str, Runtime]) -> None:
    bundle.sh("sleep 60")
    seen = {}
    for name, rt in both.items():
        cid = new_id(f"para-{name}")
        proc = rt("run", "--detach", "--bundle", bundle.path, cid)
        assert proc.returncode == 0, proc.stderr
        try:
            seen[name] = run_in_pty(rt.cmd("exec", "-t", "--user", "1000:1000", cid,
                                           "sh", "-c", PTY_OWNER), timeout=30)
        finally:
            rt("delete", "--force", cid)
    assert seen["runc"] == (0, "1000 5 620\n1000\n"), seen
    assert seen["pyrunc"] == seen["runc"]


# --- hooks -----------------------------------------------------------------------------

# the environment a hook got (what its shell adds left out)
ENV_OF = "env | grep -v '^PWD=\\|^SHLVL=\\|^_=' | sort"


def _hook_runs(both: dict[str, Runtime], bundle: Bundle, out: Path) -> dict[str, str]:
    """Run the bundle with each runtime; what its hooks wrote to `out` (cleared before each)."""
    seen = {}
    for name, rt in both.items():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        proc = rt.run(bundle)
        assert proc.returncode == 0, (name, proc.stderr)
        seen[name] = "".join(f"{f.name}: {f.read_text()}" for f in sorted(out.iterdir()))
    return seen


def test_create_container_hook_runs_in_the_rootfs(
    bundle: Bundle, both: dict[str, Runtime], tmp_path: Path
) -> None:
    """A createContainer hook's working directory is the container's root: a relative path
    lands in the rootfs, never in the runtime's cwd (runc: prepareRootfs chdirs first)."""
    out = tmp_path / "out"
    script = f"pwd > {out}/cwd; touch ./hook-was-here; {ENV_OF} > {out}/env"
    bundle.config["hooks"] = {"createContainer": [{"path": "/bin/sh",
                                                   "args": ["sh", "-c", script]}]}
    bundle.sh("ls /hook-was-here")
    seen = _hook_runs(both, bundle, out)
    assert seen["pyrunc"] == seen["runc"]
    assert f"cwd: {os.path.realpath(bundle.rootfs)}\n" in seen["runc"]
    # no env in the hook: the init's, which is the process's (runc)
    assert "env: PATH=/usr/local/sbin" in seen["runc"]


def test_host_hook_without_env_gets_the_runtime_environment(
    bundle: Bundle, both: dict[str, Runtime], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    bundle.config["hooks"] = {
        kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"{ENV_OF} > {out}/{kind}"]}]
        for kind in ("prestart", "createRuntime", "poststart", "poststop")
    }
    bundle.sh("true")
    seen = {}
    for name, rt in both.items():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        # with LANG set, Python adds no LC_CTYPE of its own (PEP 538 locale coercion)
        env = {"PARA_MARK": name, "PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
        proc = rt.run(bundle, env=env)
        assert proc.returncode == 0, (name, proc.stderr)
        seen[name] = {f.name: f.read_text() for f in out.iterdir()}
    assert seen["runc"]["prestart"] == f"LANG=C.UTF-8\nPARA_MARK=runc\nPATH={os.environ['PATH']}\n"
    assert len(seen["pyrunc"]) == 4
    for kind, text in seen["pyrunc"].items():
        assert text == seen["runc"][kind].replace("runc", "pyrunc"), kind


SECCOMP_NO_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


@pytest.mark.parametrize("no_new_privileges", [True, False])
def test_start_container_hook_runs_in_the_init_after_seccomp(
    bundle: Bundle, both: dict[str, Runtime], tmp_path: Path, no_new_privileges: bool
) -> None:
    """startContainer hooks run in the container's init just before the user process: as its
    user, in its root, under its seccomp filter (runc's linuxStandardInit.Init)."""
    out = tmp_path / "out"
    bundle.add_mount("/out", "bind", str(out), ["rbind"])
    bundle.config["linux"]["seccomp"] = SECCOMP_NO_MKDIR
    bundle.process["noNewPrivileges"] = no_new_privileges
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    script = ("cat > /out/state; mkdir /tmp/by-hook 2> /out/mkdir; echo $? >> /out/mkdir; "
              f"id -u > /out/uid; ls /bin/busybox > /out/root; {ENV_OF} > /out/env")
    (out).mkdir()
    os.chmod(out, 0o777)
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/sh",
                                                  "args": ["sh", "-c", script]}]}
    bundle.sh("test -s /out/state && echo after the hook")
    seen = {}
    for name, rt in both.items():
        for f in out.iterdir():
            f.unlink()
        proc = rt.run(bundle)
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout == "after the hook\n", (name, proc.stdout)
        state = json.loads((out / "state").read_text())
        assert state["status"] == "created" and state["pid"] == 1, (name, state)
        seen[name] = {f.name: f.read_text() for f in out.iterdir() if f.name != "state"}
    assert seen["runc"]["mkdir"].endswith("Operation not permitted\n1\n")
    assert seen["runc"]["uid"] == "1000\n"
    assert seen["pyrunc"] == seen["runc"]


# every capability this VM's root may hand on (no CAP_SYS_RESOURCE here)
ALL_CAPS = [f"CAP_{c}" for c in (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_CHROOT SYS_PTRACE SYS_ADMIN SYS_NICE MKNOD LEASE AUDIT_WRITE SETFCAP").split()]


@pytest.mark.parametrize("flags", [(), ("--no-pivot",)])
def test_no_fully_visible_procfs_is_left(
    bundle: Bundle, both: dict[str, Runtime], flags: tuple[str, ...]
) -> None:
    """A nested user + pid namespace may mount a procfs only while a full one is visible in
    its mount namespace: with --no-pivot the runtime's own /proc and /sys must go first
    (runc's msMoveRoot), so the container cannot mount an unmasked procfs."""
    caps = bundle.process["capabilities"]
    for key in ("bounding", "effective", "permitted"):
        caps[key] = ALL_CAPS
    bundle.config["root"]["readonly"] = False
    bundle.sh("mkdir -p /tmp/m; unshare -mrpf sh -c 'mount -t proc proc /tmp/m && echo mounted' "
              "2>&1; echo $?; ls /proc/self/fd > /dev/null && echo /proc works")
    assert assert_same(both, bundle, *flags) == (
        "mount: permission denied (are you root?)\n1\n/proc works\n"
    )


# --- bind sources a user namespace cannot reach ------------------------------------------

HOST_BASE = USERNS_HOST_BASE


@pytest.fixture
def userns_bundle(userns_bundle: Bundle) -> Bundle:
    """conftest's user-namespace bundle without the cgroup mount (it binds host cgroup
    directories: not what these tests are about)."""
    userns_bundle.config["mounts"] = [m for m in userns_bundle.config["mounts"]
                                      if m["type"] != "cgroup"]  # fmt: skip
    userns_bundle.write()
    return userns_bundle


def test_bind_source_the_user_namespace_cannot_reach(
    userns_bundle: Bundle, both: dict[str, Runtime], tmp_path: Path
) -> None:
    """A source under a 0700 directory of another owner: the runtime opens it on the host side
    and the init mounts it from the fd (runc's mount sources), idmapped mounts too."""
    hidden = tmp_path / "hidden"  # pytest's tmp_path is 0700 root: unreachable for uid 100000
    (hidden / "data").mkdir(parents=True)
    (hidden / "data" / "file").write_text("reached\n")
    os.chown(hidden / "data" / "file", HOST_BASE + 7, HOST_BASE + 7)
    (hidden / "one").write_text("a file\n")
    (hidden / "mapped").mkdir()
    (hidden / "mapped" / "file").write_text("mapped\n")
    os.chown(hidden / "mapped" / "file", 7, 7)
    hidden.chmod(0o700)
    bundle = userns_bundle
    bundle.add_mount("/data", "bind", str(hidden / "data"), ["rbind", "ro"])
    bundle.add_mount("/one", "bind", str(hidden / "one"), ["bind"])
    bundle.sh("cat /data/file /one; stat -c '%u %n' /data/file; "
              "touch /data/x 2>&1 | sed 's/.*: //'")
    assert assert_same(both, bundle) == (
        "reached\na file\n7 /data/file\nRead-only file system\n"
    )
    # runc 1.1.5 has no idmapped mounts (it takes `idmap` for filesystem data): pyrunc alone
    bundle.add_mount("/mapped", "bind", str(hidden / "mapped"), ["rbind", "idmap"])
    bundle.sh("cat /mapped/file; stat -c '%u' /mapped/file")
    proc = both["pyrunc"].run(bundle)
    assert (proc.returncode, proc.stdout) == (0, "mapped\n7\n"), proc.stderr


def test_bind_sources_and_net_devices_in_a_user_namespace(
    userns_bundle: Bundle, both: dict[str, Runtime], tmp_path: Path
) -> None:
    """The sync point that hands over the bind sources is also where linux.netDevices move:
    with both, the device is in the container and the bind mounted (runc 1.1.5 has no
    netDevices: pyrunc alone)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "file").write_text("reached\n")
    a, b = f"parav{os.getpid() % 10000}", f"parap{os.getpid() % 10000}"
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    try:
        bundle = userns_bundle
        bundle.config["linux"]["netDevices"] = {a: {"name": "moved0"}}
        bundle.add_mount("/data", "bind", str(tmp_path / "data"), ["rbind", "ro"])
        bundle.sh("cat /data/file; ls /sys/class/net | grep moved0")
        proc = both["pyrunc"].run(bundle)
        assert (proc.returncode, proc.stdout) == (0, "reached\nmoved0\n"), proc.stderr
    finally:
        for dev in (a, b):
            subprocess.run(["ip", "link", "del", dev], capture_output=True)
