"""A recording fake of `pyrunc.syscall.Syscall`: a small in-memory host (files, directories,
cgroup hierarchies, processes) that records every call, for tests that run without root.

Only what cannot exist in an unprivileged test is faked: the cgroup filesystems (their files
appear on mkdir, cgroup.procs lists the processes in the directory, the freezers freeze),
processes with their /proc entries, pidfds and signals, mounts. Every call is appended to
`calls` as a tuple `(method, *args)`; `fail()` scripts an OSError for a later call.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from pyrunc.syscall import Syscall

SIGKILL = 9
SIGTERM = 15


@dataclass
class Hierarchy:
    """A mounted cgroup hierarchy: `key` as /proc/<pid>/cgroup names it ("" for cgroup2), and
    the files each directory gets on mkdir (name -> initial content)."""

    mount: str
    key: str
    files: dict[str, str]

    @property
    def v2(self) -> bool:
        return self.key == ""


@dataclass
class OpenFile:
    """An fd of a file the fake opened: what `open` resolved, how, and the offset."""

    path: str
    flags: int
    pos: int = 0


# the host's namespaces: /proc/self/ns/<name> -> "<name>:[inode]", as nsfs names them
HOST_NS = {name: f"{name}:[{4026531834 + n}]" for n, name in enumerate(
    ("time", "cgroup", "pid", "user", "uts", "ipc", "mnt", "net"))}
NSFS_MAGIC = 0x6E736673
# ioctl NS_GET_NSTYPE's answer (a CLONE_NEW* flag) for each nsfs name
NSFS_TYPES = {"mnt": 0x00020000, "cgroup": 0x02000000, "uts": 0x04000000, "ipc": 0x08000000,
              "user": 0x10000000, "pid": 0x20000000, "net": 0x40000000, "time": 0x00000080}
NSFS_DEV = 4


@dataclass
class Process:
    pid: int
    start_time: str
    state: str = "S"
    pid_ns: str = "pid:[4026531836]"
    ns: dict[str, str] = field(default_factory=dict)  # /proc/<pid>/ns/<name> other than pid
    dirs: set[str] = field(default_factory=set)  # the cgroup directories it is in
    dies_on: tuple[int, ...] = (SIGKILL, SIGTERM)
    pending_kill: bool = False  # SIGKILLed while v1-frozen: it dies when thawed
    signals: list[int] = field(default_factory=list)


V1_FILES = {
    "memory": {"memory.limit_in_bytes": "9223372036854771712\n",
               "memory.memsw.limit_in_bytes": "9223372036854771712\n",
               "memory.soft_limit_in_bytes": "9223372036854771712\n",
               "memory.swappiness": "60\n", "memory.oom_control": "oom_kill_disable 0\n",
               "memory.usage_in_bytes": "0\n", "memory.memsw.usage_in_bytes": "0\n",
               "memory.kmem.limit_in_bytes": "9223372036854771712\n",
               "memory.use_hierarchy": "1\n", "cgroup.event_control": ""},
    "cpu,cpuacct": {"cpu.shares": "1024\n", "cpu.cfs_quota_us": "-1\n",
                    "cpu.cfs_period_us": "100000\n", "cpu.rt_runtime_us": "0\n",
                    "cpu.rt_period_us": "1000000\n", "cpuacct.usage": "0\n"},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "pids": {"pids.max": "max\n", "pids.current": "0\n"},
    "freezer": {"freezer.state": "THAWED\n"},
    "blkio": {"blkio.weight": "500\n", "blkio.leaf_weight": "500\n",
              "blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
              "blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": ""},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm\n"},
    "name=systemd": {},
}
V2_FILES = {"cgroup.controllers": "", "cgroup.subtree_control": "", "cgroup.freeze": "0\n",
            "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.type": "domain\n",
            "memory.max": "max\n", "memory.low": "0\n", "memory.high": "max\n",
            "memory.swap.max": "max\n", "memory.current": "0\n", "memory.swap.current": "0\n",
            "memory.events": "", "cpu.weight": "100\n", "cpu.max": "max 100000\n",
            "pids.max": "max\n", "io.max": "", "io.weight": "default 100\n",
            "cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-1\n",
            "cpuset.mems.effective": "0\n"}
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")


def mountinfo_line(n: int, mount: str, fstype: str, superopts: str) -> str:
    return (f"{30 + n} 25 0:{30 + n} / {mount} rw,nosuid,nodev,noexec - "
            f"{fstype} {fstype} {superopts}")


class RecordingSyscall(Syscall):
    """The fake host. `layout()` mounts cgroups as one of this machine's kinds would."""

    def __init__(self, euid: int = 0, egid: int = 0) -> None:
        self.calls: list[tuple] = []
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = {"/", "/etc", "/proc", "/run", "/sys", "/sys/fs", "/sys/fs/cgroup",
                               "/tmp"}
        self.links: dict[str, str] = {f"/proc/self/ns/{k}": v for k, v in HOST_NS.items()}
        self.nsfiles: dict[str, str] = {}  # bind-mounted namespace files: path -> nsfs name
        self.fifos: set[str] = set()
        self.hierarchies: list[Hierarchy] = []
        self.processes: dict[int, Process] = {}
        # open fds: a pidfd's pid, an idmapped tree's source path, an open file
        self.fds: dict[int, int | str | OpenFile] = {}
        self.eventfds: dict[int, int] = {}  # an OOM eventfd's pending counter
        self.mounts: list[tuple[str, str, str, int, str]] = []
        self.euid, self.egid = euid, egid
        self.nofile = (1024, 20000)  # RLIMIT_NOFILE (soft, hard)
        self.modes: dict[str, int] = {}  # what open(O_CREAT), mkdir and chmod set
        self.writable: set[str] = set()  # what a caller other than root may write (access)
        self.locks: dict[str, dict[int, bool]] = {}  # flock: path -> {fd: exclusive}
        self.write_sizes: dict[str, list[int]] = {}  # scripted short writes, see short_writes
        self._next_fd = 100
        self._failures: dict[tuple[str, str], list[OSError]] = {}
        self.files["/proc/self/mountinfo"] = b""

    # --- scripting ----------------------------------------------------------------------

    def fail(self, method: str, arg: object, err: int, times: int = 1) -> None:
        """The next `times` calls of `method` whose first argument is `arg` raise `err`."""
        key = (method, str(arg))
        self._failures.setdefault(key, []).extend(
            OSError(err, os.strerror(err), str(arg)) for _ in range(times))

    def short_writes(self, path: str, *sizes: int) -> None:
        """The next writes to `path` (by its name when opened) write at most these many bytes
        each (0: the write writes nothing, as a full disk may)."""
        self.write_sizes.setdefault(path, []).extend(sizes)

    def layout(self, kind: str) -> None:
        """Mount cgroups as a v1 (every controller its own hierarchy, plus name=systemd), v2
        (cgroup2 at /sys/fs/cgroup) or hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified) host,
        and write the mountinfo that `pyrunc.cgroups.layout.detect` reads."""
        lines = []
        if kind in ("v1", "hybrid"):
            for n, (key, files) in enumerate(V1_FILES.items()):
                mount = f"/sys/fs/cgroup/{key.removeprefix('name=')}"
                self.hierarchies.append(Hierarchy(mount, key, files))
                lines.append(mountinfo_line(n, mount, "cgroup", "rw," + key))
        if kind in ("v2", "hybrid"):
            mount = "/sys/fs/cgroup" if kind == "v2" else "/sys/fs/cgroup/unified"
            files = dict(V2_FILES) if kind == "v2" else {
                k: v for k, v in V2_FILES.items() if k.startswith("cgroup.")}
            self.hierarchies.append(Hierarchy(mount, "", files))
            lines.append(mountinfo_line(20, mount, "cgroup2", "rw,nsdelegate"))
        for h in self.hierarchies:
            self._make_cgroup(h, h.mount)
            if h.v2:
                self.files[h.mount + "/cgroup.controllers"] = " ".join(
                    V2_CONTROLLERS if kind == "v2" else ()).encode()
            if h.key == "cpuset":  # the root cgroup has them all; a new one none
                self.files[h.mount + "/cpuset.cpus"] = b"0-1\n"
                self.files[h.mount + "/cpuset.mems"] = b"0\n"
        self.files["/proc/self/mountinfo"] = ("\n".join(lines) + "\n").encode()

    def spawn(self, pid: int, start_time: str = "4242", cgroup: str | None = None,
              **kwargs: object) -> Process:
        """A process, in the cgroup path `cgroup` of every hierarchy (the root cgroup when
        None), as the kernel puts a forked child in its parent's."""
        p = Process(pid, start_time, **kwargs)  # type: ignore[arg-type]
        self.processes[pid] = p
        for h in self.hierarchies:
            d = h.mount + (cgroup or "")
            if d in self.dirs:
                p.dirs.add(d)
        return p

    def oom(self, memory_dir: str, times: int = 1) -> None:
        """The kernel's OOM killer acts in a v1 memory cgroup: its registered eventfds count."""
        for fd, source in self.fds.items():
            if fd in self.eventfds and source == memory_dir:
                self.eventfds[fd] += times

    def alive(self, pid: int) -> bool:
        p = self.processes.get(pid)
        return p is not None and p.state != "X"

    def named(self, *methods: str) -> list[tuple]:
        """The recorded calls of these methods, in order."""
        return [c for c in self.calls if c[0] in methods]

    def writes(self) -> list[tuple[str, str]]:
        return [(c[1], c[2]) for c in self.calls if c[0] == "write"]

    # --- the model ----------------------------------------------------------------------

    def _record(self, method: str, *args: object) -> None:
        self.calls.append((method, *args))
        queued = self._failures.get((method, str(args[0]) if args else ""))
        if queued:
            raise queued.pop(0)

    def _new_fd(self, what: int | str) -> int:
        fd = self._next_fd
        self._next_fd += 1
        self.fds[fd] = what
        return fd

    def _fd_path(self, path: str) -> str | None:
        """What /proc/self/fd/N names, for an fd of an open file; None for other paths."""
        if not path.startswith("/proc/self/fd/"):
            return None
        f = self.fds.get(int(path.rsplit("/", 1)[1]))
        if not isinstance(f, OpenFile):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return f.path

    def _ns_name(self, path: str) -> str | None:
        """The nsfs name ("net:[4026531840]") of a namespace file, None for other files."""
        if path in self.nsfiles:
            return self.nsfiles[path]
        parts = path.split("/")
        if len(parts) == 5 and parts[1] == "proc" and parts[3] == "ns" and (
                parts[2] == "self" or parts[2].isdigit()):
            try:
                return self._readlink(path)
            except OSError:
                return None
        return None

    def _stat(self, path: str) -> os.stat_result:
        ns = self._ns_name(path)
        if ns is not None:
            mode, dev, ino, size = 0o100444, NSFS_DEV, int(ns.split("[")[1][:-1]), 0
        elif path in self.dirs:
            mode, dev, ino, size = 0o40755, 1, hash(path) & 0xFFFFFF, 4096
        elif path in self.fifos:
            mode, dev, ino, size = 0o10644, 1, hash(path) & 0xFFFFFF, 0
        elif path in self.files:
            mode, dev, ino, size = 0o100644, 1, hash(path) & 0xFFFFFF, len(self.files[path])
        else:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return os.stat_result((mode, ino, dev, 1, 0, 0, size, 0, 0, 0))

    def _hierarchy(self, path: str) -> Hierarchy | None:
        best = None
        for h in self.hierarchies:
            if (path == h.mount or path.startswith(h.mount + "/")) and (
                    best is None or len(h.mount) > len(best.mount)):
                best = h
        return best

    def _cgroup_dir(self, path: str) -> tuple[Hierarchy, str] | None:
        """(hierarchy, directory) when `path` is a file of a cgroup directory."""
        d = os.path.dirname(path)
        h = self._hierarchy(d)
        if h is None or d not in self.dirs or self._hierarchy(path) is not h:
            return None
        return h, d

    def _make_cgroup(self, h: Hierarchy, d: str) -> None:
        self.dirs.add(d)
        for name, content in h.files.items():
            self.files[f"{d}/{name}"] = content.encode()

    def _controllers(self, h: Hierarchy, d: str) -> str:
        """cgroup.controllers: the root's all, a child's what its parent enabled."""
        if d == h.mount:
            return self.files[d + "/cgroup.controllers"].decode()
        return self.files[os.path.dirname(d) + "/cgroup.subtree_control"].decode()

    def _procs(self, d: str) -> list[int]:
        return sorted(p.pid for p in self.processes.values() if d in p.dirs)

    def _proc_file(self, path: str) -> bytes | None:
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "proc" or not parts[2].isdigit():
            return None
        p = self.processes.get(int(parts[2]))
        if p is None or p.state == "X":
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if parts[3] == "stat":
            rest = " ".join(["0"] * 18)
            return f"{p.pid} (sh) {p.state} {rest} {p.start_time} 0 0\n".encode()
        if parts[3] == "cgroup":
            lines = []
            for n, h in enumerate(self.hierarchies):
                d = next((d for d in p.dirs if self._hierarchy(d) is h), h.mount)
                lines.append(f"{0 if h.v2 else n + 1}:{h.key}:{d[len(h.mount):] or '/'}")
            return ("\n".join(lines) + "\n").encode()
        return None

    def _frozen_v1(self, p: Process) -> bool:
        return any(self.files.get(d + "/freezer.state", b"").strip() == b"FROZEN"
                   for d in p.dirs)

    def _frozen_v2(self, p: Process) -> bool:
        for d in p.dirs:
            h = self._hierarchy(d)
            while h is not None and h.v2 and d.startswith(h.mount):
                if self.files.get(d + "/cgroup.freeze", b"").strip() == b"1":
                    return True
                d = os.path.dirname(d)
        return False

    def _deliver(self, p: Process, sig: int) -> None:
        p.signals.append(sig)
        if sig == SIGKILL and self._frozen_v1(p):
            p.pending_kill = True
        elif sig in p.dies_on and not (sig != SIGKILL and (self._frozen_v1(p)
                                                           or self._frozen_v2(p))):
            self.exit(p)

    def exit(self, p: Process) -> None:
        p.state = "X"
        p.dirs.clear()

    # --- Syscall ------------------------------------------------------------------------

    def read(self, path: str) -> bytes:
        self._record("read", path)
        data = self._proc_file(path)
        if data is not None:
            return data
        cg = self._cgroup_dir(path)
        if cg is not None and path.endswith("/cgroup.procs"):
            return "".join(f"{pid}\n" for pid in self._procs(cg[1])).encode()
        if cg is not None and cg[0].v2 and path.endswith("/cgroup.controllers"):
            return self._controllers(cg[0], cg[1]).encode()
        if path not in self.files:
            if path in self.dirs:
                raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return self.files[path]

    def write(self, path: str, value: str) -> None:
        self._record("write", path, value)
        if path not in self.files and not path.endswith("/cgroup.procs"):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        cg = self._cgroup_dir(path)
        name = os.path.basename(path)
        if cg is not None and name == "cgroup.procs":
            p = self.processes.get(int(value))
            if p is None or p.state == "X":
                raise ProcessLookupError(errno.ESRCH, "No such process", path)
            h, d = cg
            p.dirs = {x for x in p.dirs if self._hierarchy(x) is not h} | {d}
            return
        if cg is not None and name == "cgroup.subtree_control":
            enabled = self.files[path].decode().split()
            for word in value.split():
                c = word[1:]
                if c not in self._controllers(*cg).split():
                    raise OSError(errno.ENOENT, "No such file or directory", path)
                if word[0] == "+" and c not in enabled:
                    enabled.append(c)
                elif word[0] == "-" and c in enabled:
                    enabled.remove(c)
            self.files[path] = " ".join(enabled).encode()
            return
        if cg is not None and name == "cgroup.freeze":
            self.files[path] = value.encode()
            events = cg[1] + "/cgroup.events"
            self.files[events] = f"populated 0\nfrozen {value.strip()}\n".encode()
            return
        if cg is not None and name == "freezer.state":
            self.files[path] = value.encode()
            if value == "THAWED":
                for pid in self._procs(cg[1]):
                    p = self.processes[pid]
                    if p.pending_kill:
                        self.exit(p)
            return
        self.files[path] = value.encode()

    def mkdir(self, path: str, mode: int) -> None:
        self._record("mkdir", path, mode)
        if path in self.dirs or path in self.files or path in self.fifos or path in self.links:
            raise FileExistsError(errno.EEXIST, "File exists", path)
        if os.path.dirname(path) not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        h = self._hierarchy(path)
        if h is not None:
            self._make_cgroup(h, path)
        else:
            self.dirs.add(path)
            self.modes[path] = mode

    def rmdir(self, path: str) -> None:
        self._record("rmdir", path)
        if path not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        if any(d.startswith(path + "/") for d in self.dirs):
            raise OSError(errno.ENOTEMPTY if self._hierarchy(path) is None else errno.EBUSY,
                          "Directory not empty", path)
        if self._procs(path):
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        if self._hierarchy(path) is None and any(  # only cgroupfs removes a dir with files
                os.path.dirname(x) == path for x in (*self.files, *self.links, *self.fifos)):
            raise OSError(errno.ENOTEMPTY, "Directory not empty", path)
        self.dirs.discard(path)
        for f in [f for f in self.files if os.path.dirname(f) == path]:
            del self.files[f]

    def isdir(self, path: str) -> bool:
        self._record("isdir", path)
        return path in self.dirs

    def exists(self, path: str) -> bool:
        self._record("exists", path)
        return (path in self.dirs or path in self.files or path in self.links
                or path in self.fifos)

    def access(self, path: str, mode: int) -> bool:
        self._record("access", path, mode)
        if not (path in self.dirs or path in self.files or path in self.fifos
                or path.endswith("/cgroup.procs") and self._cgroup_dir(path) is not None):
            return False
        return self.euid == 0 or not mode & os.W_OK or path in self.writable

    def subdirs(self, path: str) -> list[str]:
        self._record("subdirs", path)
        if path not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return sorted(os.path.basename(d) for d in self.dirs
                      if d != path and os.path.dirname(d) == path)

    def listdir(self, path: str) -> list[str]:
        self._record("listdir", path)
        names = {os.path.basename(x) for x in (*self.dirs, *self.files, *self.links, *self.fifos)
                 if x != path and os.path.dirname(x) == path}
        if path == "/proc":
            names |= {str(p.pid) for p in self.processes.values() if p.state != "X"}
        elif path not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return sorted(names)

    def apply_device_program(self, cgroup_dir: str, code: bytes) -> None:
        self._record("apply_device_program", cgroup_dir, code)
        if cgroup_dir not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", cgroup_dir)

    def readlink(self, path: str) -> str:
        self._record("readlink", path)
        return self._readlink(path)

    def _readlink(self, path: str) -> str:
        parts = path.split("/")
        if len(parts) == 5 and parts[1] == "proc" and parts[2].isdigit() and parts[3] == "ns":
            p = self.processes.get(int(parts[2]))
            if p is None or p.state == "X":
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
            if parts[4] == "pid":
                return p.pid_ns
            if parts[4] in HOST_NS:
                return p.ns.get(parts[4], HOST_NS[parts[4]])
        target = self._fd_path(path)
        if target is not None:  # a bind-mounted namespace file's fd names the file
            return target if target in self.nsfiles else self._ns_name(target) or target
        if path not in self.links:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return self.links[path]

    def oom_eventfd(self, memory_dir: str) -> int:
        self._record("oom_eventfd", memory_dir)
        for name in ("memory.oom_control", "cgroup.event_control"):
            if memory_dir + "/" + name not in self.files:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", name)
        fd = self._new_fd(memory_dir)
        self.eventfds[fd] = 0
        return fd

    def read_eventfd(self, fd: int) -> int:
        self._record("read_eventfd", self.fds.get(fd))
        if fd not in self.eventfds:
            raise OSError(errno.EBADF, "Bad file descriptor")
        count, self.eventfds[fd] = self.eventfds[fd], 0
        return count

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        self._record("open", path, flags)
        target = self._fd_path(path) or path
        if target in self.links and flags & os.O_NOFOLLOW and not flags & os.O_PATH:
            raise OSError(errno.ELOOP, "Too many levels of symbolic links", path)
        exists = (self._ns_name(target) is not None or target in self.dirs
                  or target in self.fifos or target in self.files)
        if not exists:
            if not flags & os.O_CREAT or os.path.dirname(target) not in self.dirs:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
            self.files[target] = b""
            self.modes[target] = mode
        elif flags & os.O_CREAT and flags & os.O_EXCL:
            raise FileExistsError(errno.EEXIST, "File exists", path)
        if flags & os.O_DIRECTORY and target not in self.dirs:
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        if target in self.dirs and flags & (os.O_WRONLY | os.O_RDWR):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        if target in self.fifos and not flags & (os.O_PATH | os.O_NONBLOCK):
            raise AssertionError(f"open of the FIFO {path} would block for ever")
        if flags & os.O_TRUNC and target in self.files:
            self.files[target] = b""
        return self._new_fd(OpenFile(target, flags))

    def namespace_type(self, fd: int) -> int:
        f = self.fds.get(fd)
        self._record("namespace_type", f.path if isinstance(f, OpenFile) else fd)
        ns = self._ns_name(f.path) if isinstance(f, OpenFile) else None
        if ns is None or f.flags & os.O_PATH:
            raise OSError(errno.EBADF if ns else errno.ENOTTY, "not an nsfs fd")
        return NSFS_TYPES[ns.partition(":")[0]]

    def _file(self, fd: int) -> OpenFile:
        f = self.fds.get(fd)
        if not isinstance(f, OpenFile):
            raise OSError(errno.EBADF, "Bad file descriptor")
        return f

    def read_fd(self, fd: int, size: int) -> bytes:
        f = self._file(fd)
        self._record("read_fd", f.path, size)
        if f.path in self.dirs:
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        data = self.files.get(f.path, b"")[f.pos:f.pos + size]
        f.pos += len(data)
        return data

    def write_fd(self, fd: int, data: bytes | memoryview) -> int:
        f = self._file(fd)
        self._record("write_fd", f.path, bytes(data))
        if not f.flags & (os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EBADF, "Bad file descriptor")
        sizes = self.write_sizes.get(f.path)
        n = min(len(data), sizes.pop(0)) if sizes else len(data)
        old = self.files[f.path]
        self.files[f.path] = old[:f.pos] + bytes(data[:n]) + old[f.pos + n:]
        f.pos += n
        return n

    def fsync(self, fd: int) -> None:
        self._record("fsync", self._file(fd).path)

    def rename(self, src: str, dst: str) -> None:
        self._record("rename", src, dst)
        if src not in self.files:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", src)
        if dst in self.dirs:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", dst)
        if os.path.dirname(dst) not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", dst)
        self.files[dst] = self.files.pop(src)
        if src in self.modes:
            self.modes[dst] = self.modes.pop(src)

    def unlink(self, path: str) -> None:
        self._record("unlink", path)
        if path in self.dirs:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        if path in self.files:
            del self.files[path]
        elif path in self.links:
            del self.links[path]
        elif path in self.fifos:
            self.fifos.discard(path)
        else:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.modes.pop(path, None)

    def islink(self, path: str) -> bool:
        self._record("islink", path)
        return path in self.links

    def chmod(self, path: str, mode: int) -> None:
        self._record("chmod", path, mode)
        if not self.exists(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self.modes[path] = mode

    def makedirs(self, path: str, mode: int) -> None:
        self._record("makedirs", path, mode)
        missing = []
        d = path
        while d not in self.dirs:
            if d in self.files or d in self.fifos:
                raise FileExistsError(errno.EEXIST, "File exists", d)
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):
            self.dirs.add(d)
            self.modes[d] = mode

    def flock(self, fd: int, exclusive: bool, block: bool = True) -> None:
        f = self._file(fd)
        self._record("flock", f.path, exclusive, block)
        held = self.locks.setdefault(f.path, {})
        others = {k: v for k, v in held.items() if k != fd and k in self.fds}
        if others and (exclusive or any(others.values())):
            if block:
                raise AssertionError(f"flock of {f.path} would wait for ever (one thread)")
            raise BlockingIOError(errno.EWOULDBLOCK, "Resource temporarily unavailable")
        held[fd] = exclusive

    def stat(self, path: str) -> os.stat_result:
        self._record("stat", path)
        return self._stat(self._fd_path(path) or path)

    def fstat(self, fd: int) -> os.stat_result:
        f = self.fds.get(fd)
        self._record("fstat", f.path if isinstance(f, OpenFile) else fd)
        if not isinstance(f, OpenFile):
            raise OSError(errno.EBADF, "Bad file descriptor")
        return self._stat(f.path)

    def kill(self, pid: int, sig: int) -> None:
        self._record("kill", pid, sig)
        if not self.alive(pid):
            raise ProcessLookupError(errno.ESRCH, "No such process")
        self._deliver(self.processes[pid], sig)

    def pidfd_open(self, pid: int) -> int:
        self._record("pidfd_open", pid)
        if not self.alive(pid):
            raise ProcessLookupError(errno.ESRCH, "No such process")
        return self._new_fd(pid)

    def pidfd_send_signal(self, pidfd: int, sig: int) -> None:
        pid = self.fds.get(pidfd)
        self._record("pidfd_send_signal", pid, sig)  # recorded by pid: what a test names
        if not isinstance(pid, int):
            raise OSError(errno.EBADF, "Bad file descriptor")
        if not self.alive(pid):
            raise ProcessLookupError(errno.ESRCH, "No such process")
        self._deliver(self.processes[pid], sig)

    def wait_readable(self, fd: int, timeout_ms: int) -> bool:
        if fd in self.eventfds:
            self._record("wait_readable", self.fds[fd], timeout_ms)
            return self.eventfds[fd] > 0
        pid = self.fds.get(fd)
        self._record("wait_readable", pid, timeout_ms)
        p = self.processes.get(pid) if isinstance(pid, int) else None
        return p is None or p.state in ("X", "Z")

    def close(self, fd: int) -> None:
        try:
            self._record("close", fd)
        except OSError:
            if fd in self.fds:  # a failed close(2) (EIO, EINTR) frees the fd all the same
                self._free(fd)
            raise
        if fd not in self.fds:
            raise OSError(errno.EBADF, "Bad file descriptor")
        self._free(fd)

    def _free(self, fd: int) -> None:
        del self.fds[fd]
        self.eventfds.pop(fd, None)
        for held in self.locks.values():
            held.pop(fd, None)

    def geteuid(self) -> int:
        return self.euid

    def getegid(self) -> int:
        return self.egid

    def raise_nofile(self) -> tuple[int, int] | None:
        self._record("raise_nofile")
        if self.nofile[0] == self.nofile[1]:
            return None
        caller, self.nofile = self.nofile, (self.nofile[1], self.nofile[1])
        return caller

    def set_nofile(self, soft: int, hard: int) -> None:
        self._record("set_nofile", soft, hard)
        self.nofile = (soft, hard)

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        self._record("mount", source, target, fstype, flags, data)
        self.mounts.append((source, target, fstype, flags, data))

    def umount(self, target: str, flags: int) -> None:
        self._record("umount", target, flags)
        for i in range(len(self.mounts) - 1, -1, -1):
            if self.mounts[i][1] == target:
                del self.mounts[i]
                return
        raise OSError(errno.EINVAL, "Invalid argument", target)

    def statfs_type(self, path: str) -> int:
        self._record("statfs_type", path)
        path = self._fd_path(path) or path
        if self._ns_name(path) is not None:
            return NSFS_MAGIC
        return 0x9FA0 if path == "/proc" or path.startswith("/proc/") else 0xEF53

    def idmapped_tree(self, source: str, userns_fd: int, recursive_tree: bool,
                      recursive_map: bool) -> int:
        self._record("idmapped_tree", source, userns_fd, recursive_tree, recursive_map)
        return self._new_fd(source)

    def read_in_root(self, root: str, path: str, limit: int) -> bytes | None:
        self._record("read_in_root", root, path, limit)
        data = self.files.get(root.rstrip("/") + "/" + path.lstrip("/"))
        return data if data is not None and len(data) <= limit else None
