"""Which cgroup hierarchies this host has: v1, unified (v2) or hybrid, from /proc/self/mountinfo.

A hierarchy is identified the way /proc/<pid>/cgroup names it: the comma-joined controllers of a
v1 hierarchy (`cpu`, `cpu,cpuacct`, `name=systemd`) and the empty string for cgroup2. Clients find
a container's cgroups through that file, so the init is put in every hierarchy found here.
"""

from __future__ import annotations

import os

V1 = "v1"
V2 = "v2"
HYBRID = "hybrid"
UNIFIED = ""  # the key of the cgroup2 hierarchy, as in /proc/<pid>/cgroup ("0::/path")
# v1 options that are mount flags or hierarchy options, not controllers
_NOT_CONTROLLERS = frozenset(
    ("rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "nosuid", "nodev")
)


class Hierarchy:
    """One mounted hierarchy: where it is mounted and which controllers it carries."""

    __slots__ = ("key", "mount", "root", "controllers", "fstype", "superopts")

    def __init__(self, key: str, mount: str, root: str, controllers: tuple[str, ...],
                 fstype: str, superopts: str = "") -> None:
        self.key = key  # "cpu,cpuacct", "name=systemd", "" for cgroup2
        self.mount = mount  # e.g. /sys/fs/cgroup/cpu,cpuacct
        self.root = root  # the cgroup mounted there ("/" unless we are nested)
        self.controllers = controllers
        self.fstype = fstype
        self.superopts = superopts  # as mounted ("rw,cpu,cpuacct"): a fresh mount repeats them

    def dir(self, cgroup_path: str) -> str:
        """The directory of `cgroup_path` (an absolute cgroup path) in this hierarchy."""
        rel = cgroup_path
        if self.root != "/" and (rel == self.root or rel.startswith(self.root + "/")):
            rel = rel[len(self.root):]
        return os.path.join(self.mount, rel.lstrip("/")).rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"Hierarchy({self.key!r}, {self.mount!r})"


class Layout:
    """The host's hierarchies; `kind` is v1, v2 or hybrid."""

    __slots__ = ("kind", "hierarchies", "v2_controllers")

    def __init__(self, kind: str, hierarchies: list[Hierarchy],
                 v2_controllers: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.hierarchies = hierarchies
        self.v2_controllers = v2_controllers  # cgroup.controllers at the cgroup2 root

    @property
    def unified(self) -> Hierarchy | None:
        return next((h for h in self.hierarchies if h.key == UNIFIED), None)

    def for_controller(self, controller: str) -> Hierarchy | None:
        """The hierarchy that carries `controller` (v1 first; on v2 the unified one)."""
        for h in self.hierarchies:
            if h.key != UNIFIED and controller in h.controllers:
                return h
        if self.kind == V2:
            return self.unified
        return None

    def __repr__(self) -> str:
        return f"Layout({self.kind!r}, {self.hierarchies!r})"


def parse_mountinfo(text: str) -> list[Hierarchy]:
    """The cgroup and cgroup2 mounts of a mountinfo text, the first mount of each hierarchy."""
    from pyrunc.mountinfo import parse

    found: dict[str, Hierarchy] = {}
    controllers: tuple[str, ...]
    for m in parse(text):
        if m.fstype == "cgroup2":
            key, controllers = UNIFIED, ()
        elif m.fstype == "cgroup":
            opts = [o for o in m.superopts.split(",") if o and o not in _NOT_CONTROLLERS]
            opts = [o for o in opts if not o.startswith("release_agent=")]
            controllers = tuple(sorted(o for o in opts if not o.startswith("name=")))
            names = [o for o in opts if o.startswith("name=")]
            key = ",".join(list(controllers) + names)
            if not key:
                continue
        else:
            continue
        if key not in found:
            found[key] = Hierarchy(key, m.mount_point, m.root, controllers, m.fstype, m.superopts)
    return list(found.values())


def classify(hierarchies: list[Hierarchy]) -> str:
    """v2 when cgroup2 is the only hierarchy, hybrid when it sits next to v1 ones, else v1."""
    has_v1 = any(h.key != UNIFIED for h in hierarchies)
    has_v2 = any(h.key == UNIFIED for h in hierarchies)
    if has_v2 and not has_v1:
        return V2
    if has_v2:
        return HYBRID
    return V1


def read_text(path: str) -> str:
    """A small kernel file's text, "" when it cannot be read."""
    from pyrunc import syscall

    try:
        return syscall.get().read(path).decode()
    except OSError:
        return ""


_cached: Layout | None = None


def detect(mountinfo: str | None = None) -> Layout:
    """This host's layout (cached per process), or that of a given mountinfo text."""
    global _cached
    if mountinfo is None and _cached is not None:
        return _cached
    text = mountinfo if mountinfo is not None else read_text("/proc/self/mountinfo")
    hierarchies = parse_mountinfo(text)
    kind = classify(hierarchies)
    unified = next((h for h in hierarchies if h.key == UNIFIED), None)
    v2_controllers: tuple[str, ...] = ()
    if unified is not None:
        v2_controllers = tuple(read_text(os.path.join(unified.mount, "cgroup.controllers")).split())
        if kind == V2:
            unified.controllers = v2_controllers
    layout = Layout(kind, hierarchies, v2_controllers)
    if mountinfo is None:
        _cached = layout
    return layout
