"""The suite's toolbox: drive a runtime binary through its CLI, build bundles, read the checker.

Everything here talks to the runtime only through its command line (`--root DIR create/start/
state/kill/delete`), so the same tests run against pyrunc, runc and crun. The container side is
the static C checker (checker/checker.c): the host derives a list of expectations from the
config.json it writes, the checker compares them with what it sees and writes one JSON line per
check into a bind-mounted directory.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SUITE = HERE.parent
CHECKER_SRC = SUITE / "checker" / "checker.c"
SPEC_DIR = Path(os.environ.get("OCI_SPEC_DIR", "/work/shared/runtime-spec"))
SCHEMA_DIR = SPEC_DIR / "schema"

IO_IN_CONTAINER = "/conformance/io"
CHECKER_IN_CONTAINER = "/conformance/checker"
NS_TYPES = {  # config name -> /proc/self/ns name
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
CAPS = [  # capability(7) numbers are the list index
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
    "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
]  # fmt: skip
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
DEFAULT_DEVICES = [  # config-linux.md#default-devices: path, major, minor
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
]
DEV_SYMLINKS = [  # runtime-linux.md#dev-symbolic-links
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
]
# mount(8) flag options and their opposites, as mountinfo shows them per mount
MOUNT_FLAG_PAIRS = {
    "ro": "rw",
    "nosuid": "suid",
    "nodev": "dev",
    "noexec": "exec",
    "noatime": "atime",
    "nodiratime": "diratime",
}


def fold_mount_flags(options: list[str]) -> list[str]:
    """The per-mount flags mount(8) would end up with, as checker tokens ("!x": x is unset)."""
    state = {flag: False for flag in MOUNT_FLAG_PAIRS}
    mentioned = set()
    for opt in options:
        for flag, opposite in MOUNT_FLAG_PAIRS.items():
            if opt == flag:
                state[flag] = True
                mentioned.add(flag)
            elif opt == opposite:
                state[flag] = False
                mentioned.add(flag)
    out = ["ro" if state["ro"] else "rw"]
    for flag in MOUNT_FLAG_PAIRS:
        if flag != "ro" and flag in mentioned:
            out.append(flag if state[flag] else "!" + flag)
    return out


class RuntimeError_(Exception):
    """A runtime command that was expected to succeed failed."""


# --- the host -----------------------------------------------------------------------------


def ns_inode(path: str) -> int:
    """The inode of a namespace file (what `readlink /proc/self/ns/X` shows in brackets)."""
    return os.stat(path).st_ino


def read_status(field_name: str, pid: str = "self") -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == field_name:
            return value.strip()
    raise KeyError(field_name)


@dataclass
class Host:
    """What the test process (the runtime's caller) looks like: the runtime namespaces."""

    ns: dict[str, int]
    cap_bounding: int
    cap_last: int
    oom_score_adj: int
    hybrid_cgroups: bool

    @classmethod
    def probe(cls) -> Host:
        ns = {}
        for conf, proc in NS_TYPES.items():
            try:
                ns[conf] = ns_inode(f"/proc/self/ns/{proc}")
            except FileNotFoundError:
                pass
        return cls(
            ns=ns,
            cap_bounding=int(read_status("CapBnd"), 16),
            cap_last=int(Path("/proc/sys/kernel/cap_last_cap").read_text()),
            oom_score_adj=int(Path("/proc/self/oom_score_adj").read_text()),
            hybrid_cgroups=Path("/sys/fs/cgroup/memory").is_dir(),
        )

    def has_cap(self, name: str) -> bool:
        return bool(self.cap_bounding & (1 << CAPS.index(name)))


def cap_mask(names: Iterable[str]) -> int:
    mask = 0
    for name in names:
        if name in CAPS:
            mask |= 1 << CAPS.index(name)
    return mask


def expected_caps(caps: dict[str, list[str]], uid: int, nnp: bool) -> dict[str, int]:
    """The five sets the process has after execve(2) of the (capability-less) checker.

    capabilities(7): the runtime sets the configured sets, then execve transforms them. For
    uid 0 the file sets count as full, so permitted = effective = bounding | inheritable |
    ambient (limited to the old permitted set under no_new_privs); for any other uid only the
    ambient set survives into permitted and effective. Ambient capabilities can only be raised
    when they are permitted and inheritable.
    """
    bounding = cap_mask(caps.get("bounding", []))
    permitted = cap_mask(caps.get("permitted", []))
    inheritable = cap_mask(caps.get("inheritable", []))
    ambient = cap_mask(caps.get("ambient", [])) & permitted & inheritable
    if uid == 0:
        after = bounding | inheritable
        if nnp:
            after &= permitted
        after |= ambient
    else:
        after = ambient
    return {
        "bounding": bounding,
        "permitted": after,
        "effective": after,
        "inheritable": inheritable,
        "ambient": ambient,
    }


def build_checker(dest: Path) -> Path:
    """gcc -static -O2 checker.c: built at test time, so nothing binary is kept in the repo."""
    out = dest / "checker"
    proc = subprocess.run(
        ["gcc", "-static", "-O2", "-o", str(out), str(CHECKER_SRC)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError_(f"building the checker failed:\n{proc.stderr}")
    return out


def build_rootfs(dest: Path, checker: Path) -> Path:
    """A busybox rootfs (Debian's busybox-static) with the checker and the suite's mount points."""
    rootfs = dest / "rootfs"
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "conformance/io", "mnt"]:
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    for d in ["nest", "a", "b", "c", "opt1", "opt2", "prop", "idmap", "order", "kmsg-dir"]:
        (rootfs / "mnt" / d).mkdir(exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in ["sh", "cat", "echo", "sleep", "ls", "true", "false", "mkdir", "hostname"]:
        (rootfs / "bin" / applet).symlink_to("busybox")
    shutil.copy2(checker, rootfs / "conformance" / "checker")
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "conformance" / "in-rootfs-only").write_text("rootfs\n")
    return rootfs


def ensure_hugetlb_v1() -> str:
    """Mount hugetlb as a v1 hierarchy at /sys/fs/cgroup/hugetlb when it is free.

    crun 1.8 refuses a hybrid host ("cgroups in hybrid mode not supported, drop all controllers
    from cgroupv2") while any controller is left on the cgroup2 mount, and on this kind of host
    hugetlb is the one controller no v1 hierarchy holds. Returns a note saying what was done.
    """
    target = Path("/sys/fs/cgroup/hugetlb")
    if os.path.ismount(target):
        return ""
    unified = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if not unified.exists() or "hugetlb" not in unified.read_text().split():
        return ""
    subtree = Path("/sys/fs/cgroup/unified/cgroup.subtree_control")
    if "hugetlb" in subtree.read_text().split():
        return "hugetlb is in use on the cgroup2 hierarchy: left alone (crun will refuse this host)"
    target.mkdir(exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", str(target)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        return f"mounting hugetlb at {target} failed: {proc.stderr.strip()}"
    return f"set-up: mounted the free hugetlb controller as cgroup v1 at {target}"


# --- running commands ---------------------------------------------------------------------


@dataclass
class Result:
    """A finished runtime command."""

    args: list[str]
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:
        cmd = " ".join(self.args)
        return f"`{cmd}` exited {self.rc}; stderr: {self.err.strip()[:800]!r}"


def run_cmd(args: list[str], timeout: float = 30, cwd: str | None = None, **kwargs: Any) -> Result:
    """Run with stdout/stderr in files: a detached container keeps its stdio open for long."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.run(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout,
                cwd=cwd, **kwargs,
            )  # fmt: skip
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = -999
        out.seek(0)
        err.seek(0)
        text_err = err.read().decode(errors="replace")
        if rc == -999:
            text_err += f"\n[suite] timed out after {timeout}s"
        return Result(args, rc, out.read().decode(errors="replace"), text_err)


class Runtime:
    """One runtime binary and one state root; every call is a CLI call."""

    def __init__(self, name: str, binary: str, root: Path) -> None:
        self.name = name
        self.binary = binary
        self.root = root
        self.preexec_fn: Callable[[], None] | None = None  # runs in the runtime's process
        self.prefix: list[str] = []  # e.g. nsenter into another caller's namespaces

    def __call__(self, *args: str, timeout: float = 30, cwd: str | None = None) -> Result:
        return run_cmd(
            [*self.prefix, self.binary, "--root", str(self.root), *args],
            timeout=timeout,
            cwd=cwd,
            preexec_fn=self.preexec_fn,
        )

    def state(self, cid: str) -> dict[str, Any]:
        res = self("state", cid)
        if not res.ok:
            raise RuntimeError_(str(res))
        return json.loads(res.out)

    def status(self, cid: str) -> str | None:
        """The status, or None if the runtime says there is no such container."""
        res = self("state", cid)
        if not res.ok:
            return None
        return json.loads(res.out).get("status")


# --- bundles and expectations -------------------------------------------------------------


def base_config(
    oci_version: str, rootfs: Path, io_dir: Path, cgroups_path: str, hostname: str
) -> dict[str, Any]:
    """The suite's own baseline: what `runc spec` gives, minus the terminal, plus the io mount."""
    return {
        "ociVersion": oci_version,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [CHECKER_IN_CONTAINER, "sleep"],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": IO_IN_CONTAINER,
                "type": "none",
                "source": str(io_dir),
                "options": ["bind", "rw"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "cgroupsPath": cgroups_path,
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    }  # fmt: skip


def pct(value: str) -> str:
    """The checker's argument encoding: a space-separated line, %XX for the awkward bytes."""
    out = []
    for ch in value:
        if ch in " %\n\t\r" or ord(ch) < 0x20:
            out.append(f"%{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out) if out else "%00"  # decodes to an empty C string


class Expect:
    """The expectations file: (tag, check line) pairs; tags let a test pick its checks."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, tag: str, check: str, *args: Any) -> Expect:
        line = " ".join([check, *(pct(str(a)) for a in args)])
        self.items.append((tag, line))
        return self

    def text(self) -> str:
        return "".join(f"{line}\n" for _, line in self.items)


@dataclass
class Check:
    tag: str
    line: str
    status: str
    detail: str


@dataclass
class CheckResults:
    """What the checker reported, by tag."""

    checks: list[Check]
    raw: str = ""
    problem: str = ""

    def select(self, prefix: str) -> list[Check]:
        return [c for c in self.checks if c.tag == prefix or c.tag.startswith(prefix + ":")]

    def failures(self, prefix: str) -> list[str]:
        if self.problem:
            return [self.problem]
        chosen = self.select(prefix)
        if not chosen:
            return [f"no checks tagged {prefix!r} ran (raw output: {self.raw[:300]!r})"]
        return [f"{c.line}: {c.detail}" for c in chosen if c.status == "fail"]


def _map_words(mappings: list[dict[str, int]]) -> list[str]:
    """An id mapping as /proc/self/uid_map shows it, squeezed: inside outside size ..."""
    return [str(m[k]) for m in mappings for k in ("containerID", "hostID", "size")]


def derive_expectations(config: dict[str, Any], host: Host, extra: Expect | None = None) -> Expect:
    """Every check the config implies, tagged by the field it comes from."""
    e = Expect()
    proc = config.get("process", {})
    linux = config.get("linux", {})
    ns_types = {n["type"]: n for n in linux.get("namespaces", [])}
    if "hostname" in config:
        e.add("hostname", "hostname", config["hostname"])
    if "domainname" in config:
        e.add("domainname", "domainname", config["domainname"])
    if proc:
        e.add("cwd", "cwd", proc.get("cwd", "/"))
        user = proc.get("user", {})
        e.add("user:uid", "uid", user.get("uid", 0))
        e.add("user:gid", "gid", user.get("gid", 0))
        if "additionalGids" in user:
            e.add("user:groups", "groups", *user["additionalGids"])
        if "umask" in user:
            e.add("user:umask", "umask", format(user["umask"], "o"))
        for var in proc.get("env", []):
            e.add(f"env:{var.partition('=')[0]}", "env", var)
        args = proc.get("args", [])
        e.add("args", "argc", len(args))
        for i, a in enumerate(args):
            e.add("args", "argv", i, a)
        for rl in proc.get("rlimits", []):
            e.add(f"rlimit:{rl['type']}", "rlimit", rl["type"], rl["soft"], rl["hard"])
        caps = proc.get("capabilities")
        if caps is not None:
            want = expected_caps(caps, int(user.get("uid", 0)), bool(proc.get("noNewPrivileges")))
            for cset, mask in want.items():
                e.add(f"caps:{cset}", "cap", cset, format(mask, "016x"))
        e.add("nnp", "nnp", "1" if proc.get("noNewPrivileges") else "0")
        if "oomScoreAdj" in proc:
            e.add("oom", "oom_score_adj", proc["oomScoreAdj"])
    for conf_type in NS_TYPES:
        if conf_type not in host.ns:
            continue
        entry = ns_types.get(conf_type)
        if entry is None:
            e.add(f"ns:{conf_type}", "ns", NS_TYPES[conf_type], "same", host.ns[conf_type])
        elif entry.get("path"):
            e.add(f"ns:{conf_type}", "ns", NS_TYPES[conf_type], "same", ns_inode(entry["path"]))
        else:
            e.add(f"ns:{conf_type}", "ns", NS_TYPES[conf_type], "differ", host.ns[conf_type])
    root = config.get("root", {})
    if root.get("readonly"):
        e.add("root:readonly", "readonly", "/")
    else:
        e.add("root:readonly", "writable", "/")
    for m in config.get("mounts", []):
        dest = m["destination"] if m["destination"].startswith("/") else "/" + m["destination"]
        opts = m.get("options", [])
        fstype = m.get("type") or "*"
        if "bind" in opts or "rbind" in opts:
            fstype = "*"
        e.add(f"mount:{dest}", "mount", dest, fstype, *fold_mount_flags(opts))
    for path in linux.get("maskedPaths", []):
        e.add(f"masked:{path}", "masked", path)
    for path in linux.get("readonlyPaths", []):
        e.add(f"readonlypath:{path}", "readonly", path)
    for dev in linux.get("devices", []):
        mode = format(dev["fileMode"] & 0o7777, "o") if "fileMode" in dev else "-"
        e.add(
            f"device:{dev['path']}", "device", dev["path"], dev["type"],
            dev.get("major", 0), dev.get("minor", 0), mode, dev.get("uid", "-"),
            dev.get("gid", "-"),
        )  # fmt: skip
    mounts_dev = any(m["destination"] == "/dev" for m in config.get("mounts", []))
    if mounts_dev:
        for path, major, minor in DEFAULT_DEVICES:
            e.add(f"default-device:{path}", "device", path, "c", major, minor)
        e.add("default-device:/dev/ptmx", "exists", "/dev/ptmx")
    for path, target in DEV_SYMLINKS:
        e.add(f"dev-symlink:{path}", "symlink", path, target)
    for key, value in linux.get("sysctl", {}).items():
        e.add(f"sysctl:{key}", "sysctl", key, value)
    if "seccomp" in linux:
        e.add("seccomp", "seccomp", "2")
    if "uidMappings" in linux:
        e.add("userns:uidmap", "uidmap", *_map_words(linux["uidMappings"]))
    if "gidMappings" in linux:
        e.add("userns:gidmap", "gidmap", *_map_words(linux["gidMappings"]))
    if extra:
        e.items.extend(extra.items)
    return e


# --- one test's containers ----------------------------------------------------------------

_counter = itertools.count(1)


@dataclass
class Session:
    """Per-run facts shared by all tests: the runtime, the checker, the template rootfs."""

    runtime_name: str
    binary: str
    workdir: Path
    checker: Path
    rootfs: Path
    host: Host
    token: str
    oci_version: str = "1.3.0"
    notes: list[str] = field(default_factory=list)

    def unique(self, what: str) -> str:
        return f"oc{self.token}-{self.runtime_name}-{what}-{next(_counter)}"


class Case:
    """One test's bundle(s), state root and containers; cleans up everything it created."""

    def __init__(self, session: Session, name: str) -> None:
        self.session = session
        self.host = session.host
        self.name = name[:40].replace("[", "-").replace("]", "").replace("/", "-")
        self.dir = Path(tempfile.mkdtemp(prefix=f"oc-{self.name}-", dir=session.workdir))
        self.dir.chmod(0o755)
        self.root = self.dir / "state"
        self.root.mkdir(mode=0o700)
        self.rt = Runtime(session.runtime_name, session.binary, self.root)
        self.ids: list[str] = []
        self.pids: list[int] = []
        self.pid_of: dict[str, int] = {}
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.cleanups: list[Callable[[], None]] = []
        self.io = self.dir / "io"
        self.io.mkdir()
        self.io.chmod(0o777)
        self.bundle = self.dir / "bundle"
        self.bundle.mkdir()
        self.cgroups_path = f"/oci-conformance/{session.unique('cg')}"
        self.config = base_config(
            session.oci_version, session.rootfs, self.io, self.cgroups_path, "oci-conformance"
        )

    # bundles
    def new_id(self) -> str:
        cid = self.session.unique("c")
        self.ids.append(cid)
        return cid

    def write_config(
        self, config: dict[str, Any] | None = None, bundle: Path | None = None
    ) -> Path:
        bundle = bundle or self.bundle
        bundle.mkdir(parents=True, exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(config or self.config, indent=2))
        return bundle

    def private_rootfs(self) -> Path:
        """A copy of the template rootfs this test may change."""
        dest = self.dir / "rootfs"
        if not dest.exists():
            subprocess.run(["cp", "-a", str(self.session.rootfs), str(dest)], check=True)
        self.config["root"]["path"] = str(dest)
        return dest

    def set_args(self, *args: str) -> None:
        self.config["process"]["args"] = list(args)

    def add_mount(self, dest: str, type_: str | None, source: str, options: list[str]) -> None:
        m: dict[str, Any] = {"destination": dest, "source": source, "options": options}
        if type_ is not None:
            m["type"] = type_
        self.config["mounts"].append(m)

    # lifecycle
    def create(self, cid: str | None = None, bundle: Path | None = None, write: bool = True,
               extra: list[str] | None = None) -> tuple[str, Result]:  # fmt: skip
        cid = cid or self.new_id()
        if cid not in self.ids:
            self.ids.append(cid)
        self.deleted.discard(cid)
        if write:
            bundle = self.write_config(bundle=bundle)
        bundle = bundle or self.bundle
        pid_file = self.dir / f"{cid}.pid"
        res = self.rt("create", *(extra or []), "--pid-file", str(pid_file), "--bundle",
                      str(bundle), cid)  # fmt: skip
        if res.ok:
            try:
                pid = int(pid_file.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            self.created.add(cid)
            if pid:
                self.pids.append(pid)
                self.pid_of[cid] = pid
        return cid, res

    def delete(self, cid: str, force: bool = False) -> Result:
        res = self.rt("delete", *(["--force"] if force else []), cid)
        if res.ok:
            self.deleted.add(cid)
        return res

    def must_create(self, cid: str | None = None, **kwargs: Any) -> str:
        cid, res = self.create(cid, **kwargs)
        if not res.ok:
            raise RuntimeError_(f"create failed: {res}")
        return cid

    def must_start(self, cid: str) -> None:
        res = self.rt("start", cid)
        if not res.ok:
            raise RuntimeError_(f"start failed: {res}")

    def wait_stopped(self, cid: str, timeout: float = 15) -> str | None:
        """Wait until the runtime reports the container stopped; returns the last status."""
        deadline = time.monotonic() + timeout
        pid = self.pid_of.get(cid)
        if not pid:
            try:
                pid = int(self.rt.state(cid).get("pid") or 0)
            except (RuntimeError_, ValueError):
                pass
        if pid:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                finally:
                    os.close(fd)
        status = self.rt.status(cid)
        while status not in ("stopped", None) and time.monotonic() < deadline:
            time.sleep(0.05)
            status = self.rt.status(cid)
        return status

    def run_to_completion(self, cid: str | None = None, timeout: float = 15) -> str:
        cid = self.must_create(cid)
        self.must_start(cid)
        status = self.wait_stopped(cid, timeout)
        if status != "stopped":
            raise RuntimeError_(f"container {cid} did not stop (status {status})")
        return cid

    def check(
        self, extra: Expect | None = None, derive: bool = True, timeout: float = 15
    ) -> CheckResults:
        """Run the checker as the container process with the expectations of self.config."""
        self.config["process"]["args"] = [
            CHECKER_IN_CONTAINER, "check", f"{IO_IN_CONTAINER}/expect", "--out",
            f"{IO_IN_CONTAINER}/result.json",
        ]  # fmt: skip
        expect = (
            derive_expectations(self.config, self.host, extra) if derive else (extra or Expect())
        )
        (self.io / "expect").write_text(expect.text())
        result_file = self.io / "result.json"
        if result_file.exists():
            result_file.unlink()
        cid = self.new_id()
        _, res = self.create(cid)
        if not res.ok:
            return CheckResults([], problem=f"create failed: {res}")
        start = self.rt("start", cid)
        if not start.ok:
            return CheckResults([], problem=f"start failed: {start}")
        self.wait_stopped(cid, timeout)
        self.delete(cid, force=True)
        return self.read_results(expect)

    def read_results(self, expect: Expect) -> CheckResults:
        path = self.io / "result.json"
        raw = path.read_text() if path.exists() else ""
        lines = [json.loads(x) for x in raw.splitlines() if x.startswith("{")]
        checks = []
        for (tag, line), res in zip(expect.items, lines, strict=False):
            checks.append(Check(tag, line, res["status"], res["detail"]))
        problem = "" if lines else f"the checker wrote no results ({path})"
        return CheckResults(checks, raw, problem)

    def cleanup(self) -> list[str]:
        """delete --force everything; SIGKILL what survives; report leftovers."""
        problems = []
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - cleanup goes on
                problems.append(f"cleanup step failed: {exc}")
        for cid in self.ids:
            if cid in self.deleted:
                continue
            res = self.rt("delete", "--force", cid)
            # a create that failed left nothing (test_failed_create_leaves_nothing checks that)
            if not res.ok and cid in self.created and self.rt.status(cid) is not None:
                problems.append(f"delete --force {cid}: {res}")
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


# --- helpers used by several test modules -------------------------------------------------


def assert_checks(results: CheckResults, *tags: str) -> None:
    """Fail with every failed check of these tags (or the reason the checker did not run)."""
    failures = list(dict.fromkeys(f for tag in tags for f in results.failures(tag)))
    assert not failures, "\n".join(failures)


def read_hook_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            try:
                record["state"] = json.loads(record.get("stdin") or "null")
            except ValueError:
                record["state"] = None
            out.append(record)
    return out


def hook(session_checker: Path, name: str, log: Path, *extra: str, path: str | None = None,
         timeout: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A hook entry that runs the checker in hook mode, logging to LOG."""
    entry: dict[str, Any] = {
        "path": path or str(session_checker),
        "args": ["checker", "hook", name, str(log), *extra],
        "env": ["HOOK_NAME=" + name],
    }
    if timeout is not None:
        entry["timeout"] = timeout
    return entry


def cgroup_path_of(pid: int, controller: str) -> str | None:
    """The cgroup path of a process for a v1 controller ("" means the v2 hierarchy)."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        if (controller == "" and ctrls == "") or (controller and controller in ctrls.split(",")):
            return path
    return None


def cgroup_dir(controller: str, path: str) -> Path:
    base = (
        Path("/sys/fs/cgroup/unified") if controller == "" else Path("/sys/fs/cgroup") / controller
    )
    return base / path.lstrip("/")


class ConsoleSocket:
    """A --console-socket listener that receives and keeps the pty master (SCM_RIGHTS)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.master: int | None = None
        self.output = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        if fds:
            self.master = fds[0]
            for extra in fds[1:]:
                os.close(extra)
            while True:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    break
                if not data:
                    break
                self.output += data

    def close(self) -> None:
        self.sock.close()
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass


def deep_copy(config: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(config)


def schema_validator(name: str) -> Any:
    """A draft-04 validator for one of the spec's schema files, with its relative $refs resolved."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = []
    for f in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(f.read_text())
        resources.append((f.as_uri(), Resource.from_contents(contents, DRAFT4)))
    registry = Registry().with_resources(resources)
    schema = json.loads((SCHEMA_DIR / name).read_text())
    schema["id"] = (SCHEMA_DIR / name).as_uri()
    return jsonschema.Draft4Validator(schema, registry=registry)


def schema_errors(name: str, document: Any) -> list[str]:
    validator = schema_validator(name)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def requirement_ids() -> dict[str, dict[str, Any]]:
    """requirements.json by id (extract.py's output)."""
    doc = json.loads((SUITE / "requirements.json").read_text())
    return {r["id"]: r for r in doc["requirements"]}


def mount_option_req(option: str) -> str:
    """The id of the `config.md` mount-options table row that makes OPTION a MUST."""
    for rid, r in requirement_ids().items():
        if r["sentence"].startswith(f"`{option}` | MUST"):
            return rid
    raise KeyError(option)


def umount_under(path: Path) -> int:
    """Lazily unmount every mount at or below PATH, deepest first (`umount -R` needs PATH
    itself to be a mount point). Returns how many were unmounted."""
    prefix = str(path).rstrip("/")
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    done = 0
    for point in sorted(set(points), key=len, reverse=True):
        if subprocess.run(["umount", "-l", point], capture_output=True).returncode == 0:
            done += 1
    return done


def host_mount(*args: str) -> None:
    """mount(8) on the host, for test fixtures (shared sources, submounts)."""
    proc = subprocess.run(["mount", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError_(f"mount {' '.join(args)}: {proc.stderr.strip()}")
