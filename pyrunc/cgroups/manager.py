"""A container's cgroups: create or join the directories, write files, add the init, freeze and
thaw, list and signal the processes, remove what was created.

Hot commands (kill, delete, pause, resume, ps) use this module alone, from the plain record kept
in state.json (`data["pyrunc"]["cgroup"]`):

    {"path": "/pyrunc/ID", "layout": "hybrid",
     "dirs": [{"key": "memory", "dir": "/sys/fs/cgroup/memory/pyrunc/ID",
               "created": ["/sys/fs/cgroup/memory/pyrunc", "/sys/fs/cgroup/memory/pyrunc/ID"]},
              ...,
              {"key": "", "dir": "/sys/fs/cgroup/unified/pyrunc/ID", "created": [...]}]}

`created` lists the directories pyrunc made, outermost first; only those are ever removed. The
record is filled in while the directories are made, so a create that fails half-way still knows
what to undo.
"""

from __future__ import annotations

import errno
import os
import time

from pyrunc import syscall
from pyrunc.errors import CgroupError

TYPE_CHECKING = False  # typing costs ~9 ms to import; the hot commands use this module
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NotRequired, TypedDict

    from pyrunc.cgroups.layout import Hierarchy, Layout
    from pyrunc.cgroups.resources import ResourceWrites, Write
    from pyrunc.state import RuntimeRecord

    class CgroupDir(TypedDict):
        """One hierarchy's directory of a CgroupRecord."""

        key: str  # the hierarchy: its controllers ("memory", "cpu,cpuacct"), "" for cgroup2
        dir: str
        mount: NotRequired[str]  # its mount point (older records: derived from `dir`)
        created: list[str]  # what pyrunc made, outermost first: only those are removed

    class CgroupRecord(TypedDict, total=False):
        """The record above (state.json's pyrunc.cgroup, intent.json's cgroup)."""

        path: str
        layout: str  # "v1", "v2", "hybrid"
        dirs: list[CgroupDir]

UNIFIED = ""
OWN_TREE = "/pyrunc"  # paths.DEFAULT_PARENT: the default parent, pyrunc's own
FREEZE_TIMEOUT = 5.0
EMPTY_TIMEOUT = 5.0


def _read(path: str) -> str | None:
    try:
        return syscall.get().read(path).decode()
    except OSError:
        return None


def _write(path: str, value: str) -> None:
    syscall.get().write(path, value)


def _walk(top: str) -> list[str]:
    """`top` and every directory below it, parents first (os.walk's order, through the seam);
    a directory that vanishes meanwhile is skipped, as os.walk does."""
    sys_ = syscall.get()
    out, todo = [], [top]
    while todo:
        d = todo.pop(0)
        try:
            names = sys_.subdirs(d)
        except OSError:
            continue
        out.append(d)
        todo[:0] = [os.path.join(d, n) for n in names]
    return out


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


class _Deferred(Exception):
    """A `retry` write refused with EINVAL: to be tried again after the next one."""


class Cgroups:
    """The cgroup directories of one container, one per hierarchy."""

    def __init__(self, record: CgroupRecord) -> None:
        self.record = record

    # --- what is recorded --------------------------------------------------------------------

    @property
    def path(self) -> str:
        return self.record.get("path", "")

    @property
    def layout(self) -> str:
        return self.record.get("layout", "")

    @property
    def dirs(self) -> list[CgroupDir]:
        return self.record.setdefault("dirs", [])

    def dir(self, key: str) -> str | None:
        """The directory of the hierarchy `key` ("memory", "cpu,cpuacct", "" for cgroup2)."""
        for d in self.dirs:
            if d["key"] == key:
                return d["dir"]
        return None

    def dir_for(self, controller: str) -> str | None:
        """The directory holding `controller`'s files (v2: the one cgroup2 directory)."""
        if self.layout == "v2":
            return self.dir(UNIFIED)
        for d in self.dirs:
            if d["key"] != UNIFIED and controller in d["key"].split(","):
                return d["dir"]
        return None

    @property
    def freezer_file(self) -> str | None:
        """freezer.state on v1 and hybrid hosts, cgroup.freeze on v2."""
        if self.layout == "v2":
            d = self.dir(UNIFIED)
            return os.path.join(d, "cgroup.freeze") if d else None
        d = self.dir_for("freezer")
        return os.path.join(d, "freezer.state") if d else None

    @property
    def procs_dir(self) -> str | None:
        """Where to list the container's processes: the freezer's directory (what `pause`
        acts on), else the cgroup2 one, else any."""
        if self.layout != "v2":
            d = self.dir_for("freezer")
            if d:
                return d
        return self.dir(UNIFIED) or (self.dirs[0]["dir"] if self.dirs else None)

    # --- create / join ---------------------------------------------------------------------

    @classmethod
    def create(cls, layout: Layout, path: str, record: CgroupRecord, *, own: bool = False,
               intent: Callable[[CgroupRecord], None] | None = None) -> Cgroups:
        """Make (or join) `path` in every hierarchy of `layout`, recording into `record`.

        `intent` is called first with what is about to be made (the same record shape, its
        `created` the directories missing now), so that a create killed half-way leaves a note
        of exactly what `delete --force` must remove. `own`: `path` is of pyrunc's own naming
        (derived from the root and the id), so an empty leaf left by a crashed create of the
        same id is taken over (recorded as ours, removed on delete) rather than left for good.
        """
        record["path"] = path
        record["layout"] = layout.kind
        record["dirs"] = []
        cg = cls(record)
        sys_ = syscall.get()
        planned: list[CgroupDir] = []
        for h in layout.hierarchies:
            leaf = h.dir(path)
            entry: CgroupDir = {"key": h.key, "dir": leaf, "mount": h.mount, "created": []}
            record["dirs"].append(entry)
            chain = [d for d in _chain(h.mount, leaf) if not sys_.isdir(d)]
            if own and leaf not in chain and _is_empty_tree(leaf):
                chain.append(leaf)
            planned.append({"key": h.key, "dir": leaf, "mount": h.mount, "created": chain})
        if intent is not None:
            intent({"path": path, "layout": layout.kind, "dirs": planned})
        for h, entry, plan in zip(layout.hierarchies, record["dirs"], planned, strict=True):
            cg._make(h, entry)
            if own and entry["dir"] in plan["created"] and entry["dir"] not in entry["created"]:
                if _is_empty_tree(entry["dir"]):  # a stale one of ours: it is ours again
                    entry["created"].append(entry["dir"])
        if layout.kind == "v2":
            cg.enable_v2(layout.v2_controllers, required=False)
        return cg

    def _make(self, h: Hierarchy, entry: CgroupDir) -> None:
        leaf = entry["dir"]
        chain = _chain(h.mount, leaf)
        sys_ = syscall.get()
        for _attempt in range(5):
            try:
                for d in chain:
                    try:
                        sys_.mkdir(d, 0o755)
                        if d not in entry["created"]:
                            entry["created"].append(d)
                    except FileExistsError:
                        pass
                    if "cpuset" in h.controllers:
                        _inherit_cpuset(d)
                return
            except FileNotFoundError:
                continue  # a concurrent delete removed a shared parent between two mkdirs
            except OSError as e:
                raise CgroupError(f"create cgroup {d}: {_reason(e)}") from None
        raise CgroupError(f"create cgroup {leaf}: its parent keeps disappearing")

    def enable_v2(self, controllers: tuple[str, ...] | list[str], required: bool = True) -> None:
        """Enable controllers in every ancestor's cgroup.subtree_control down to our parent,
        so the container's directory gets their files."""
        leaf = self.dir(UNIFIED)
        if leaf is None:
            return
        entry = next(d for d in self.dirs if d["key"] == UNIFIED)
        mount = entry.get("mount") or _mount_of(leaf, self.path)
        d, chain = os.path.dirname(leaf), []
        while len(d) >= len(mount):
            chain.append(d)
            if d == mount:
                break
            d = os.path.dirname(d)
        for parent in reversed(chain):
            enabled = set((_read(os.path.join(parent, "cgroup.subtree_control")) or "").split())
            for c in controllers:
                if c in enabled:
                    continue
                try:
                    _write(os.path.join(parent, "cgroup.subtree_control"), f"+{c}")
                except OSError as e:
                    if required:
                        raise CgroupError(
                            f"enable the {c} controller in {parent}: {_reason(e)}"
                        ) from None

    def check_usable(self) -> None:
        """The spec lets a runtime refuse an unfit cgroup. runc 1.1.5 only warns about one
        with processes in it already (its words; clients such as docker's `--cgroup-parent`
        setups rely on it) and refuses a frozen one."""
        for d in self.dirs:
            procs = (_read(os.path.join(d["dir"], "cgroup.procs")) or "").split()
            if procs:
                from pyrunc.log import get_logger

                get_logger().warning(
                    f"container's cgroup is not empty: {len(procs)} process(es) found"
                )
                break
        if self.is_frozen():
            raise CgroupError(f"container's cgroup {self.path} is frozen")

    def add_pid(self, pid: int) -> None:
        """Move `pid` into every hierarchy (clients read /proc/<pid>/cgroup)."""
        for d in self.dirs:
            try:
                _write(os.path.join(d["dir"], "cgroup.procs"), str(pid))
            except OSError as e:
                raise CgroupError(f"add pid {pid} to cgroup {d['dir']}: {_reason(e)}") from None

    # --- writing resources ---------------------------------------------------------------------

    def host(self, layout: Layout) -> CgroupHost:
        return CgroupHost(self, layout)

    def _write(self, w: Write, deferrable: bool = False) -> None:
        d = self.dir(UNIFIED) if w.v2 else self.dir_for(w.controller)
        if d is None:
            raise CgroupError(f"{w.field}: no {w.controller} cgroup for this container")
        target = os.path.join(d, w.file)
        try:
            _write(target, w.value)
        except OSError as e:
            if deferrable and w.retry and e.errno == errno.EINVAL:
                raise _Deferred() from None
            raise CgroupError(f"{w.field}: write {w.value!r} to {target}: {_reason(e)}") from None

    def apply(self, plan: ResourceWrites) -> None:
        """Write `resources.ResourceWrites` (validated already); the v2 device rules become eBPF."""
        unified_controllers = sorted(
            {w.controller for w in plan.writes if w.v2 and w.controller != "cgroup"}
        )
        if unified_controllers and self.layout == "hybrid":
            self.enable_v2(unified_controllers)
        deferred: list[Write] = []
        for w in plan.writes:
            try:
                self._write(w, deferrable=True)
            except _Deferred:
                deferred.append(w)
                continue
            while deferred:
                self._write(deferred.pop(0))
        for w in deferred:
            self._write(w)
        if plan.device_rules is not None:
            from pyrunc.cgroups import devices

            d = self.dir(UNIFIED)
            if d is None:
                raise CgroupError("linux.resources.devices: no cgroup2 directory to attach to")
            code = devices.encode(devices.compile_program(plan.device_rules))
            syscall.get().apply_device_program(d, code)

    # --- freezer ---------------------------------------------------------------------------

    def is_frozen(self) -> bool:
        f = self.freezer_file
        value = (_read(f) or "").strip() if f else ""
        return value in ("FROZEN", "FREEZING", "1")

    def freeze(self) -> None:
        """Freeze and wait until every task is frozen; on timeout, thaw again and fail."""
        f = self.freezer_file
        if f is None:
            raise CgroupError("this container has no freezer cgroup")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        try:
            if self.layout == "v2":
                _write(f, "1")
                events = os.path.join(os.path.dirname(f), "cgroup.events")
                while "frozen 1" not in (_read(events) or ""):
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    time.sleep(0.002)
            else:
                while True:
                    # writing FROZEN again nudges tasks that were forking when asked
                    _write(f, "FROZEN")
                    if (_read(f) or "").strip() == "FROZEN":
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError
                    time.sleep(0.002)
        except TimeoutError:
            self.thaw()
            raise CgroupError(f"unable to freeze {os.path.dirname(f)}: timed out") from None
        except OSError as e:
            raise CgroupError(f"freeze {f}: {_reason(e)}") from None

    def thaw(self) -> None:
        f = self.freezer_file
        if f is None:
            raise CgroupError("this container has no freezer cgroup")
        try:
            _write(f, "0" if self.layout == "v2" else "THAWED")
        except OSError as e:
            raise CgroupError(f"thaw {f}: {_reason(e)}") from None

    # --- processes -----------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Every pid in the container's cgroup and its sub-cgroups, sorted."""
        top = self.procs_dir
        if top is None:
            return []
        if not syscall.get().isdir(top):
            raise CgroupError(f"cgroup {top} does not exist")
        out: set[int] = set()
        for dirpath in _walk(top):
            for word in (_read(os.path.join(dirpath, "cgroup.procs")) or "").split():
                out.add(int(word))
        return sorted(out)

    def _hierarchy_path(self, pid: int) -> str | None:
        """The cgroup path of `pid` in the hierarchy `procs_dir` belongs to."""
        top = self.procs_dir
        key = next((d["key"] for d in self.dirs if d["dir"] == top), None)
        text = _read(f"/proc/{pid}/cgroup")
        if text is None or key is None:
            return None
        for line in text.splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == key or (key and key in controllers.split(",")):
                return path
        return None

    def contains(self, pid: int) -> bool:
        path = self._hierarchy_path(pid)
        return path is not None and (path == self.path or path.startswith(self.path + "/"))

    def signal_all(self, sig: int) -> None:
        """Signal every process, never a reused pid: each is pinned by a pidfd, then checked
        to still be in our cgroup with the start time seen when listed. The cgroup is frozen
        meanwhile (unless it was already paused) so nothing forks past the list."""
        from pyrunc.procfs import read_proc_stat

        try:
            if not self.pids():
                return
        except CgroupError:
            return  # the directories are gone: nothing left to signal
        sys_ = syscall.get()
        was_frozen = self.is_frozen()
        frozen = False
        if not was_frozen and self.freezer_file:
            try:
                self.freeze()
                frozen = True
            except CgroupError:
                pass
        try:
            for pid in self.pids():
                stat = read_proc_stat(pid)
                if stat is None:
                    continue
                try:
                    pidfd = sys_.pidfd_open(pid)
                except OSError:
                    continue
                try:
                    again = read_proc_stat(pid)
                    if again is None or again[1] != stat[1] or not self.contains(pid):
                        continue
                    sys_.pidfd_send_signal(pidfd, sig)
                except OSError:
                    pass
                finally:
                    sys_.close(pidfd)
        finally:
            # a v1-frozen task only dies once thawed
            if frozen or (was_frozen and sig == 9):
                try:
                    self.thaw()
                except CgroupError:
                    pass

    # --- removal -------------------------------------------------------------------------

    def is_empty(self, only_created: bool = False) -> bool:
        """No process in the container's cgroups (or only in those pyrunc created)."""
        for d in self.dirs:
            if only_created and d["dir"] not in (d.get("created") or ()):
                continue
            if syscall.get().isdir(d["dir"]):
                for dirpath in _walk(d["dir"]):
                    if (_read(os.path.join(dirpath, "cgroup.procs")) or "").strip():
                        return False
        return True

    def destroy(self, timeout: float = EMPTY_TIMEOUT) -> None:
        """Wait for the cgroups to empty, then remove what pyrunc created, leaf to root (and
        any sub-cgroups the container made below its own). Shared parents still in use by
        another container stay."""
        deadline = time.monotonic() + timeout
        if not any(d["dir"] in (d.get("created") or ()) for d in self.dirs):
            return  # only joined cgroups: nothing of ours to remove, nobody to wait for
        # joined directories are not waited for: a create refused because one of them is in
        # use must still remove the ones it made in the other hierarchies
        while not self.is_empty(only_created=True):
            if time.monotonic() > deadline:
                raise CgroupError(f"cgroup {self.path} still has processes after {timeout:g}s")
            time.sleep(0.005)
        problems = []
        for d in self.dirs:
            for i, path in enumerate(self._removable(d)):
                leaf = i == 0 and path == d["dir"]
                try:
                    if leaf:
                        _remove_tree(path, deadline)
                    else:
                        syscall.get().rmdir(path)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    if leaf or e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                        problems.append(f"{e.filename or path}: {_reason(e)}")
                    break  # a parent still in use: the ones above it are too
        if problems:
            raise CgroupError("remove cgroup " + "; ".join(problems))

    def _removable(self, d: CgroupDir) -> list[str]:
        """The directories to remove, leaf first: those this container created, and the empty
        parents of pyrunc's own default tree (/pyrunc, /pyrunc/r-...), which another container
        may have created and left while this one still used them."""
        created = d.get("created") or []
        if d["dir"] not in created:
            return []
        mount = d.get("mount") or _mount_of(d["dir"], self.path)
        out = []
        cur = d["dir"]
        while cur.startswith(mount + "/"):
            rel = cur[len(mount):]
            if cur not in created and not (rel == OWN_TREE or rel.startswith(OWN_TREE + "/")):
                break
            out.append(cur)
            cur = os.path.dirname(cur)
        return out


class CgroupHost:
    """`resources.Host` over a container's directories."""

    def __init__(self, cg: Cgroups, layout: Layout) -> None:
        self.cg = cg
        self.version = "v2" if cg.layout == "v2" else "v1"
        self.hybrid = cg.layout == "hybrid"
        self.v2_controllers = tuple(layout.v2_controllers)

    def has_controller(self, controller: str) -> bool:
        d = self.cg.dir_for(controller)
        if d is None:
            return False
        if self.version == "v2":
            return controller in (_read(os.path.join(d, "cgroup.controllers")) or "").split()
        return True

    def has_file(self, controller: str, name: str) -> bool:
        d = self.cg.dir_for(controller)
        return d is not None and syscall.get().exists(os.path.join(d, name))

    def read(self, controller: str, name: str) -> str | None:
        d = self.cg.dir_for(controller)
        return None if d is None else _read(os.path.join(d, name))


def _inherit_cpuset(d: str) -> None:
    """A new v1 cpuset cgroup starts with no cpus and mems, and no task may join it until they
    are set: copy the parent's (which we may just have made the same way)."""
    parent = os.path.dirname(d)
    for name in ("cpuset.cpus", "cpuset.mems"):
        current = (_read(os.path.join(d, name)) or "").strip()
        if current:
            continue
        value = (_read(os.path.join(parent, name)) or "").strip()
        if value:
            try:
                _write(os.path.join(d, name), value)
            except OSError as e:
                raise CgroupError(f"set {name} of {d}: {_reason(e)}") from None


def _chain(mount: str, leaf: str) -> list[str]:
    """The directories from just below `mount` down to `leaf`, outermost first."""
    chain = []
    d = leaf
    while d != mount and d.startswith(mount + "/"):
        chain.append(d)
        d = os.path.dirname(d)
    chain.reverse()
    return chain


def _is_empty_tree(d: str) -> bool:
    """`d` is a cgroup directory with no process in it or below it."""
    if not syscall.get().isdir(d):
        return False
    for dirpath in _walk(d):
        if (_read(os.path.join(dirpath, "cgroup.procs")) or "").strip():
            return False
    return True


def derived(layout: Layout, path: str, known: Cgroups | None = None) -> Cgroups | None:
    """The cgroups at `path` (of pyrunc's own naming) that exist now in any hierarchy, all
    taken as pyrunc's: for a `delete --force` that has no record of them (state damaged or
    missing, a create killed before it wrote its intent). Those `known` has are left out."""
    dirs: list[CgroupDir] = []
    seen = {d["dir"] for d in known.dirs} if known is not None else set()
    for h in layout.hierarchies:
        leaf = h.dir(path)
        if leaf not in seen and syscall.get().isdir(leaf):
            dirs.append({"key": h.key, "dir": leaf, "mount": h.mount, "created": [leaf]})
    if not dirs:
        return None
    return Cgroups({"path": path, "layout": layout.kind, "dirs": dirs})


def _mount_of(leaf: str, path: str) -> str:
    """The hierarchy's mount point: `leaf` without the cgroup path's components."""
    depth = len([p for p in path.split("/") if p])
    mount = leaf
    for _ in range(depth):
        mount = os.path.dirname(mount)
    return mount


def _remove_tree(path: str, deadline: float) -> None:
    """rmdir sub-cgroups depth first, then `path`; EBUSY while the last tasks exit is retried."""
    sys_ = syscall.get()
    for name in sys_.subdirs(path):
        _remove_tree(os.path.join(path, name), deadline)
    while True:
        try:
            sys_.rmdir(path)
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def from_runtime(runtime: RuntimeRecord) -> Cgroups | None:
    """The container's cgroups from `data["pyrunc"]`, or None when it has none recorded."""
    record = runtime.get("cgroup")
    if not record or not record.get("dirs"):
        return None
    return Cgroups(record)
