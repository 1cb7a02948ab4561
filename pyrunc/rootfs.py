"""The container's filesystem: mount options, the config's mounts, /dev, masked/readonly paths.

Everything here is decided in the parent and turned into operations; the child only executes
them, resolving every target inside the rootfs (openat2 RESOLVE_IN_ROOT, S3).
"""

from __future__ import annotations

import os
import stat

from pyrunc import instructions as ins
from pyrunc import syscall
from pyrunc.errors import ConfigError, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.instructions import Op
    from pyrunc.spec.compiled import Mount

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_POSIXACL = 1 << 16
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

# option -> (clear?, flag)
FLAG_OPTIONS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, MS_RDONLY), "rw": (True, MS_RDONLY),
    "nosuid": (False, MS_NOSUID), "suid": (True, MS_NOSUID),
    "nodev": (False, MS_NODEV), "dev": (True, MS_NODEV),
    "noexec": (False, MS_NOEXEC), "exec": (True, MS_NOEXEC),
    "sync": (False, MS_SYNCHRONOUS), "async": (True, MS_SYNCHRONOUS),
    "mand": (False, MS_MANDLOCK), "nomand": (True, MS_MANDLOCK),
    "dirsync": (False, MS_DIRSYNC),
    "nosymfollow": (False, MS_NOSYMFOLLOW), "symfollow": (True, MS_NOSYMFOLLOW),
    "acl": (False, MS_POSIXACL), "noacl": (True, MS_POSIXACL),
    "noatime": (False, MS_NOATIME), "atime": (True, MS_NOATIME),
    "nodiratime": (False, MS_NODIRATIME), "diratime": (True, MS_NODIRATIME),
    "relatime": (False, MS_RELATIME), "norelatime": (True, MS_RELATIME),
    "strictatime": (False, MS_STRICTATIME), "nostrictatime": (True, MS_STRICTATIME),
    "lazytime": (False, MS_LAZYTIME), "nolazytime": (True, MS_LAZYTIME),
    "iversion": (False, MS_I_VERSION), "noiversion": (True, MS_I_VERSION),
    "silent": (False, MS_SILENT), "loud": (True, MS_SILENT),
    "remount": (False, MS_REMOUNT),
    "bind": (False, MS_BIND), "rbind": (False, MS_BIND | MS_REC),
}  # fmt: skip

PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}  # fmt: skip

# recursive options, applied with mount_setattr(AT_RECURSIVE): option -> (set, clear)
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
RECURSIVE_OPTIONS: dict[str, tuple[int, int]] = {
    "rro": (MOUNT_ATTR_RDONLY, 0), "rrw": (0, MOUNT_ATTR_RDONLY),
    "rnosuid": (MOUNT_ATTR_NOSUID, 0), "rsuid": (0, MOUNT_ATTR_NOSUID),
    "rnodev": (MOUNT_ATTR_NODEV, 0), "rdev": (0, MOUNT_ATTR_NODEV),
    "rnoexec": (MOUNT_ATTR_NOEXEC, 0), "rexec": (0, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, MOUNT_ATTR_NOSYMFOLLOW),
    # atime is one field: setting any mode clears the whole field first
    "rrelatime": (0, MOUNT_ATTR__ATIME), "rnorelatime": (0, MOUNT_ATTR__ATIME),
    "ratime": (0, MOUNT_ATTR__ATIME),
    "rnoatime": (MOUNT_ATTR_NOATIME, MOUNT_ATTR__ATIME),
    "rstrictatime": (MOUNT_ATTR_STRICTATIME, MOUNT_ATTR__ATIME),
    "rnostrictatime": (0, MOUNT_ATTR__ATIME),
}  # fmt: skip

# flags a bind mount only gets through a remount
_REMOUNT_FLAGS = (
    MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_SYNCHRONOUS | MS_MANDLOCK | MS_DIRSYNC
    | MS_NOSYMFOLLOW | MS_NOATIME | MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME
)

# (name, major, minor): created when the config mounts a fresh /dev and does not list them
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)  # fmt: skip
DEV_SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)
DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


# options that are neither flags nor data: runtime extensions (runc's `features` lists them)
EXTENSIONS = ("tmpcopyup",)


class MountOptions:
    """A mount's options split into flags, propagation and the filesystem's data string."""

    __slots__ = ("flags", "propagation", "data", "attr_set", "attr_clr", "idmap", "copyup")

    def __init__(self, options: tuple[str, ...] | list[str] | None) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.attr_set = self.attr_clr = 0
        self.idmap = ""  # "idmap" or "ridmap"
        self.copyup = False  # tmpcopyup: the directory's content is copied into the new tmpfs
        data: list[str] = []
        for option in options or ():
            if option in ("idmap", "ridmap"):
                self.idmap = option
            elif option == "tmpcopyup":
                self.copyup = True
            elif option in RECURSIVE_OPTIONS:
                set_bits, clear_bits = RECURSIVE_OPTIONS[option]
                self.attr_set = (self.attr_set & ~clear_bits) | set_bits
                self.attr_clr = (self.attr_clr & ~set_bits) | clear_bits
            elif option in FLAG_OPTIONS:
                clear, flag = FLAG_OPTIONS[option]
                if clear:
                    self.flags &= ~flag
                else:
                    self.flags |= flag
            elif option in PROPAGATION:
                self.propagation.append(PROPAGATION[option])
            else:
                data.append(option)
        self.data = ",".join(data)

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)


MNT_DETACH = 2


def detach_host_mounts(rootfs: str, before: int | None, ours: int | None = None) -> None:
    """A container without a mount namespace made its mounts in the runtime's (config-linux.md
    inherits the namespace); they are resources of the create, which delete (or a failed
    create) must take away (runtime.md). The init bind-mounts the rootfs onto itself first and
    mounts everything else below it, so a lazy unmount of that bind mount takes them all.

    `ours` is that bind mount, when known (delete): it alone is taken, and only while it is on
    top. Without it (a failed create) everything stacked since `before` goes.
    """
    from pyrunc.mountinfo import top_mount_id

    for _ in range(16):
        top = top_mount_id(rootfs)
        if top is None or top == before or (ours is not None and top != ours):
            return
        try:
            syscall.get().umount(rootfs, MNT_DETACH)
        except OSError as e:
            raise PyruncError(f"unmount the container's mounts at {rootfs}: {e}") from None
        if ours is not None:
            return


def container_path(dest: str) -> str:
    """A destination as an absolute path inside the container (relative ones are from '/')."""
    return os.path.normpath(os.path.join("/", dest))


# runc's allow-list of mounts inside /proc (what lxcfs emulates); anything else there is refused
PROC_MOUNTS_ALLOWED = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
))  # fmt: skip
PROC_SUPER_MAGIC = 0x9FA0


def proc_guard(where: str, dest: str, m: Mount, bundle: str) -> int:
    """Refuse a mount inside /proc (S14, as runc's checkProcMount) and say how the child must
    check the target: /proc itself takes only procfs (a proc mount, or a bind of a procfs); a
    mount anywhere else must not land on procfs, even through a symlink of the rootfs; proc
    and sysfs go on ordinary directories only."""
    flags = 0
    if m.type in ("proc", "sysfs") or dest in ("/proc", "/sys"):
        flags |= ins.TGT_ORDINARY
    if dest == "/proc":
        if m.type == "proc":
            return flags
        opts = MountOptions(m.options)
        if m.type == "bind" or opts.is_bind:
            source = m.source or ""
            if not os.path.isabs(source):
                source = os.path.join(bundle, source)
            try:
                if syscall.get().statfs_type(source) == PROC_SUPER_MAGIC:
                    return flags
            except OSError:
                pass
        raise ConfigError(f"config.json: {where}.destination: \"/proc\" cannot be mounted "
                          "because it is not of type proc")
    if dest.startswith("/proc/"):
        if dest not in PROC_MOUNTS_ALLOWED:
            raise ConfigError(f"config.json: {where}.destination: \"{dest}\" cannot be mounted "
                              "because it is inside /proc")
        return flags
    return flags | ins.TGT_NOT_PROC


# filesystems whose mount opens no device and shows nothing of the container's cgroups
_CGROUP_FREE = frozenset({"tmpfs", "proc", "sysfs", "devpts", "mqueue"})


def needs_cgroup(m: Mount) -> bool:
    """Whether the init may make this mount only once it is in its cgroups: a cgroup
    filesystem (the container's own cgroups, seen from its cgroup namespace) or one that may
    open a device (the devices controller decides, as for runc's init, which joins first).
    Binds and the pseudo-filesystems the init mounts while `create` joins it (plan.py)."""
    if m.type == "cgroup":
        return True
    opts = m.options or ()
    if m.type == "bind" or "bind" in opts or "rbind" in opts:
        return False
    return m.type not in _CGROUP_FREE


def mount_ops(
    mounts: tuple,
    bundle: str,
    cgroup_source: CgroupMounts | None,
    idmap_trees: dict[int, int] | None = None,
    host_sources: list[tuple[int, str]] | None = None,
    before: dict[int, list[Op]] | None = None,
) -> list[Op]:
    """Operations for the config's mounts, before pivot_root (targets relative to the rootfs).

    `idmap_trees` maps a mount's index to its idmapped mount tree, made by the parent. With
    `host_sources` (a list to fill: a new user and mount namespace), bind sources are opened
    by the runtime, which the user namespace may not be able to reach (runc's mount sources):
    each gets (mount index, source) appended and its mount names it by position. `before`
    maps a mount's index to operations that come just before it (the cgroup sync point).
    """
    out: list[Op] = []
    for i, m in enumerate(mounts):
        if before and i in before:
            out.extend(before[i])
        dest = container_path(m.destination)
        opts = MountOptions(m.options)
        if m.type == "bind":
            opts.flags |= MS_BIND
        where = f"mounts[{i}]"
        guard = proc_guard(where, dest, m, bundle)
        if m.type == "cgroup":
            if cgroup_source is None:
                raise ConfigError(f"config.json: {where}: cgroup mounts need /proc/self/mountinfo")
            out.extend(cgroup_source.ops(dest, opts))
            continue
        if opts.is_bind:
            source = m.source or ""
            if not source:
                raise ConfigError(f"config.json: {where}.source: a bind mount needs a source")
            if not os.path.isabs(source):
                source = os.path.join(bundle, source)
            try:
                is_dir = stat.S_ISDIR(os.stat(source).st_mode)
            except OSError as e:
                reason = (e.strerror or str(e)).lower()
                raise ConfigError(f"config.json: {where}.source: {source}: {reason}") from None
            kind = (ins.TGT_DIR if is_dir else ins.TGT_FILE) | guard
            desc = f"mount {source} to {dest}"
            if idmap_trees and i in idmap_trees:
                out.append(ins.move_mount(idmap_trees[i], dest, kind, f"idmapped {desc}"))
            else:
                received = -1
                if host_sources is not None:
                    received = len(host_sources)
                    host_sources.append((i, source))
                out.append(ins.mount(source, dest, opts.flags & (MS_BIND | MS_REC), kind, desc,
                                     received=received))
            if opts.flags & _REMOUNT_FLAGS:
                flags = MS_BIND | MS_REMOUNT | (opts.flags & (_REMOUNT_FLAGS | MS_REC))
                out.append(ins.mount(None, dest, flags, ins.TGT_EXISTING, f"remount {dest}"))
        elif m.type == "tmpfs":
            # mounted read-write, remounted read-only at the end (readonly_remount_ops): the
            # root of the new tmpfs takes the mode of the directory it covers, and /dev gets
            # its nodes and submounts first (runc)
            desc = f"mount tmpfs to {dest}"
            out.append(ins.tmpfs(m.source or "tmpfs", dest, opts.flags & ~MS_RDONLY, opts.data,
                                 opts.copyup, guard, desc))
        else:
            if opts.copyup:
                raise ConfigError(f"config.json: {where}.options: tmpcopyup needs a tmpfs mount")
            if m.type in ("proc", "sysfs"):
                # security.md: /proc and /sys never allow suid, exec or device files
                opts.flags |= MS_NOSUID | MS_NOEXEC | MS_NODEV
            flags = opts.flags & ~MS_RDONLY if dest == "/dev" else opts.flags
            source = m.source or m.type or "none"
            desc = f"mount {m.type or source} to {dest}"
            out.append(ins.mount(source, dest, flags, ins.TGT_DIR | guard, desc, fstype=m.type,
                                 data=opts.data))
        if opts.attr_set or opts.attr_clr:
            out.append(ins.mount_setattr(dest, opts.attr_set, opts.attr_clr,
                                         f"set recursive attributes of {dest}"))
        for prop in opts.propagation:
            out.append(ins.mount(None, dest, prop, ins.TGT_EXISTING,
                                 f"set propagation of {dest}"))
    return out


def readonly_remount_ops(mounts: tuple) -> list[Op]:
    """The read-only remounts of tmpfs mounts and of a fresh /dev, after everything was made
    in them (runc's finalizeRootfs): a bind remount changes only the per-mount flags."""
    out: list[Op] = []
    for m in mounts:
        dest = container_path(m.destination)
        opts = MountOptions(m.options)
        if m.type == "bind" or opts.is_bind or not opts.flags & MS_RDONLY:
            continue
        if m.type == "tmpfs" or dest == "/dev":
            flags = (opts.flags & _REMOUNT_FLAGS) | MS_REMOUNT | MS_BIND | MS_RDONLY
            out.append(ins.mount(None, dest, flags, ins.TGT_EXISTING,
                                 f"remount {dest} read-only"))
    return out


def hide_full_mounts_ops(rootfs: str) -> list[Op]:
    """With --no-pivot the old root stays under the container's: every full procfs and sysfs
    mount of it (not the container's own) is taken away before the move (runc's msMoveRoot).
    The init's new mount namespace is a copy of this one, so this one's table tells them."""
    from pyrunc.mountinfo import read

    return [ins.hide_mount(m.mount_point, f"hide {m.fstype} at {m.mount_point}")
            for m in read()
            if m.root == "/" and m.fstype in ("proc", "sysfs")
            and not m.mount_point.startswith(rootfs)]


def mounts_dev(mounts: tuple) -> bool:
    """runc creates device nodes only when the config gives /dev a fresh (non-bind) mount."""
    for m in mounts:
        if container_path(m.destination) == "/dev":
            return m.type != "bind" and "bind" not in (m.options or ()) and "rbind" not in (
                m.options or ()
            )
    return False


def device_ops(devices: tuple, with_defaults: bool, in_userns: bool) -> list[Op]:
    """mknod for each device (or a bind mount of the host node inside a user namespace)."""
    out: list[Op] = []
    listed = set()
    for i, d in enumerate(devices):
        path = container_path(d.path)
        listed.add(path)
        if d.type not in DEVICE_TYPES:
            raise ConfigError(f"config.json: linux.devices[{i}].type: invalid value {d.type!r}")
        mode = DEVICE_TYPES[d.type] | (0o666 if d.file_mode is None else d.file_mode & 0o7777)
        out.append(_device_op(path, mode, d.major or 0, d.minor or 0, d.uid or 0, d.gid or 0,
                              in_userns))
    if with_defaults:
        for path, major, minor in DEFAULT_DEVICES:
            if path not in listed:
                out.append(_device_op(path, stat.S_IFCHR | 0o666, major, minor, 0, 0, in_userns))
    return out


def _device_op(path: str, mode: int, major: int, minor: int, uid: int, gid: int,
               in_userns: bool) -> Op:
    if in_userns:
        # mknod is not allowed in a user namespace: bind the host's node instead
        return ins.mount(path, path, MS_BIND, ins.TGT_FILE, f"bind device {path}")
    return ins.mknod(path, mode, major, minor, uid, gid)


def dev_link_ops() -> list[Op]:
    out = [ins.symlink(target, link) for target, link in DEV_SYMLINKS]
    if syscall.get().exists("/proc/kcore"):
        out.append(ins.symlink("/proc/kcore", "/dev/core"))
    out.append(ins.symlink("pts/ptmx", "/dev/ptmx"))
    return out


class CgroupMounts:
    """How to give the container a /sys/fs/cgroup on this host's layout (v1, v2 or hybrid).

    On v1 and hybrid hosts runc mounts a tmpfs and, per hierarchy, either a fresh cgroup mount
    (with a cgroup namespace, whose root is the container's cgroup) or a bind of the container's
    own cgroup directory; on a v2 host one cgroup2 mount does.
    """

    def __init__(self, hierarchies: list[tuple[str, str, str, str]], new_cgroupns: bool) -> None:
        # (mount point, fs type, super options, the init's cgroup directory in that hierarchy)
        self.hierarchies = hierarchies
        self.new_cgroupns = new_cgroupns

    @classmethod
    def from_host(cls, new_cgroupns: bool, cgroup_path: str | dict[str, str]) -> CgroupMounts:
        """`cgroup_path`: the container's cgroup (the same in every hierarchy), which the init
        will be in once it has joined them; or {hierarchy key: path} (a rootless container)."""
        from pyrunc.cgroups.layout import detect

        found = []
        for h in detect().hierarchies:
            path = cgroup_path if isinstance(cgroup_path, str) else cgroup_path.get(h.key, "/")
            found.append((h.mount, h.fstype, h.superopts, h.dir(path)))
        return cls(found, new_cgroupns)

    def ops(self, dest: str, opts: MountOptions) -> list[Op]:
        base = opts.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME)
        v2_only = [h for h in self.hierarchies if h[0] == "/sys/fs/cgroup" and h[1] == "cgroup2"]
        if v2_only:
            return self._one(dest, v2_only[0], opts.flags)
        out = [ins.mount("tmpfs", dest, base, ins.TGT_DIR, f"mount tmpfs to {dest}",
                         fstype="tmpfs", data="mode=755")]
        for h in self.hierarchies:
            if not h[0].startswith("/sys/fs/cgroup/"):
                continue
            sub = dest + "/" + os.path.basename(h[0])
            out.extend(self._one(sub, h, base | (opts.flags & MS_RDONLY)))
        if opts.flags & MS_RDONLY:
            out.append(ins.mount("tmpfs", dest, MS_REMOUNT | MS_RDONLY | base, ins.TGT_EXISTING,
                                 f"remount {dest} read-only", fstype="tmpfs", data="mode=755"))
        return out

    def _one(self, dest: str, h: tuple[str, str, str, str], flags: int) -> list[Op]:
        _mountpoint, fstype, superopts, source = h
        if self.new_cgroupns:
            data = ",".join(o for o in superopts.split(",") if o not in ("rw", "ro"))
            return [ins.mount(fstype, dest, flags, ins.TGT_DIR, f"mount {fstype} to {dest}",
                              fstype=fstype, data=data)]
        out = [ins.mount(source, dest, MS_BIND | MS_REC, ins.TGT_DIR, f"bind {source} to {dest}")]
        if flags:
            out.append(ins.mount(None, dest, MS_BIND | MS_REMOUNT | flags, ins.TGT_EXISTING,
                                 f"remount {dest}"))
        return out
