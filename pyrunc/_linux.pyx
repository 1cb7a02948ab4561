# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The runtime's own syscalls that Python's os module lacks: the new mount API (open_tree,
mount_setattr), files read inside a container's root (openat2), pidfds, SCM_RIGHTS over the
init's sync socket, mount/umount, statfs, RLIMIT_NOFILE.

Thin wrappers, each raising OSError(errno) as the syscall fails. They run in the runtime's
process, never in a container's init (that is pyrunc._executor); `pyrunc.syscall.Linux` calls
those the no-root tests replace. The C is pyrunc/csrc/*.c.
"""

from libc.stdlib cimport malloc, free
from libc.string cimport strerror
from libc.errno cimport errno

include "csrc/pyrunc.pxi"


def idmapped_tree(bytes source, int userns_fd, bint recursive_tree, bint recursive_map) -> int:
    """A detached copy of `source`, idmapped through `userns_fd`; the init moves it in place.

    Made here, in the runtime's namespaces: mount_setattr(MOUNT_ATTR_IDMAP) needs privilege over
    the filesystem, which a process inside the container's user namespace lacks.
    """
    cdef int tree = pyrunc_open_tree_clone(source, recursive_tree)
    cdef int err
    if tree < 0:
        raise OSError(errno, "open_tree: " + strerror(errno).decode())
    if pyrunc_mount_setattr(tree, MOUNT_ATTR_IDMAP, 0, recursive_map, userns_fd) < 0:
        err = errno
        close(tree)
        raise OSError(err, "mount_setattr(MOUNT_ATTR_IDMAP): " + strerror(err).decode())
    return tree


def read_in_root(bytes root, bytes path, int limit=1 << 20):
    """A regular file of the container's rootfs as bytes, or None when it is missing or
    unusable (S12): resolved inside the root (RESOLVE_IN_ROOT, so the image's symlinks work
    as they do inside the container, and never lead out), first as O_PATH so that a device
    node, FIFO or socket there is never opened, only seen by fstat; a regular file is then
    reopened O_NONBLOCK through our own fd and read only if it is at most `limit` bytes."""
    cdef int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC)
    cdef int pathfd, fd
    cdef char *buf
    cdef char fdpath[64]
    cdef long n, got = 0
    if rootfd < 0:
        raise OSError(errno, "open " + root.decode(errors="replace"))
    pathfd = pyrunc_open_in_root(rootfd, path, O_PATH)
    close(rootfd)
    if pathfd < 0:
        return None
    try:
        if pyrunc_regular_size(pathfd) < 0 or pyrunc_regular_size(pathfd) > limit:
            return None
        pyrunc_fd_path(fdpath, sizeof(fdpath), pathfd)
        fd = open(fdpath, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    finally:
        close(pathfd)
    if fd < 0:
        return None
    buf = <char *>malloc(limit + 1)
    try:
        if pyrunc_regular_size(fd) < 0:
            return None
        while got <= limit:
            n = read(fd, buf + got, limit + 1 - got)
            if n <= 0:
                break
            got += n
        if got > limit:
            return None  # it grew meanwhile
        return buf[:got]
    finally:
        free(buf)
        close(fd)


def statfs_type(bytes path) -> int:
    """statfs(2)'s f_type of `path` (the parent checks that a bind source is procfs)."""
    cdef long t = pyrunc_statfs_type(path)
    if t < 0:
        raise OSError(errno, strerror(errno).decode())
    return int(t)


def pidfd_open(int pid) -> int:
    cdef int fd = pyrunc_pidfd_open(pid)
    if fd < 0:
        raise OSError(errno, strerror(errno).decode())
    return fd


def raise_nofile():
    """Soft RLIMIT_NOFILE up to the hard limit (pyrunc.fdlimit): the caller's (soft, hard)
    when it was raised, else None."""
    cdef rlimit rl
    cdef rlimit up
    if getrlimit(7, &rl) < 0 or rl.rlim_cur >= rl.rlim_max or rl.rlim_max == <unsigned long>-1:
        return None
    up.rlim_cur = rl.rlim_max
    up.rlim_max = rl.rlim_max
    if setrlimit(7, &up) < 0:
        return None
    return (rl.rlim_cur, rl.rlim_max)


def set_nofile(unsigned long long soft, unsigned long long hard) -> None:
    cdef rlimit rl
    rl.rlim_cur = soft
    rl.rlim_max = hard
    setrlimit(7, &rl)


def pidfd_send_signal(int pidfd, int sig) -> None:
    if pyrunc_pidfd_send_signal(pidfd, sig) < 0:
        raise OSError(errno, strerror(errno).decode())


def recv_message(int sock):
    """(data, fd or -1): one sync message, with the fd it carries (SCM_RIGHTS)."""
    cdef char buf[8192]
    cdef int fd = -1
    cdef int n
    with nogil:
        n = pyrunc_recv_fd(sock, buf, sizeof(buf), &fd)
    if n < 0:
        raise OSError(errno, strerror(errno).decode())
    return buf[:n], fd


def send_fd(int sock, int fd) -> None:
    """One sendmsg with exactly one SCM_RIGHTS fd (what console-socket receivers expect)."""
    if pyrunc_send_fd(sock, fd) < 0:
        raise OSError(errno, strerror(errno).decode())


def mount_fs(bytes source, bytes target, bytes fstype, unsigned long flags, bytes data) -> None:
    """mount(2) in the runtime's own namespaces (the read-only interpreter of pyrunc.sealed)."""
    if mount(source, target, fstype, flags, <const char *>data) < 0:
        raise OSError(errno, "mount " + target.decode(errors="replace") + ": "
                      + strerror(errno).decode())


def umount_fs(bytes target, int flags) -> None:
    """umount2(2) in the runtime's own namespaces (mounts a container without a mount namespace
    made there, taken away by delete)."""
    if umount2(target, flags) < 0:
        raise OSError(errno, "umount " + target.decode(errors="replace") + ": "
                      + strerror(errno).decode())
