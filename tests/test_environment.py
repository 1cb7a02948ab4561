"""What the process sees from inside the container: every check runs a real `pyrunc run`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Bundle, Pyrunc, host_mounts, new_id, new_mounts_under
from helpers_security import proc_status

# a few capability numbers (linux/capability.h)
CAP_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_FOWNER": 3,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_ADMIN": 21,
    "CAP_MKNOD": 27,
    "CAP_AUDIT_WRITE": 29,
}

Sh = Callable[..., subprocess.CompletedProcess[str]]


def cap_mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_NUMBERS[name]
    return mask


@pytest.fixture
def sh(bundle: Bundle, pyrunc: Pyrunc) -> Sh:
    """sh(SCRIPT): `pyrunc run` a container whose process is `sh -c SCRIPT`.

    With check (the default) the run must exit 0; the CompletedProcess carries the container's
    stdout and stderr. Edit bundle.config before calling to change the configuration.
    """

    def run(
        script: str, *extra: str, check: bool = True, cid: str | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        bundle.sh(script)
        proc = pyrunc("run", *extra, "--bundle", bundle.path, cid or new_id("env"), **kwargs)
        if check:
            assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    return run


# --- process -------------------------------------------------------------------------


def test_init_is_pid_1(sh: Sh) -> None:
    assert sh("echo $$").stdout == "1\n"


def test_only_the_container_processes_are_visible(sh: Sh) -> None:
    out = sh("ls /proc | grep -E '^[0-9]+$'; exit 0").stdout.split()
    # the shell (1), ls and grep: nothing from the host
    assert "1" in out
    assert len(out) <= 3, out


@pytest.mark.parametrize("hostname", ["pyrunc", "env-test-host"])
def test_hostname(bundle: Bundle, sh: Sh, hostname: str) -> None:
    bundle.config["hostname"] = hostname
    assert sh("hostname; cat /proc/sys/kernel/hostname").stdout == f"{hostname}\n{hostname}\n"


def test_args_passed_verbatim(bundle: Bundle, pyrunc: Pyrunc) -> None:
    words = [
        "a b",
        "$HOME",
        "'single'",
        '"double"',
        "*",
        "",
        "tab\there",
        "back\\slash",
        "semi;colon",
        "$(echo no)",
        "ünïcødé",
        "-n",
    ]
    bundle.set_args("sh", "-c", 'for a in "$@"; do printf "<%s>\\n" "$a"; done', "zero", *words)
    proc = pyrunc("run", "--bundle", bundle.path, new_id("args"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"<{w}>" for w in words]


def test_stdio_on_the_hosts_dev_null_becomes_the_containers(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """runc parity (reOpenDevNull): stdin is the host's /dev/null here (the fixture's DEVNULL);
    in the container it is the container's own /dev/null, opened read-write. stdout, a file,
    stays as it is."""
    bundle.sh(
        "stat -L -c %d:%i /proc/self/fd/0; stat -c %d:%i /dev/null; "
        "stat -L -c %d:%i /proc/self/fd/1; sed -n 's/^flags:[[:space:]]*//p' /proc/self/fdinfo/0"
    )
    proc = pyrunc("run", "--bundle", bundle.path, new_id("devnull"))
    assert proc.returncode == 0, proc.stderr
    stdin, dev_null, stdout, flags = proc.stdout.split()
    host = os.stat("/dev/null")
    assert stdin == dev_null != f"{host.st_dev}:{host.st_ino}"
    assert stdout != dev_null
    assert int(flags, 8) & os.O_ACCMODE == os.O_RDWR


def test_argv0_is_passed(bundle: Bundle, pyrunc: Pyrunc) -> None:
    # busybox picks the applet from argv[0]: running /bin/busybox as "echo" proves argv[0] is kept
    bundle.set_args("/bin/busybox", "echo", "from", "argv0")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("argv0"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "from argv0\n"


def test_env_exactly_as_configured(bundle: Bundle, sh: Sh) -> None:
    env = ["PATH=/bin:/sbin", "HOME=/nowhere", "FOO=bar baz", "EMPTY=", "WITH_EQ=a=b", "U=ünï"]
    bundle.process["env"] = env
    # /proc/1/environ is what the init was exec'd with (the shell adds PWD/SHLVL later)
    out = sh("tr '\\0' '\\n' </proc/1/environ; exit 0").stdout
    assert out.splitlines() == env


def test_home_defaults_from_passwd(bundle: Bundle, sh: Sh) -> None:
    """runc sets HOME from the user's /etc/passwd entry when the config has no HOME."""
    bundle.process["env"] = ["PATH=/bin"]
    out = sh("tr '\\0' '\\n' </proc/1/environ; exit 0").stdout
    assert sorted(out.splitlines()) == ["HOME=/root", "PATH=/bin"]


def test_cwd(bundle: Bundle, sh: Sh) -> None:
    bundle.process["cwd"] = "/etc"
    assert sh("pwd; ls passwd").stdout == "/etc\npasswd\n"


def test_missing_cwd_is_created(bundle: Bundle, sh: Sh) -> None:
    bundle.process["cwd"] = "/does/not/exist"
    assert not (bundle.rootfs / "does").exists()
    assert sh("pwd").stdout == "/does/not/exist\n"
    assert (bundle.rootfs / "does" / "not" / "exist").is_dir()


def test_default_user_is_root(sh: Sh) -> None:
    status = proc_status(sh("cat /proc/self/status").stdout)
    assert status["Uid"].split() == ["0"] * 4
    assert status["Gid"].split() == ["0"] * 4
    assert status["Groups"].split() == []


def test_uid_gid_additional_gids(bundle: Bundle, sh: Sh) -> None:
    bundle.process["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7, 1234]}
    out = sh("cat /proc/self/status; id -u; id -g").stdout
    status = proc_status(out)
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1001"] * 4
    assert sorted(status["Groups"].split(), key=int) == ["5", "7", "1234"]
    assert out.splitlines()[-2:] == ["1000", "1001"]


def test_non_root_user_files_belong_to_it(bundle: Bundle, sh: Sh) -> None:
    bundle.process["user"] = {"uid": 1000, "gid": 1001}
    out = sh("touch /dev/shm/f && stat -c '%u:%g' /dev/shm/f").stdout
    assert out == "1000:1001\n"


def test_default_umask(sh: Sh) -> None:
    assert sh("umask").stdout == "0022\n"


def test_configured_umask(bundle: Bundle, sh: Sh) -> None:
    bundle.process["user"]["umask"] = 0o077
    out = sh("umask; touch /dev/shm/f; stat -c %a /dev/shm/f").stdout
    assert out == "0077\n600\n"


def test_rlimit_nofile(bundle: Bundle, sh: Sh) -> None:
    bundle.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]
    out = sh("ulimit -n; ulimit -Hn; grep 'Max open files' /proc/self/limits").stdout
    lines = out.splitlines()
    assert lines[:2] == ["123", "456"]
    assert lines[2].split()[3:5] == ["123", "456"]


def test_several_rlimits(bundle: Bundle, sh: Sh) -> None:
    bundle.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600},
    ]
    limits = sh("cat /proc/self/limits").stdout
    rows = {line[:26].strip(): line[26:].split() for line in limits.splitlines()[1:]}
    assert rows["Max open files"][:2] == ["100", "200"]
    assert rows["Max core file size"][:2] == ["0", "4096"]
    assert rows["Max processes"][:2] == ["500", "600"]


def test_default_capabilities(bundle: Bundle, sh: Sh) -> None:
    caps = bundle.process["capabilities"]
    status = proc_status(sh("cat /proc/self/status").stdout)
    expected = cap_mask(caps["bounding"])
    assert int(status["CapBnd"], 16) == expected
    assert int(status["CapPrm"], 16) == cap_mask(caps["permitted"]) == expected
    assert int(status["CapEff"], 16) == cap_mask(caps["effective"]) == expected
    assert int(status["CapInh"], 16) == 0
    # the default config asks for ambient capabilities that are not inheritable: runc skips them
    assert int(status["CapAmb"], 16) == 0


def test_capabilities_root(bundle: Bundle, sh: Sh) -> None:
    bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN", "CAP_SETUID"]
    inheritable = ["CAP_NET_RAW", "CAP_KILL"]
    ambient = ["CAP_NET_RAW"]
    bundle.process["capabilities"] = {
        "bounding": bounding,
        "effective": bounding,
        "permitted": bounding,
        "inheritable": inheritable,
        "ambient": ambient,
    }
    status = proc_status(sh("cat /proc/self/status").stdout)
    assert int(status["CapBnd"], 16) == cap_mask(bounding)
    assert int(status["CapPrm"], 16) == cap_mask(bounding)
    assert int(status["CapEff"], 16) == cap_mask(bounding)
    assert int(status["CapInh"], 16) == cap_mask(inheritable)
    assert int(status["CapAmb"], 16) == cap_mask(ambient)


def test_capabilities_non_root(bundle: Bundle, sh: Sh) -> None:
    # a non-root process keeps across execve only what is ambient
    kept = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
    bounding = [*kept, "CAP_KILL"]
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    bundle.process["capabilities"] = {
        "bounding": bounding,
        "effective": kept,
        "permitted": kept,
        "inheritable": kept,
        "ambient": kept,
    }
    status = proc_status(sh("cat /proc/self/status").stdout)
    assert int(status["CapBnd"], 16) == cap_mask(bounding)
    for key in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(status[key], 16) == cap_mask(kept), key


def test_no_capabilities(bundle: Bundle, sh: Sh) -> None:
    bundle.process["capabilities"] = {}
    status = proc_status(sh("cat /proc/self/status").stdout)
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[key], 16) == 0, key


@pytest.mark.parametrize("flag", [True, False])
def test_no_new_privileges(bundle: Bundle, sh: Sh, flag: bool) -> None:
    bundle.process["noNewPrivileges"] = flag
    status = proc_status(sh("cat /proc/self/status").stdout)
    assert status["NoNewPrivs"] == ("1" if flag else "0")


def test_no_host_fds_leak(bundle: Bundle, sh: Sh, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.write_text("x")
    fd = os.open(extra, os.O_RDONLY)
    try:
        # the shell is pid 1; its fds are what the runtime handed over (`; true` keeps it alive)
        out = sh("ls /proc/$$/fd; true", pass_fds=(fd,)).stdout
    finally:
        os.close(fd)
    assert sorted(out.split(), key=int) == ["0", "1", "2"]


def test_preserve_fds(bundle: Bundle, sh: Sh, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.write_text("preserved content\n")
    fd = os.open(extra, os.O_RDONLY)

    def as_fd_3() -> None:
        os.dup2(fd, 3)
        os.set_inheritable(3, True)

    try:
        out = sh(
            "ls /proc/$$/fd; cat <&3",
            "--preserve-fds",
            "1",
            preexec_fn=as_fd_3,
            close_fds=False,
        ).stdout
    finally:
        os.close(fd)
    lines = out.splitlines()
    assert sorted(lines[:-1], key=int) == ["0", "1", "2", "3"]
    assert lines[-1] == "preserved content"


def test_stdio_is_inherited(sh: Sh) -> None:
    proc = sh("cat; echo to-err >&2", input="from stdin\n")
    assert proc.stdout == "from stdin\n"
    assert proc.stderr == "to-err\n"


# --- namespaces ----------------------------------------------------------------------


def test_new_namespaces(sh: Sh) -> None:
    kinds = ["pid", "net", "ipc", "uts", "mnt", "cgroup", "user"]
    out = sh("; ".join(f"readlink /proc/1/ns/{k}" for k in kinds)).stdout.split()
    inside = dict(zip(kinds, out, strict=True))
    host = {k: os.readlink(f"/proc/self/ns/{k}") for k in kinds}
    for kind in ("pid", "net", "ipc", "uts", "mnt"):
        assert inside[kind] != host[kind], kind
    # not asked for by the config
    assert inside["user"] == host["user"]
    assert inside["cgroup"] == host["cgroup"]


def test_loopback_up(sh: Sh) -> None:
    out = sh("ls /sys/class/net; cat /sys/class/net/lo/flags; ip link show lo").stdout
    lines = out.splitlines()
    assert lines[0] == "lo"  # a new network namespace: nothing of the host's
    assert int(lines[1], 16) & 0x1, "IFF_UP not set on lo"
    assert "UP" in lines[2].split("<", 1)[1].split(">", 1)[0].split(",")


def test_loopback_usable(sh: Sh) -> None:
    # a real round trip over 127.0.0.1 (nc from busybox)
    out = sh("nc -l -p 5555 127.0.0.1 >/dev/shm/got & "
             "for i in $(seq 50); do echo ping | nc 127.0.0.1 5555 2>/dev/null && break; "
             "sleep 0.1; done; wait; cat /dev/shm/got").stdout
    assert out == "ping\n"


# --- the filesystem ------------------------------------------------------------------


def test_host_tmp_not_visible(sh: Sh, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"pyrunc-host-marker-{os.getpid()}-{tmp_path.name}"
    marker.write_text("host")
    try:
        out = sh(f"ls -a /tmp; test -e {marker} || echo absent; ls /").stdout
    finally:
        marker.unlink()
    tmp_listing, rest = out.split("absent\n")
    assert sorted(tmp_listing.split()) == [".", ".."]
    assert "work" not in rest.split()


def test_root_readonly(sh: Sh) -> None:
    proc = sh("touch /newfile", check=False)
    assert proc.returncode == 1
    assert "Read-only file system" in proc.stderr
    assert " / " in sh("grep ' / ' /proc/self/mounts").stdout
    assert sh("grep ' / ' /proc/self/mounts").stdout.split()[3].split(",")[0] == "ro"


def test_root_writable_when_not_readonly(bundle: Bundle, sh: Sh) -> None:
    bundle.config["root"]["readonly"] = False
    sh("echo inside > /newfile")
    assert (bundle.rootfs / "newfile").read_text() == "inside\n"


def test_bind_mount_rw(bundle: Bundle, sh: Sh, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "hello.txt").write_text("from host\n")
    bundle.add_mount("/mnt/share", "bind", str(share), ["rbind", "rw"])
    out = sh("cat /mnt/share/hello.txt; echo from container > /mnt/share/back.txt").stdout
    assert out == "from host\n"
    assert (share / "back.txt").read_text() == "from container\n"


def test_bind_mount_ro(bundle: Bundle, sh: Sh, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "hello.txt").write_text("from host\n")
    bundle.add_mount("/mnt/share", "bind", str(share), ["rbind", "ro"])
    proc = sh(
        "cat /mnt/share/hello.txt; touch /mnt/share/new; echo status=$?; "
        "grep ' /mnt/share ' /proc/self/mounts",
    )
    lines = proc.stdout.splitlines()
    assert lines[0] == "from host"
    assert lines[1] == "status=1"
    assert "Read-only file system" in proc.stderr
    assert lines[2].split()[3].split(",")[0] == "ro"
    assert sorted(os.listdir(share)) == ["hello.txt"]
    # the host's side stays writable
    (share / "host-can-write").write_text("")


def test_bind_mount_file(bundle: Bundle, sh: Sh, tmp_path: Path) -> None:
    src = tmp_path / "single.conf"
    src.write_text("key=value\n")
    bundle.add_mount("/etc/single.conf", "bind", str(src), ["bind", "ro"])
    assert sh("cat /etc/single.conf").stdout == "key=value\n"


def test_tmpfs_mount_options(bundle: Bundle, sh: Sh) -> None:
    bundle.add_mount(
        "/scratch", "tmpfs", "tmpfs", ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"]
    )
    out = sh("grep ' /scratch ' /proc/self/mounts; stat -c %a /scratch; "
             "echo data > /scratch/f && cat /scratch/f").stdout
    lines = out.splitlines()
    fields = lines[0].split()
    assert fields[:3] == ["tmpfs", "/scratch", "tmpfs"]
    options = set(fields[3].split(","))
    assert {"rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=1770"} <= options
    assert lines[1:] == ["1770", "data"]


def test_no_mounts_left_on_host(bundle: Bundle, sh: Sh, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    bundle.add_mount("/mnt/share", "bind", str(share), ["rbind", "ro"])
    bundle.add_mount("/scratch", "tmpfs", "tmpfs", ["size=1m"])
    before = host_mounts()
    sh("ls /mnt/share /scratch >/dev/null")
    assert new_mounts_under(before, tmp_path) == []
    assert not [m for m in host_mounts() if str(tmp_path) in m]


@pytest.mark.parametrize("path", ["/proc/kcore", "/proc/keys", "/proc/timer_list"])
def test_masked_files_read_empty(sh: Sh, path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this host")
    out = sh(f"wc -c < {path}; cat {path} > /dev/null && echo readable").stdout.split()
    assert out == ["0", "readable"]


@pytest.mark.parametrize("path", ["/sys/firmware", "/proc/acpi", "/proc/scsi"])
def test_masked_directories_are_empty(sh: Sh, path: str) -> None:
    if not os.path.isdir(path):
        pytest.skip(f"{path} does not exist on this host")
    out = sh(f"ls -A {path} | wc -l; touch {path}/x; echo status=$?").stdout.split()
    assert out == ["0", "status=1"]


def test_configured_masked_paths(bundle: Bundle, sh: Sh) -> None:
    bundle.config["linux"]["maskedPaths"] = ["/etc/passwd", "/usr", "/does/not/exist"]
    out = sh("wc -c < /etc/passwd; ls -A /usr | wc -l; cat /etc/group").stdout.split()
    assert out == ["0", "0", "root:x:0:", "nobody:x:65534:"]


@pytest.mark.parametrize("path", ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"])
def test_readonly_paths(sh: Sh, path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this host")
    out = sh(f"grep ' {path} ' /proc/self/mounts").stdout.split()
    assert out[1] == path
    assert out[3].split(",")[0] == "ro"


def test_proc_sys_not_writable(sh: Sh) -> None:
    proc = sh("echo 1 > /proc/sys/kernel/domainname; echo status=$?")
    assert proc.stdout == "status=1\n"
    assert "Read-only file system" in proc.stderr


def test_configured_readonly_path(bundle: Bundle, sh: Sh) -> None:
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["readonlyPaths"] = ["/var"]
    proc = sh("touch /var/x; echo var=$?; touch /y; echo root=$?")
    assert proc.stdout == "var=1\nroot=0\n"
    assert "Read-only file system" in proc.stderr
    assert not (bundle.rootfs / "var" / "x").exists()
    assert (bundle.rootfs / "y").exists()


@pytest.mark.parametrize(
    "device,numbers",
    [
        ("/dev/null", "1:3"),
        ("/dev/zero", "1:5"),
        ("/dev/full", "1:7"),
        ("/dev/random", "1:8"),
        ("/dev/urandom", "1:9"),
        ("/dev/tty", "5:0"),
    ],
)
def test_default_devices(sh: Sh, device: str, numbers: str) -> None:
    out = sh(f"stat -c '%F|%t:%T|%a' {device}").stdout.strip()
    kind, nums, mode = out.split("|")
    assert kind == "character special file"
    major, minor = (int(x, 16) for x in nums.split(":"))
    assert f"{major}:{minor}" == numbers
    assert mode == "666"


def test_default_devices_work(sh: Sh) -> None:
    out = sh("echo gone > /dev/null; head -c 4 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c;"
             " echo x > /dev/full; echo full=$?").stdout.split()
    assert out == ["4", "8", "full=1"]


def test_dev_symlinks(sh: Sh) -> None:
    out = sh("for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done").stdout.split()
    assert out == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2",
                   "pts/ptmx"]


def test_host_devices_not_visible(sh: Sh) -> None:
    names = set(sh("ls /dev").stdout.split())
    assert not {"vda", "kmsg", "mem", "console"} & names


def test_configured_device(bundle: Bundle, sh: Sh) -> None:
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640,
         "uid": 0, "gid": 8}
    ]
    out = sh("stat -c '%F|%t:%T|%a|%u:%g' /dev/mydev; head -c 3 /dev/mydev | wc -c").stdout
    assert out.splitlines() == ["character special file|1:5|640|0:8", "3"]
