"""The state store under --root: one directory per container, `state.json`, a lock, the status.

Hot commands (start, state, kill, delete, list) live on this module alone: it imports only the
standard library's cheapest parts, never the spec model. Status is derived from the live process,
never trusted from disk: a recorded pid whose start time no longer matches is `stopped`.
"""

from __future__ import annotations

import fcntl
import os

from pyrunc import jsonlite
from pyrunc.errors import ContainerNotFound, PyruncError

DEFAULT_ROOT = "/run/pyrunc"
STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
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


def read_proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks) of a pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), fields[19].decode()


def process_alive(pid: int, start_time: str) -> bool:
    """True when `pid` is still the very process we started (not a zombie, not a reused pid)."""
    if pid <= 0:
        return False
    stat = read_proc_stat(pid)
    return stat is not None and stat[1] == start_time and stat[0] not in ("Z", "X", "x")


class Container:
    """What the state store knows of one container; status is computed on demand."""

    __slots__ = ("store", "id", "data")

    def __init__(self, store: StateStore, container_id: str, data: dict) -> None:
        self.store = store
        self.id = container_id
        self.data = data

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
    def runtime(self) -> dict:
        """pyrunc's own bookkeeping (init start time, hooks, namespaces, ...)."""
        return self.data.get("pyrunc", {})

    def is_alive(self) -> bool:
        return process_alive(self.pid, self.runtime.get("init_start_time", ""))

    @property
    def status(self) -> str:
        if not self.is_alive():
            return "stopped"
        # frozen first, as runc: a created container can be paused too
        freezer = self.runtime.get("freezer_state")
        if freezer and _is_frozen(freezer):
            return "paused"
        if os.path.exists(os.path.join(self.dir, EXEC_FIFO)):
            return "created"
        return "running"

    def oci_state(self) -> dict:
        """The state document of runtime.md (plus runc's extra fields, allowed by the schema)."""
        status = self.status
        d = self.data
        state = {
            "ociVersion": d.get("ociVersion", OCI_VERSION),
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": d.get("bundle", ""),
            "rootfs": d.get("rootfs", ""),
            "created": d.get("created", ""),
            "owner": d.get("owner", ""),
        }
        if d.get("annotations"):
            state["annotations"] = d["annotations"]
        return state

    def hook_state(self, status: str | None = None) -> dict:
        """The state hooks receive on stdin (runtime.md's fields only)."""
        st = {
            "ociVersion": self.data.get("ociVersion", OCI_VERSION),
            "id": self.id,
            "status": status or self.status,
            "pid": self.pid,
            "bundle": self.bundle,
        }
        if self.data.get("annotations"):
            st["annotations"] = self.data["annotations"]
        return st

    def save(self) -> None:
        self.store.write(self.id, self.data)


def _is_frozen(state_file: str) -> bool:
    try:
        with open(state_file) as f:
            value = f.read().strip()
    except OSError:
        return False
    return value in ("FROZEN", "FREEZING", "1")


class Locked:
    """A held lock on a container directory; released on exit (or by closing)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Locked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StateStore:
    """The containers under one --root."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = os.path.abspath(root)

    def path(self, container_id: str) -> str:
        return os.path.join(self.root, validate_id(container_id))

    def _ensure_root(self) -> None:
        try:
            os.makedirs(self.root, 0o700, exist_ok=True)
        except OSError as e:
            raise PyruncError(f"cannot create root directory {self.root}: {e.strerror}") from None

    def claim(self, container_id: str) -> Locked:
        """Create the container's directory, locked. Exactly one concurrent caller wins the id."""
        self._ensure_root()
        path = self.path(container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise PyruncError(f"container with id exists: {container_id}") from None
        os.chmod(path, 0o711)  # regardless of umask: the init opens the fifo after dropping root
        return self._lock_dir(path, exclusive=True)

    def _lock_dir(self, path: str, exclusive: bool) -> Locked:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        return Locked(fd)

    def lock(self, container_id: str, exclusive: bool = True) -> tuple[Locked, Container]:
        """Lock a container and load it; raise ContainerNotFound when it is not there."""
        path = self.path(container_id)
        try:
            lk = self._lock_dir(path, exclusive)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound("container does not exist") from None
        try:
            return lk, self.load(container_id)
        except BaseException:
            lk.release()
            raise

    def load(self, container_id: str) -> Container:
        try:
            with open(os.path.join(self.path(container_id), STATE_FILE), "rb") as f:
                data = jsonlite.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotFound("container does not exist") from None
        except ValueError as e:
            raise PyruncError(f"state of container {container_id} is corrupt: {e}") from None
        return Container(self, container_id, data)

    def write(self, container_id: str, data: dict) -> None:
        """Atomic: a temporary file renamed over state.json."""
        path = self.path(container_id)
        tmp = os.path.join(path, f".{STATE_FILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsonlite.dumps(data, separators=(",", ":")).encode())
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(path, STATE_FILE))

    def remove(self, container_id: str) -> None:
        """Remove the container's directory (its contents are flat files)."""
        path = self.path(container_id)
        try:
            names = os.listdir(path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(path, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if not n.startswith("."))

    def containers(self) -> list[Container]:
        """Every container with a state file; ones still being created are skipped."""
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except PyruncError:
                continue
        return out
