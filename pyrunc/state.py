"""The state store under --root: one directory per container, `state.json`, a lock, the status.

Hot commands (start, state, kill, delete, list) live on this module alone: it imports only the
standard library's cheapest parts, never the spec model. Status is derived from the live process,
never trusted from disk: a recorded pid whose start time no longer matches is `stopped`.
"""

from __future__ import annotations

import errno
import os

from pyrunc import jsonlite, syscall
from pyrunc.errors import ContainerNotFound, PyruncError, StateCorrupt
from pyrunc.procfs import process_alive

TYPE_CHECKING = False  # typing costs ~3 ms to import; the shapes below are for mypy only
if TYPE_CHECKING:
    from typing import NotRequired, Required, TypedDict, TypeGuard

    from pyrunc.cgroups.manager import CgroupRecord
    from pyrunc.hooks import HookRecord

    class HostMounts(TypedDict):
        """A container without a mount namespace mounts in ours: what delete detaches."""

        rootfs: str
        before: int | None  # the top mount id on the rootfs before the create
        ours: NotRequired[int | None]  # and the create's own top one

    class NetworkRef(TypedDict):
        """The part of network.json (network.attach) copied into state.json for whoever
        reads that file; pyrunc never reads it back (delete undoes from network.json)."""

        network: str
        ip: str
        host_veth: str
        ports: list[tuple[str, int, int]]  # (proto, host port, container port): JSON arrays

    class RuntimeRecord(TypedDict, total=False):
        """state.json's "pyrunc": pyrunc's own bookkeeping of a container. None: what
        validate_state takes for absent (null), so readers must too."""

        init_start_time: str  # /proc/PID/stat field 22: the init is this process (S8)
        own_pid_ns: bool
        hooks: dict[str, list[HookRecord]] | None  # poststart and poststop, by JSON name
        rootless: bool
        host_mounts: HostMounts | None
        network: NetworkRef
        cgroup: CgroupRecord | None
        cgroup_paths: dict[str, str] | None  # {hierarchy key: directory}: what exec joins
        freezer_state: str | None  # freezer.state or cgroup.freeze

    class StateRecord(TypedDict, total=False):
        """state.json: what validate_state checks; the keys a damaged one may lack optional."""

        ociVersion: str
        id: Required[str]
        pid: Required[int]
        bundle: str
        rootfs: str
        created: str
        owner: str
        annotations: dict[str, str] | None
        pyrunc: Required[RuntimeRecord]

    class PidlessState(TypedDict):
        """A hook's state before its pid is known (startContainer's: the init adds its own)."""

        ociVersion: str
        id: str
        status: str
        bundle: str
        annotations: NotRequired[dict[str, str]]

    class HookState(PidlessState):
        """The state hooks receive on stdin (runtime.md's fields only)."""

        pid: int

    class OciState(HookState):
        """The state document `state` prints and `list --format json` lists (runc's extras)."""

        rootfs: str
        created: str
        owner: str

    class Intent(TypedDict):
        """intent.json: what a create is about to make that outlives it (delete --force)."""

        pid: int
        init_start_time: str
        cgroup: CgroupRecord | None
        host_mounts: HostMounts | None
        hook: NotRequired[list[int | str]]  # [pid, start time] of the hook being waited for

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"
INTENT_FILE = "intent.json"  # what a create is about to make, written before it makes it
EXEC_FIFO = "exec.fifo"
MAX_STATE_SIZE = 16 << 20  # a state file larger than this is damaged, not read
OCI_VERSION = "1.3.0"
MAX_ID_LEN = 1024
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def validate_id(container_id: str) -> str:
    """Ids name a directory under --root, so they may never name anything outside it (S9)."""
    if not container_id:
        raise PyruncError("container id cannot be empty")
    if (
        len(container_id) > MAX_ID_LEN
        or container_id in (".", "..")
        or not _ID_CHARS.issuperset(container_id)
    ):
        raise PyruncError(f"invalid container id format: {container_id!r}")
    return container_id


def _reason(e: OSError) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device" if e.errno == errno.ENOSPC else "disk quota exceeded"
    return (e.strerror or str(e)).lower()


def write_file(path: str, data: bytes, mode: int = 0o600, *, sync_dir: bool = False,
               durable: bool = True) -> None:
    """Atomic and durable: a temporary file, written whole (short writes continued, a write of
    nothing is a full disk), fsync'ed, renamed over `path` (and the directory fsync'ed when the
    rename itself must survive a crash). Any failure removes the temporary file and raises one
    line naming `path`; the old content of `path`, if any, is untouched. `durable=False`: no
    fsync, for what only has to survive the writer's death, not the machine's."""
    sys_ = syscall.get()
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    try:
        fd = sys_.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                       mode)
    except OSError as e:
        raise PyruncError(f"write {path}: {_reason(e)}") from None
    try:
        view = memoryview(data)
        while view:
            n = sys_.write_fd(fd, view)
            if n <= 0:
                raise OSError(errno.ENOSPC, "no space left on device")
            view = view[n:]
        if durable:
            sys_.fsync(fd)
        closing, fd = fd, -1  # a failed close(2) has freed the fd all the same
        sys_.close(closing)
        sys_.rename(tmp, path)
    except OSError as e:
        if fd >= 0:
            sys_.close(fd)
        try:
            sys_.unlink(tmp)
        except OSError:
            pass
        raise PyruncError(f"write {path}: {_reason(e)}") from None
    if sync_dir:
        try:
            dfd = sys_.open(directory or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                sys_.fsync(dfd)
            finally:
                sys_.close(dfd)
        except OSError as e:
            raise PyruncError(f"write {path}: sync {directory}: {_reason(e)}") from None


def read_file(path: str, limit: int = MAX_STATE_SIZE) -> bytes:
    """A state file's bytes: never through a symlink, never blocking (a FIFO), only a regular
    file of bounded size. FileNotFoundError when missing; StateCorrupt (naming it) otherwise."""
    sys_ = syscall.get()
    try:
        fd = sys_.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StateCorrupt(f"{path}: is a symbolic link") from None
        raise StateCorrupt(f"{path}: {_reason(e)}") from None
    try:
        st = sys_.fstat(fd)
        if (st.st_mode & 0o170000) != 0o100000:
            raise StateCorrupt(f"{path}: not a regular file")
        if st.st_size > limit:
            raise StateCorrupt(f"{path}: {st.st_size} bytes, larger than {limit}")
        chunks = []
        total = 0
        while True:
            chunk = sys_.read_fd(fd, 1 << 16)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise StateCorrupt(f"{path}: larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise StateCorrupt(f"{path}: {_reason(e)}") from None
    finally:
        sys_.close(fd)


def check_cgroup_record(rec: object) -> str | None:
    """What is wrong with a recorded cgroup (state or intent), None if nothing: recovery acts
    on it, so a damaged record is set aside whole rather than half used."""
    if not isinstance(rec, dict):
        return "pyrunc.cgroup: not an object"
    if not isinstance(rec.get("path", ""), str) or not isinstance(rec.get("layout", ""), str):
        return "pyrunc.cgroup: path and layout must be strings"
    dirs = rec.get("dirs", [])
    if not isinstance(dirs, list):
        return "pyrunc.cgroup.dirs: not a list"
    for i, d in enumerate(dirs):
        if not (isinstance(d, dict) and isinstance(d.get("key"), str)
                and isinstance(d.get("dir"), str) and d["dir"].startswith("/")
                and isinstance(d.get("mount", ""), str)
                and isinstance(d.get("created", []), list)
                and all(isinstance(c, str) for c in d.get("created", []))):
            return f"pyrunc.cgroup.dirs[{i}]: malformed"
    return None


def is_cgroup_record(rec: object) -> TypeGuard[CgroupRecord]:
    """`rec` is a cgroup record recovery may act on (check_cgroup_record found nothing)."""
    return check_cgroup_record(rec) is None


def validate_state(data: object, container_id: str) -> str | None:
    """What is wrong with a loaded state document, or None: every field a command reads has
    the type it expects, so a damaged file is reported, not a traceback."""
    if not isinstance(data, dict):
        return f"not a JSON object but {type(data).__name__}"
    if data.get("id") != container_id:
        return f"id is {data.get('id')!r}, not {container_id!r}"
    pid = data.get("pid")
    if type(pid) is not int or pid < 0:
        return "pid: not a non-negative integer"
    for key in ("bundle", "rootfs", "created", "owner", "ociVersion"):
        if not isinstance(data.get(key, ""), str):
            return f"{key}: not a string"
    if not isinstance(data.get("annotations") or {}, dict):
        return "annotations: not an object"
    rt = data.get("pyrunc")
    if not isinstance(rt, dict):
        return "pyrunc: missing or not an object"
    if not isinstance(rt.get("init_start_time", ""), str):
        return "pyrunc.init_start_time: not a string"
    for key in ("hooks", "host_mounts", "cgroup_paths", "namespaces"):
        if not isinstance(rt.get(key) or {}, dict):
            return f"pyrunc.{key}: not an object"
    if not isinstance(rt.get("freezer_state") or "", str):
        return "pyrunc.freezer_state: not a string"
    problem = _check_hooks(rt.get("hooks") or {}) or _check_host_mounts(rt.get("host_mounts"))
    if problem is not None:
        return problem
    if not all(isinstance(d, str) for d in (rt.get("cgroup_paths") or {}).values()):
        return "pyrunc.cgroup_paths: a directory is not a string"
    if rt.get("cgroup") is not None:
        return check_cgroup_record(rt["cgroup"])
    return None


def _check_hooks(hooks: dict) -> str | None:
    """The stored hooks (HookRecord) as start and delete run them."""
    for kind, items in hooks.items():
        if not isinstance(items, list):
            return f"pyrunc.hooks.{kind}: not a list"
        for i, h in enumerate(items):
            if not (isinstance(h, dict) and isinstance(h.get("path"), str)
                    and all(isinstance(h.get(k, []), list)
                            and all(isinstance(a, str) for a in h.get(k, []))
                            for k in ("args", "env"))
                    and type(h.get("timeout", 0)) is int):
                return f"pyrunc.hooks.{kind}[{i}]: malformed"
    return None


def _check_host_mounts(rec: object) -> str | None:
    """The mounts delete detaches (HostMounts): a rootfs and mount ids (or null)."""
    if not rec:
        return None  # none: the container has its own mount namespace
    if not (isinstance(rec, dict) and isinstance(rec.get("rootfs"), str) and "before" in rec
            and all(rec.get(k) is None or type(rec.get(k)) is int for k in ("before", "ours"))):
        return "pyrunc.host_mounts: malformed"
    return None


def is_host_mounts(rec: object) -> TypeGuard[HostMounts]:
    """`rec` is a whole HostMounts record (a rootfs and a "before" that is an id or null)."""
    return bool(rec) and _check_host_mounts(rec) is None


def _is_state(data: object, problem: str | None) -> TypeGuard[StateRecord]:
    """`data` passed validate_state (`problem` is what it said): a StateRecord."""
    return problem is None and isinstance(data, dict)


class Container:
    """What the state store knows of one container; status is computed on demand."""

    __slots__ = ("store", "id", "data", "problem")

    def __init__(self, store: StateStore, container_id: str, data: StateRecord,
                 problem: str | None = None) -> None:
        self.store = store
        self.id = container_id
        self.data = data
        self.problem = problem  # why its state could not be read (`list` shows it `unknown`)

    @property
    def dir(self) -> str:
        return self.store.path(self.id)

    @property
    def pid(self) -> int:
        return int(self.data.get("pid") or 0)

    @property
    def bundle(self) -> str:
        return self.data.get("bundle", "")

    @property
    def runtime(self) -> RuntimeRecord:
        """pyrunc's own bookkeeping (init start time, hooks, namespaces, ...)."""
        return self.data.get("pyrunc", {})

    def is_alive(self) -> bool:
        return process_alive(self.pid, self.runtime.get("init_start_time", ""))

    @property
    def status(self) -> str:
        if self.problem is not None:
            return "unknown"
        if not self.is_alive():
            return "stopped"
        # frozen first, as runc: a created container can be paused too
        freezer = self.runtime.get("freezer_state")
        if freezer and _is_frozen(freezer):
            return "paused"
        if syscall.get().exists(os.path.join(self.dir, EXEC_FIFO)):
            return "created"
        return "running"

    def oci_state(self) -> OciState:
        """The state document of runtime.md (plus runc's extra fields, allowed by the schema)."""
        status = self.status
        d = self.data
        state: OciState = {
            "ociVersion": d.get("ociVersion", OCI_VERSION),
            "id": self.id,
            "pid": self.pid if status not in ("stopped", "unknown") else 0,
            "status": status,
            "bundle": d.get("bundle", ""),
            "rootfs": d.get("rootfs", ""),
            "created": d.get("created", ""),
            "owner": d.get("owner", ""),
        }
        annotations = d.get("annotations")
        if annotations:
            state["annotations"] = annotations
        return state

    def hook_state(self, status: str | None = None) -> HookState:
        """The state hooks receive on stdin (runtime.md's fields only)."""
        st: HookState = {
            "ociVersion": self.data.get("ociVersion", OCI_VERSION),
            "id": self.id,
            "status": status or self.status,
            "pid": self.pid,
            "bundle": self.bundle,
        }
        annotations = self.data.get("annotations")
        if annotations:
            st["annotations"] = annotations
        return st

    def save(self) -> None:
        self.store.write(self.id, self.data)


def _is_frozen(state_file: str) -> bool:
    try:
        value = syscall.get().read(state_file).strip()
    except OSError:
        return False
    return value in (b"FROZEN", b"FREEZING", b"1")


def lock_file(path: str, flags: int, exclusive: bool = True, mode: int = 0o600) -> Locked:
    """flock(2) on `path` opened with `flags`; the fd is closed if the wait fails (EINTR, a
    KeyboardInterrupt), so a lock nobody holds is never left open."""
    sys_ = syscall.get()
    fd = sys_.open(path, flags, mode)
    try:
        sys_.flock(fd, exclusive)
    except BaseException:
        sys_.close(fd)
        raise
    return Locked(fd)


class Locked:
    """A held lock on a container directory; released on exit (or by closing)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1  # a failed close(2) has freed the fd all the same
            syscall.get().close(fd)

    def __enter__(self) -> Locked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _remove_entry(path: str) -> None:
    """Unlink a file of a container's directory; what damage put there instead (a directory,
    a tree) goes too, without ever following a symlink out of it."""
    sys_ = syscall.get()
    try:
        sys_.unlink(path)
        return
    except FileNotFoundError:
        return
    except IsADirectoryError:
        pass
    except OSError as e:
        if e.errno != errno.EPERM:  # EPERM: unlink of a directory on some filesystems
            raise PyruncError(f"remove {path}: {_reason(e)}") from None
    try:
        for child in sys_.listdir(path):
            _remove_entry(os.path.join(path, child))
        sys_.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise PyruncError(f"remove {path}: {_reason(e)}") from None


class StateStore:
    """The containers under one --root."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)

    def path(self, container_id: str) -> str:
        return os.path.join(self.root, validate_id(container_id))

    def file(self, container_id: str, name: str) -> str:
        return os.path.join(self.path(container_id), name)

    def _ensure_root(self) -> None:
        try:
            syscall.get().makedirs(self.root, 0o700)
        except OSError as e:
            raise PyruncError(f"cannot create root directory {self.root}: {e.strerror}") from None

    def claim(self, container_id: str) -> Locked:
        """Create the container's directory, locked. Exactly one concurrent caller wins the id."""
        self._ensure_root()
        path = self.path(container_id)
        sys_ = syscall.get()
        try:
            sys_.mkdir(path, 0o711)
        except FileExistsError:
            raise PyruncError(f"container with id exists: {container_id}") from None
        except OSError as e:
            raise PyruncError(f"create {path}: {_reason(e)}") from None
        sys_.chmod(path, 0o711)  # regardless of umask: the init opens the fifo after dropping root
        return self._lock_dir(path, exclusive=True)

    def _lock_dir(self, path: str, exclusive: bool) -> Locked:
        return lock_file(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                    exclusive)

    def lock(self, container_id: str, exclusive: bool = True) -> tuple[Locked, Container]:
        """Lock a container and load it; raise ContainerNotFound when it is not there."""
        path = self.path(container_id)
        try:
            lk = self._lock_dir(path, exclusive)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound("container does not exist") from None
        except OSError as e:  # ELOOP: a symlink where the directory should be
            raise StateCorrupt(f"{path}: not a container directory: {_reason(e)}") from None
        try:
            return lk, self.load(container_id)
        except BaseException:
            lk.release()
            raise

    def load(self, container_id: str) -> Container:
        """The container's state; ContainerNotFound when there is no state file (a create
        that has not finished), StateCorrupt (one line naming the file) when it is damaged."""
        path = self.file(container_id, STATE_FILE)
        try:
            raw = read_file(path)
        except FileNotFoundError:
            raise ContainerNotFound("container does not exist") from None
        try:
            data = jsonlite.loads(raw)
        except (ValueError, RecursionError) as e:
            raise StateCorrupt(f"state of container {container_id} is corrupt: {path}: "
                               f"{str(e).splitlines()[0] if str(e) else 'not JSON'}") from None
        problem = validate_state(data, container_id)
        if not _is_state(data, problem):
            raise StateCorrupt(f"state of container {container_id} is corrupt: {path}: {problem}")
        return Container(self, container_id, data)

    def write(self, container_id: str, data: StateRecord) -> None:
        """Atomic and durable (see write_file): the directory is synced too, so that a state
        that create or update reported as written is there after a crash."""
        body = jsonlite.dumps(data, separators=(",", ":")).encode()
        write_file(self.file(container_id, STATE_FILE), body, sync_dir=True)

    def remove(self, container_id: str) -> None:
        """Remove the container's directory (its contents are flat files)."""
        path = self.path(container_id)
        sys_ = syscall.get()
        try:
            names = sys_.listdir(path)
        except FileNotFoundError:
            return
        # the intent goes last: a delete killed half-way still leaves what recovery reads
        names.sort(key=lambda n: n == INTENT_FILE)
        for name in names:
            _remove_entry(os.path.join(path, name))
        try:
            sys_.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise PyruncError(f"remove {path}: {_reason(e)}") from None

    def ids(self) -> list[str]:
        try:
            names = syscall.get().listdir(self.root)
        except FileNotFoundError:
            return []
        # temporary files start with "."; anything that is not a valid id is not a container
        return sorted(n for n in names if not n.startswith(".") and _ID_CHARS.issuperset(n))

    def containers(self) -> list[Container]:
        """Every container under the root. One whose state cannot be read is listed with its
        problem (status `unknown`), unless a create or delete holds it right now (a create
        still being made, a delete half-done: neither is damaged)."""
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
                continue
            except PyruncError:
                pass
            if self._busy(cid):
                continue
            try:  # nobody holds it: read again, a create may have finished in between
                out.append(self.load(cid))
            except ContainerNotFound:
                out.append(self._unreadable(cid, f"{self.file(cid, STATE_FILE)}: missing"))
            except PyruncError as e:
                out.append(self._unreadable(cid, str(e)))
        return out

    def _unreadable(self, container_id: str, problem: str) -> Container:
        """A container `list` shows as `unknown`: nothing of its state is known."""
        return Container(self, container_id, {"id": container_id, "pid": 0, "pyrunc": {}},
                         problem)

    def _busy(self, container_id: str) -> bool:
        """True when a create or delete holds the container's lock (exclusively) right now, or
        its directory went away meanwhile."""
        sys_ = syscall.get()
        try:
            fd = sys_.open(self.path(container_id),
                           os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return True
        except (OSError, PyruncError):
            return False
        try:
            sys_.flock(fd, exclusive=False, block=False)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            sys_.close(fd)
        return False
