"""The parent's syscalls, behind one replaceable object: the seam the no-root tests use.

Everything the runtime's own process does that needs root or reaches the host (cgroupfs and
procfs files, cgroup directories, the OOM eventfd, signals and pidfds, mounts, statfs, the
namespace files it joins, its RLIMIT_NOFILE, the effective ids) and the files it keeps (the
state store under --root: state.json written atomically and durably, the locks, the network
records) goes through `get()`, an instance of `Syscall`. The real one, `Linux`, calls `os`
and the wrappers of `pyrunc._linux`; tests install a recording fake with `replace()`
(tests/unit/fakes.py), as youki's `Syscall` trait and `TestHelperSyscall` do. The child's
syscalls (`pyrunc._executor`, in C) are not here: the parent only compiles its plan. Not
through it yet: the exec fifo (create's mkfifo, start's release of the init) and a network
attachment's own files, rtnetlink and nft calls; real-container tests cover those.

The hot commands import this module, so it imports nothing but `os` (no typing, no abc): the
interface is a plain class whose methods raise NotImplementedError. Paths are `str`; a method
raises OSError as the syscall fails, with the errno the kernel gave.
"""

from __future__ import annotations

import os

NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), linux/nsfs.h


class Syscall:
    """What the parent may ask of the kernel. Subclasses implement every method."""

    # --- host files: cgroupfs, procfs, sysfs ------------------------------------------------

    def read(self, path: str) -> bytes:
        """The whole content of a (small, kernel) file."""
        raise NotImplementedError

    def write(self, path: str, value: str) -> None:
        """One write(2) of `value` to an existing file (cgroup and /proc files want one)."""
        raise NotImplementedError

    def mkdir(self, path: str, mode: int) -> None:
        raise NotImplementedError

    def rmdir(self, path: str) -> None:
        raise NotImplementedError

    def isdir(self, path: str) -> bool:
        """False when missing or unreadable, as os.path.isdir."""
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def access(self, path: str, mode: int) -> bool:
        """access(2) with the real ids (os.R_OK, W_OK, X_OK): False when denied or missing."""
        raise NotImplementedError

    def subdirs(self, path: str) -> list[str]:
        """The names of the directories in `path` (symlinks not followed)."""
        raise NotImplementedError

    def listdir(self, path: str) -> list[str]:
        raise NotImplementedError

    def apply_device_program(self, cgroup_dir: str, code: bytes) -> None:
        """Load a cgroup-device eBPF program (`devices.encode`d) and attach it to a cgroup2
        directory (allow-multi). Raises PyruncError with the verifier's words."""
        raise NotImplementedError

    def readlink(self, path: str) -> str:
        raise NotImplementedError

    def oom_eventfd(self, memory_dir: str) -> int:
        """A non-blocking eventfd the kernel signals on each OOM of a v1 memory cgroup
        (registered through its cgroup.event_control against memory.oom_control)."""
        raise NotImplementedError

    def read_eventfd(self, fd: int) -> int:
        """An eventfd's counter (reset by the read); 0 when nothing is pending."""
        raise NotImplementedError

    # --- file descriptors: namespace files, the state store's own files ------------------

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        """open(2) with `os` flags (O_PATH, O_NOFOLLOW, ... as the caller asks)."""
        raise NotImplementedError

    def stat(self, path: str) -> os.stat_result:
        raise NotImplementedError

    def fstat(self, fd: int) -> os.stat_result:
        raise NotImplementedError

    def namespace_type(self, fd: int) -> int:
        """The CLONE_NEW* flag of the namespace an nsfs fd (not O_PATH) refers to
        (ioctl NS_GET_NSTYPE): a bind-mounted namespace file's /proc/self/fd link names the
        file, not the namespace, so only the kernel can say its type."""
        raise NotImplementedError

    def read_fd(self, fd: int, size: int) -> bytes:
        """One read(2) of at most `size` bytes; b"" at the end."""
        raise NotImplementedError

    def write_fd(self, fd: int, data: bytes | memoryview) -> int:
        """One write(2): the number of bytes written, which may be fewer than asked."""
        raise NotImplementedError

    def fsync(self, fd: int) -> None:
        raise NotImplementedError

    def rename(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def unlink(self, path: str) -> None:
        raise NotImplementedError

    def islink(self, path: str) -> bool:
        """True for a symbolic link (not followed); False when missing, as os.path.islink."""
        raise NotImplementedError

    def chmod(self, path: str, mode: int) -> None:
        raise NotImplementedError

    def makedirs(self, path: str, mode: int) -> None:
        """mkdir -p: the missing directories made, an existing one left as it is."""
        raise NotImplementedError

    def flock(self, fd: int, exclusive: bool, block: bool = True) -> None:
        """flock(2) LOCK_EX or LOCK_SH; BlockingIOError when `block` is False and another
        open file holds a conflicting lock."""
        raise NotImplementedError

    # --- processes ----------------------------------------------------------------------

    def kill(self, pid: int, sig: int) -> None:
        raise NotImplementedError

    def pidfd_open(self, pid: int) -> int:
        raise NotImplementedError

    def pidfd_send_signal(self, pidfd: int, sig: int) -> None:
        raise NotImplementedError

    def wait_readable(self, fd: int, timeout_ms: int) -> bool:
        """poll(2) for POLLIN (a pidfd: the process exited); False on timeout."""
        raise NotImplementedError

    def close(self, fd: int) -> None:
        raise NotImplementedError

    def geteuid(self) -> int:
        raise NotImplementedError

    def raise_nofile(self) -> tuple[int, int] | None:
        """RLIMIT_NOFILE's soft limit raised to the hard one: the (soft, hard) to put back,
        None when it was raised already."""
        raise NotImplementedError

    def set_nofile(self, soft: int, hard: int) -> None:
        raise NotImplementedError

    def getegid(self) -> int:
        raise NotImplementedError

    # --- mounts -------------------------------------------------------------------------

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        raise NotImplementedError

    def umount(self, target: str, flags: int) -> None:
        raise NotImplementedError

    def statfs_type(self, path: str) -> int:
        """f_type of statfs(2): the filesystem's magic number."""
        raise NotImplementedError

    def idmapped_tree(self, source: str, userns_fd: int, recursive_tree: bool,
                      recursive_map: bool) -> int:
        """open_tree(OPEN_TREE_CLONE) of `source` + mount_setattr(MOUNT_ATTR_IDMAP): the
        detached, id-mapped mount's fd."""
        raise NotImplementedError

    def read_in_root(self, root: str, path: str, limit: int) -> bytes | None:
        """A regular file of at most `limit` bytes, resolved with openat2(RESOLVE_IN_ROOT)
        below `root` (S12); None when missing, not regular or too big."""
        raise NotImplementedError


class Linux(Syscall):
    """The real kernel."""

    def read(self, path: str) -> bytes:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 65536)
            if len(data) < 65536:
                return data
            chunks = [data]
            while data:
                data = os.read(fd, 65536)
                chunks.append(data)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write(self, path: str, value: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def mkdir(self, path: str, mode: int) -> None:
        os.mkdir(path, mode)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def access(self, path: str, mode: int) -> bool:
        return os.access(path, mode)

    def subdirs(self, path: str) -> list[str]:
        with os.scandir(path) as it:
            return [e.name for e in it if e.is_dir(follow_symlinks=False)]

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def apply_device_program(self, cgroup_dir: str, code: bytes) -> None:
        from pyrunc.cgroups import bpf

        bpf.apply_device_program(cgroup_dir, code)

    def readlink(self, path: str) -> str:
        return os.readlink(path)

    def oom_eventfd(self, memory_dir: str) -> int:
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            ofd = os.open(memory_dir + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:
                ctl = os.open(memory_dir + "/cgroup.event_control", os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(ctl, f"{efd} {ofd}".encode())
                finally:
                    os.close(ctl)
            finally:
                os.close(ofd)  # the registration holds its own reference
        except BaseException:
            os.close(efd)
            raise
        return efd

    def read_eventfd(self, fd: int) -> int:
        try:
            return int.from_bytes(os.read(fd, 8), "little")
        except BlockingIOError:
            return 0

    def open(self, path: str, flags: int, mode: int = 0o600) -> int:
        return os.open(path, flags, mode)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(path)

    def fstat(self, fd: int) -> os.stat_result:
        return os.fstat(fd)

    def namespace_type(self, fd: int) -> int:
        import fcntl

        return fcntl.ioctl(fd, NS_GET_NSTYPE)

    def read_fd(self, fd: int, size: int) -> bytes:
        return os.read(fd, size)

    def write_fd(self, fd: int, data: bytes | memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def islink(self, path: str) -> bool:
        return os.path.islink(path)

    def chmod(self, path: str, mode: int) -> None:
        os.chmod(path, mode)

    def makedirs(self, path: str, mode: int) -> None:
        os.makedirs(path, mode, exist_ok=True)

    def flock(self, fd: int, exclusive: bool, block: bool = True) -> None:
        import fcntl  # a builtin module: only the commands that lock load it

        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
                    | (0 if block else fcntl.LOCK_NB))

    def kill(self, pid: int, sig: int) -> None:
        os.kill(pid, sig)

    def pidfd_open(self, pid: int) -> int:
        from pyrunc import _linux  # loaded on the first call that needs it

        return _linux.pidfd_open(pid)

    def pidfd_send_signal(self, pidfd: int, sig: int) -> None:
        from pyrunc import _linux  # loaded on the first call that needs it

        _linux.pidfd_send_signal(pidfd, sig)

    def wait_readable(self, fd: int, timeout_ms: int) -> bool:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout_ms))

    def close(self, fd: int) -> None:
        os.close(fd)

    def geteuid(self) -> int:
        return os.geteuid()

    def raise_nofile(self) -> tuple[int, int] | None:
        from pyrunc import _linux  # loaded on the first call that needs it

        return _linux.raise_nofile()

    def set_nofile(self, soft: int, hard: int) -> None:
        from pyrunc import _linux  # loaded on the first call that needs it

        _linux.set_nofile(soft, hard)

    def getegid(self) -> int:
        return os.getegid()

    def mount(self, source: str, target: str, fstype: str, flags: int, data: str) -> None:
        from pyrunc import _linux  # loaded on the first call that needs it

        _linux.mount_fs(source.encode(), target.encode(), fstype.encode(), flags, data.encode())

    def umount(self, target: str, flags: int) -> None:
        from pyrunc import _linux  # loaded on the first call that needs it

        _linux.umount_fs(target.encode(), flags)

    def statfs_type(self, path: str) -> int:
        from pyrunc import _linux  # loaded on the first call that needs it

        return _linux.statfs_type(path.encode())

    def idmapped_tree(self, source: str, userns_fd: int, recursive_tree: bool,
                      recursive_map: bool) -> int:
        from pyrunc import _linux  # loaded on the first call that needs it

        return _linux.idmapped_tree(source.encode(), userns_fd, recursive_tree, recursive_map)

    def read_in_root(self, root: str, path: str, limit: int) -> bytes | None:
        from pyrunc import _linux  # loaded on the first call that needs it

        return _linux.read_in_root(root.encode(), path.encode(), limit)


_current: Syscall = Linux()


def get() -> Syscall:
    """The syscalls in use: the real kernel unless a test replaced them."""
    return _current


def replace(new: Syscall) -> Syscall:
    """Use `new` from now on; returns the previous one (to put back)."""
    global _current
    old, _current = _current, new
    return old
