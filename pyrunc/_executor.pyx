# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The container init's executor: a clone of the runtime that runs a compiled plan, in C.

Python compiles a container into a list of operations (``pyrunc.plan``, made with the builders
of ``pyrunc.instructions``); ``spawn`` copies them into C structs, clones the init with the
requested namespaces and returns.  The cloned child runs ``child_main`` only: plain C, no
interpreter, no imports, so nothing from the container's rootfs can ever be executed as host
code; it executes each operation through the handler the table ``HANDLERS`` has for its code.
The child talks to the parent over a SOCK_SEQPACKET socketpair: ``SYNC`` points hand control to
Python (uid maps, cgroups, hooks), ``E`` messages carry one-line errors.  The C helpers it calls
are pyrunc/csrc/*.c; the runtime's own syscalls are ``pyrunc._linux``.
"""

from libc.stdlib cimport malloc, calloc, free
from libc.string cimport strlen, memcpy, memset, strerror, strchr
from libc.errno cimport errno, ENOENT, EEXIST, EINTR, EPERM, EACCES, ENOSYS, EBADF
from libc.stdio cimport snprintf

# the C helpers (pyrunc/csrc/*.c) and the system calls they come with
include "csrc/pyrunc.pxi"

# Operation codes and OP_MOUNT's target modes: generated from pyrunc/instructions.py (the one list of
# them; setup.py writes _ops.pxi before Cython runs). pyrunc.plan builds the list of operations,
# child_main executes it in order.
include "_ops.pxi"

cdef enum:
    MSG_MAX = 4096
    PATH_MAX = 4096
    MAX_SOURCES = 256


cdef struct Op:
    int code
    unsigned long long a, b, c, d, e, f, g
    char *s1
    char *s2
    char *s3
    char *s4
    char **v1
    char **v2
    unsigned int *ids
    int nids
    char *blob
    int nblob
    char *desc


cdef struct Ctx:
    int sock
    int rootfd
    int procfd            # the container's procfs root, verified (S14); -1 until needed
    int devnull
    int exec_fd
    int fifo_w
    int nsources
    int sources[MAX_SOURCES]
    int cwd_done
    char exec_path[PATH_MAX]


# ---------------------------------------------------------------------------------------------
# The child: everything below child_main runs without the interpreter.

cdef void child_fail(Ctx *ctx, const char *desc, int err) noexcept nogil:
    """Report 'desc: error' (Go's lower-case wording) to the parent and exit."""
    cdef char buf[MSG_MAX]
    cdef int n
    cdef const char *text
    buf[0] = b'E'
    buf[1] = 0
    if err == PYRUNC_EPROCFD:
        snprintf(buf + 2, MSG_MAX - 2, "%s: /proc is not the container's procfs (pyrunc mounts "
                 "through /proc/self/fd)", desc)
    elif err:
        text = strerror(err)
        n = snprintf(buf + 2, MSG_MAX - 2, "%s: %s", desc, text)
        # lower-case the first letter of the errno text, as runc prints it
        n = <int>strlen(desc) + 4
        if n < MSG_MAX and buf[n] >= b'A' and buf[n] <= b'Z':
            buf[n] = buf[n] + 32
    else:
        snprintf(buf + 2, MSG_MAX - 2, "%s", desc)
    send(ctx.sock, buf, 2 + strlen(buf + 2), MSG_NOSIGNAL)
    _exit(1)


cdef int child_sync(Ctx *ctx, const char *tag) noexcept nogil:
    """Tell the parent we reached `tag`; block until it answers 'C' (continue)."""
    if send(ctx.sock, tag, strlen(tag) + 1, MSG_NOSIGNAL) < 0:
        return -1
    return child_wait(ctx)


cdef int child_wait(Ctx *ctx) noexcept nogil:
    """Block until the parent answers 'C'; anything else (or its death) ends the child."""
    cdef char reply[16]
    cdef ssize_t n
    while True:
        n = read(ctx.sock, reply, sizeof(reply))
        if n < 0 and errno == EINTR:
            continue
        break
    if n <= 0 or reply[0] != b'C':
        # the parent died or gave up: nothing may outlive a failed create
        _exit(1)
    return 0


cdef int open_parent_in_root(Ctx *ctx, const char *path, char *last, int mode) noexcept nogil:
    """Open the directory holding `path` inside the root, creating missing directories.

    `last` receives the final component. Every step is resolved by openat2(RESOLVE_IN_ROOT), so a
    symlink in the rootfs can only ever point at something else inside it.
    """
    cdef char buf[PATH_MAX]
    cdef size_t n = strlen(path)
    cdef size_t i, start
    cdef int fd, nfd
    if n == 0 or n >= PATH_MAX:
        pyrunc_set_errno(22)
        return -1
    memcpy(buf, path, n + 1)
    # strip trailing slashes
    while n > 1 and buf[n - 1] == b'/':
        n -= 1
        buf[n] = 0
    i = n
    while i > 0 and buf[i - 1] != b'/':
        i -= 1
    memcpy(last, buf + i, n - i + 1)
    if i == 0:
        buf[0] = b'.'
        buf[1] = 0
    else:
        buf[i] = 0
    fd = pyrunc_open_in_root(ctx.rootfd, buf, O_PATH | O_DIRECTORY)
    if fd >= 0 or errno != ENOENT or mode == TGT_EXISTING:
        return fd
    # create what is missing, following symlinks inside the root
    return pyrunc_mkdirs_in_root(ctx.rootfd, buf, 0)


cdef int open_target(Ctx *ctx, const char *path, int mode) noexcept nogil:
    """An O_PATH fd for a mount target inside the root, created as `mode` asks."""
    return open_target_depth(ctx, path, mode, 0)


cdef int open_target_depth(Ctx *ctx, const char *path, int mode, int depth) noexcept nogil:
    cdef char last[PATH_MAX]
    cdef char link[PATH_MAX]
    cdef char resolved[PATH_MAX]
    cdef ssize_t n
    cdef int dirfd, fd
    fd = pyrunc_open_in_root(ctx.rootfd, path, O_PATH)
    if fd >= 0 or errno != ENOENT or mode == TGT_EXISTING:
        return fd
    dirfd = open_parent_in_root(ctx, path, last, mode)
    if dirfd < 0:
        return -1
    if mode == TGT_FILE:
        n = readlinkat(dirfd, last, link, PATH_MAX - 1)
        if n >= 0:
            # a dangling symlink: the file goes where it points, inside the root
            close(dirfd)
            if depth > 8:
                pyrunc_set_errno(ELOOP)
                return -1
            link[n] = 0
            if link[0] != b'/':
                # relative to the directory holding the link
                n = <ssize_t>strlen(path)
                while n > 0 and path[n - 1] == b'/':
                    n -= 1
                while n > 0 and path[n - 1] != b'/':
                    n -= 1
                snprintf(resolved, PATH_MAX, "%.*s%s", <int>n, path, link)
                return open_target_depth(ctx, resolved, mode, depth + 1)
            return open_target_depth(ctx, link, mode, depth + 1)
        fd = openat(dirfd, last, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0o644)
        if fd >= 0:
            close(fd)
        fd = pyrunc_open_in_root(dirfd, last, O_PATH | O_NOFOLLOW)
        close(dirfd)
        return fd
    close(dirfd)
    return pyrunc_mkdirs_in_root(ctx.rootfd, path, 0)


cdef int mount_on(int fd, const char *source, const char *fstype, unsigned long flags,
                   const char *data, bint self_source) noexcept nogil:
    """mount(2) onto the object `fd` names (through /proc/self/fd), then close `fd`, keeping
    mount's errno. `self_source` binds the object onto itself."""
    cdef char target[64]
    cdef const char *src = source
    cdef int ret, saved
    pyrunc_fd_path(target, sizeof(target), fd)
    if self_source:
        src = target
    if not pyrunc_fd_paths_ok():
        saved = errno  # PYRUNC_EPROCFD, or why /proc could not be opened (EMFILE, ...)
        close(fd)
        pyrunc_set_errno(saved)
        return -1
    ret = mount(src, target, fstype, flags, data)
    saved = errno
    close(fd)
    pyrunc_set_errno(saved)
    return ret


cdef int open_guarded_target(Ctx *ctx, Op *op, const char *path, unsigned long long mode
                             ) noexcept nogil:
    """open_target, plus the checks the plan asks for with TGT_NOT_PROC / TGT_ORDINARY (S14):
    a refusal ends the child with runc's wording."""
    cdef char msg[MSG_MAX]
    cdef int fd
    if mode & TGT_ORDINARY:
        # never through a symlink: the final component itself must be a directory
        fd = pyrunc_open_in_root(ctx.rootfd, path, O_PATH | O_NOFOLLOW)
        if fd < 0 and errno == ENOENT:
            fd = open_target(ctx, path, TGT_DIR)
            if fd < 0:
                return -1
            close(fd)
            fd = pyrunc_open_in_root(ctx.rootfd, path, O_PATH | O_NOFOLLOW)
        if fd < 0:
            return -1
        if pyrunc_is_dir(fd) != 1:
            close(fd)
            snprintf(msg, MSG_MAX, "%s: filesystem \"%s\" must be mounted on ordinary directory",
                     op.desc, op.s3 if op.s3 != NULL else path)
            child_fail(ctx, msg, 0)
    else:
        fd = open_target(ctx, path, <int>(mode & TGT_MODE_MASK))
        if fd < 0:
            return -1
    if (mode & TGT_NOT_PROC) and pyrunc_is_procfs(fd):
        close(fd)
        snprintf(msg, MSG_MAX, "%s: \"%s\" cannot be mounted because it is inside /proc",
                 op.desc, path)
        child_fail(ctx, msg, 0)
    return fd


cdef int do_mount(Ctx *ctx, Op *op) noexcept nogil:
    cdef int fd
    cdef char source[64]
    cdef const char *src = op.s1
    cdef int k = <int>op.c - 1
    if op.b == TGT_ABSOLUTE:
        return mount(op.s1, op.s2, op.s3, <unsigned long>op.a, op.s4)
    if k >= 0:
        # a bind source the runtime opened in our mount namespace with its own credentials
        # (one the user namespace may not reach); closed once mounted
        if k >= ctx.nsources or ctx.sources[k] < 0:
            pyrunc_set_errno(EBADF)
            return -1
        pyrunc_fd_path(source, sizeof(source), ctx.sources[k])
        src = source
    fd = open_guarded_target(ctx, op, op.s2, op.b)
    if fd >= 0 and mount_on(fd, src, op.s3, <unsigned long>op.a, op.s4, False) < 0:
        name_refused_option(ctx, op)
        fd = -1
    if k >= 0:
        close(ctx.sources[k])
        ctx.sources[k] = -1
    return -1 if fd < 0 else 0


cdef int do_recv_sources(Ctx *ctx, Op *op) noexcept nogil:
    cdef char byte[4]
    cdef int fd, i
    for i in range(<int>op.a):
        if i >= MAX_SOURCES or pyrunc_recv_fd(ctx.sock, byte, sizeof(byte), &fd) <= 0:
            return -1
        if fd < 0:
            pyrunc_set_errno(EBADF)
            return -1
        ctx.sources[i] = fd
        ctx.nsources = i + 1
    return 0


cdef void name_refused_option(Ctx *ctx, Op *op) noexcept nogil:
    """A mount failed with EINVAL: when one of its data options is what the filesystem refuses,
    the error names it (the kernel's EINVAL alone does not say which)."""
    cdef char option[512]
    cdef char msg[MSG_MAX]
    if errno != 22 or op.s4 == NULL or op.s3 == NULL:
        return
    if pyrunc_refused_option(op.s3, op.s4, option, sizeof(option)):
        snprintf(msg, MSG_MAX, "%s: option \"%s\" is not supported by %s", op.desc, option,
                 op.s3)
        child_fail(ctx, msg, 22)
    pyrunc_set_errno(22)


cdef int do_tmpfs(Ctx *ctx, Op *op) noexcept nogil:
    """A tmpfs at a target inside the root; the directory it covers gives it its mode and, with
    tmpcopyup, its content (read through an fd opened before the mount hides it)."""
    cdef int lower, fd, saved
    cdef char msg[MSG_MAX]
    lower = pyrunc_open_in_root(ctx.rootfd, op.s2, O_PATH | O_DIRECTORY)
    if lower < 0 and errno != ENOENT:
        return -1
    fd = open_guarded_target(ctx, op, op.s2, TGT_DIR | op.c)
    if fd >= 0 and mount_on(fd, op.s1, op.s3, <unsigned long>op.a, op.s4, False) < 0:
        name_refused_option(ctx, op)
        fd = -1
    if fd < 0:
        saved = errno
        if lower >= 0:
            close(lower)
        pyrunc_set_errno(saved)
        return -1
    if lower < 0:
        return 0
    if pyrunc_tmpfs_finish(ctx.rootfd, op.s2, lower, <int>op.b) < 0:
        saved = errno
        close(lower)
        snprintf(msg, MSG_MAX, "%s: %s %s", op.desc,
                 "copy the content of" if op.b else "set the mode of", op.s2)
        child_fail(ctx, msg, saved)
    close(lower)
    return 0


cdef int do_mount_setattr(Ctx *ctx, Op *op) noexcept nogil:
    cdef int fd, ret, saved
    fd = open_target(ctx, op.s1, TGT_EXISTING)
    if fd < 0:
        return -1
    ret = pyrunc_mount_setattr(fd, op.a, op.b, <int>op.c, -1)
    saved = errno
    close(fd)
    pyrunc_set_errno(saved)
    return ret


cdef int do_move_mount(Ctx *ctx, Op *op) noexcept nogil:
    """Attach a detached mount tree (made by the parent) at a target inside the root."""
    cdef int target, ret, saved
    target = open_guarded_target(ctx, op, op.s1, op.c)
    if target < 0:
        return -1
    ret = pyrunc_move_mount(<int>op.a, target)
    saved = errno
    close(target)
    close(<int>op.a)
    pyrunc_set_errno(saved)
    return ret


cdef int do_mknod(Ctx *ctx, Op *op) noexcept nogil:
    cdef char last[PATH_MAX]
    cdef int dirfd, ret, fd
    dirfd = open_parent_in_root(ctx, op.s1, last, TGT_DIR)
    if dirfd < 0:
        return -1
    ret = mknodat(dirfd, last, <mode_t>op.a, makedev(<unsigned int>op.b, <unsigned int>op.c))
    if ret < 0 and errno == EEXIST:
        # only the very node asked for may already be there
        ret = pyrunc_is_node(dirfd, last, <unsigned int>op.a, <unsigned int>op.b,
                             <unsigned int>op.c)
    if ret == 0:
        fd = openat(dirfd, last, O_PATH | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0:
            ret = -1
        else:
            # chmod/chown through the fd: the node we made, not whatever the name points at
            pyrunc_fd_path(last, sizeof(last), fd)
            ret = fchownat(AT_FDCWD, last, <uid_t>op.d, <gid_t>op.e, 0)
            if ret == 0:
                ret = chmod_path(last, <mode_t>(op.a & 0o7777))
            close(fd)
    close(dirfd)
    return ret


cdef int chmod_path(const char *path, mode_t mode) noexcept nogil:
    return chmod(path, mode)


cdef int do_symlink(Ctx *ctx, Op *op) noexcept nogil:
    cdef char last[PATH_MAX]
    cdef int dirfd, ret
    dirfd = open_parent_in_root(ctx, op.s2, last, TGT_DIR)
    if dirfd < 0:
        return -1
    ret = symlinkat(op.s1, dirfd, last)
    if ret < 0 and errno == EEXIST:
        ret = 0
    close(dirfd)
    return ret


cdef int hold_new_root(Ctx *ctx) noexcept nogil:
    """After any of the three pivot modes: "/" is the container's root, so hold it as
    ctx.rootfd (what later paths resolve against) and start from it."""
    if ctx.rootfd >= 0:
        close(ctx.rootfd)
    ctx.rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)
    pyrunc_fd_paths_reset()  # /proc/self/fd now resolves in the new root
    return chdir("/")


cdef int chroot_here(Ctx *ctx) noexcept nogil:
    """chroot into the cwd (the rootfs): the two pivot modes without pivot_root."""
    if chroot(".") < 0:
        return -1
    return hold_new_root(ctx)


cdef int do_pivot(Ctx *ctx, Op *op) noexcept nogil:
    cdef int oldroot, newroot
    if op.a == PIVOT_CHROOT:
        # no mount namespace of its own: the runtime's is shared, so only chroot (as runc)
        if chdir(op.s1) < 0:
            return -1
        return chroot_here(ctx)
    if op.a == PIVOT_MOVE:
        # --no-pivot: move the rootfs over "/" and chroot into it
        if chdir(op.s1) < 0:
            return -1
        if mount(op.s1, "/", NULL, MS_MOVE, NULL) < 0:
            return -1
        return chroot_here(ctx)
    oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC)
    if oldroot < 0:
        return -1
    newroot = open(op.s1, O_DIRECTORY | O_RDONLY | O_CLOEXEC)
    if newroot < 0:
        close(oldroot)
        return -1
    # pivot_root(".", "."): the old root ends up stacked on "/", then detached
    if fchdir(newroot) < 0 or pyrunc_pivot_root(".", ".") < 0:
        close(oldroot)
        close(newroot)
        return -1
    if fchdir(oldroot) < 0:
        return -1
    # keep the host from seeing our unmount, then drop the old root
    if mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0:
        return -1
    if umount2(".", MNT_DETACH) < 0:
        return -1
    close(oldroot)
    if fchdir(newroot) < 0:
        return -1
    close(newroot)
    return hold_new_root(ctx)


cdef int do_hide_mount(Ctx *ctx, Op *op) noexcept nogil:
    """--no-pivot leaves the runtime's mounts in the container's mount namespace: a full procfs
    or sysfs there would let the container mount a new one (the kernel allows it while one is
    fully visible), so each goes, or is covered with a tmpfs (runc's msMoveRoot)."""
    if mount(NULL, op.s1, NULL, MS_SLAVE | MS_REC, NULL) < 0:
        return 0 if errno == ENOENT else -1  # under one already taken away
    if umount2(op.s1, MNT_DETACH) == 0:
        return 0
    if errno != 22 and errno != EPERM:
        return -1
    return mount(b"tmpfs", op.s1, b"tmpfs", 0, NULL)


cdef int do_write_proc(Ctx *ctx, Op *op) noexcept nogil:
    """A sysctl: `s1` (a path below the procfs root) written through an fd that cannot have
    been redirected (S14). The root is the container's /proc, opened without following any
    symlink and checked to be the root of a procfs instance; the file is resolved strictly
    beneath it, crossing no mount (a bind over /proc/sys/net) and following no symlink."""
    cdef char msg[MSG_MAX]
    cdef int fd, ret
    cdef size_t n
    if ctx.procfd < 0:
        ctx.procfd = pyrunc_open_in_root_nosymlinks(ctx.rootfd, "/proc", O_PATH | O_DIRECTORY)
        if ctx.procfd < 0 or not pyrunc_is_procfs_root(ctx.procfd):
            if ctx.procfd >= 0:
                close(ctx.procfd)
                ctx.procfd = -1
            snprintf(msg, MSG_MAX, "%s: /proc is not a procfs mount of the container", op.desc)
            child_fail(ctx, msg, 0)
    fd = pyrunc_open_beneath(ctx.procfd, op.s1, O_WRONLY | O_NOCTTY)
    if fd < 0 and (errno == EXDEV or errno == ELOOP):
        snprintf(msg, MSG_MAX, "%s: refusing /proc/%s: its path crosses a mount or a symlink",
                 op.desc, op.s1)
        child_fail(ctx, msg, 0)
    if fd < 0:
        return -1
    if not pyrunc_is_procfs(fd):
        close(fd)
        pyrunc_set_errno(EPERM)
        return -1
    n = strlen(op.s2)
    ret = <int>write(fd, op.s2, n)
    close(fd)
    return 0 if ret == <int>n else -1


cdef int do_mask(Ctx *ctx, Op *op) noexcept nogil:
    cdef char source[64]
    cdef int fd
    fd = pyrunc_open_in_root(ctx.rootfd, op.s1, O_PATH | O_NOFOLLOW)
    if fd < 0:
        return 0 if errno == ENOENT else -1
    if pyrunc_is_dir(fd) == 1:
        return mount_on(fd, "tmpfs", "tmpfs", MS_RDONLY, "size=0k", False)
    if ctx.devnull < 0 or not pyrunc_is_devnull(ctx.devnull):
        close(fd)
        pyrunc_set_errno(EPERM)
        return -1
    pyrunc_fd_path(source, sizeof(source), ctx.devnull)
    return mount_on(fd, source, NULL, MS_BIND, NULL, False)


cdef int do_readonly(Ctx *ctx, Op *op) noexcept nogil:
    cdef int fd
    fd = pyrunc_open_in_root(ctx.rootfd, op.s1, O_PATH | O_NOFOLLOW)
    if fd < 0:
        return 0 if errno == ENOENT else -1
    if mount_on(fd, NULL, NULL, MS_BIND | MS_REC, NULL, True) < 0:
        return -1
    # reopen: the new bind mount sits on top of the old fd's mount
    fd = pyrunc_open_in_root(ctx.rootfd, op.s1, O_PATH | O_NOFOLLOW)
    if fd < 0:
        return -1
    return mount_on(fd, NULL, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL, True)


cdef int do_chdir(Ctx *ctx, Op *op) noexcept nogil:
    """chdir to the cwd, before the process drops its privileges (a=1: a permission error
    leaves it to the second try) and after (a=2: unless the first one succeeded), as runc."""
    cdef int ret
    if op.a == 2 and ctx.cwd_done:
        return 0
    ret = chdir_in_root(ctx, op)
    if op.a == 1:
        if ret == 0:
            ctx.cwd_done = 1
        elif errno == EACCES or errno == EPERM:
            return 0
    return ret


cdef int chdir_in_root(Ctx *ctx, Op *op) noexcept nogil:
    """chdir to the cwd resolved inside the root, never through a /proc magic link (S2), then
    check that the cwd really is inside the root (runc's CVE-2024-21626 check), or fail."""
    cdef char msg[MSG_MAX]
    cdef int fd, ret, saved
    fd = open_target(ctx, op.s1, TGT_DIR)
    if fd < 0 and (errno == EPERM or errno == ENOSYS):
        # a seccomp filter (loaded before this point without no_new_privs) refuses openat2:
        # walk the path by hand, never a plain chdir that would follow a magic link
        fd = pyrunc_walk_in_root(ctx.rootfd, op.s1)
    if fd < 0:
        return -1
    ret = fchdir(fd)
    saved = errno
    close(fd)
    pyrunc_set_errno(saved)
    if ret < 0:
        return -1
    ret = pyrunc_cwd_inside(ctx.rootfd)
    if ret == 1:
        return 0
    if ret == 0:
        snprintf(msg, MSG_MAX, "%s: the cwd is outside the container's root", op.desc)
        child_fail(ctx, msg, 0)
    return -1


cdef int do_rlimit(Ctx *ctx, Op *op) noexcept nogil:
    cdef rlimit rl
    rl.rlim_cur = <unsigned long>op.b
    rl.rlim_max = <unsigned long>op.c
    return setrlimit(<int>op.a, &rl)


cdef int do_drop_bounding(Ctx *ctx, Op *op) noexcept nogil:
    cdef unsigned long long cap
    for cap in range(op.b + 1):
        if not (op.a >> cap) & 1:
            if prctl(PR_CAPBSET_DROP, <unsigned long>cap, 0, 0, 0) < 0:
                return -1
    return 0


cdef int do_capset(Ctx *ctx, Op *op) noexcept nogil:
    cdef unsigned long long cap
    if pyrunc_capset(op.a, op.b, op.c) < 0:
        return -1
    if prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0:
        return -1
    for cap in range(op.e + 1):
        if (op.d >> cap) & 1:
            if prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, <unsigned long>cap, 0, 0) < 0:
                return -1
    return 0


cdef int do_setuser(Ctx *ctx, Op *op) noexcept nogil:
    # keep the permitted set across the uid change; OP_CAPSET then sets the final sets
    if prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0:
        return -1
    if setresgid(<gid_t>op.b, <gid_t>op.b, <gid_t>op.b) < 0:
        return -1
    if setresuid(<uid_t>op.a, <uid_t>op.a, <uid_t>op.a) < 0:
        return -1
    return prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0)


cdef void open_exec(Ctx *ctx, const char *name, int host_side) noexcept nogil:
    cdef char msg[MSG_MAX]
    ctx.exec_fd = pyrunc_open_exec(ctx.exec_path, host_side)
    if ctx.exec_fd < 0 and (errno == EPERM or errno == ENOSYS):
        return  # openat2 refused by a seccomp filter: execve by path (the exe is sealed)
    if ctx.exec_fd < 0:
        if errno == ELOOP:
            snprintf(msg, MSG_MAX, "exec: \"%s\": refusing to execute through a /proc magic link",
                     name)
            child_fail(ctx, msg, 0)
        snprintf(msg, MSG_MAX, "exec: \"%s\"", name)
        child_fail(ctx, msg, errno)


cdef int do_find_exec(Ctx *ctx, Op *op) noexcept nogil:
    """Look the executable up as Go's exec.LookPath does, with runc's error wording."""
    cdef char msg[MSG_MAX]
    cdef const char *name = op.s1
    cdef const char *p
    cdef const char *end
    cdef size_t dlen, nlen = strlen(name)
    cdef int r
    if strchr(name, b'/') != NULL:
        r = pyrunc_is_executable_file(name)
        if r == 1:
            snprintf(ctx.exec_path, PATH_MAX, "%s", name)
            open_exec(ctx, name, <int>op.a)
            return 0
        if r < 0:
            snprintf(msg, MSG_MAX, "exec: \"%s\": stat %s", name, name)
            child_fail(ctx, msg, errno)
        snprintf(msg, MSG_MAX, "exec: \"%s\"", name)
        child_fail(ctx, msg, EACCES)
    p = op.s2
    while p != NULL and p[0] != 0:
        end = strchr(p, b':')
        dlen = <size_t>(end - p) if end != NULL else strlen(p)
        if dlen == 0:
            snprintf(ctx.exec_path, PATH_MAX, "./%s", name)
        else:
            snprintf(ctx.exec_path, PATH_MAX, "%.*s/%s", <int>dlen, p, name)
        if pyrunc_is_executable_file(ctx.exec_path) == 1:
            if ctx.exec_path[0] != b'/':
                # Go's LookPath (so runc) refuses a match found through a relative PATH entry
                snprintf(msg, MSG_MAX, "exec: \"%s\": cannot run executable found relative to "
                         "current directory", name)
                child_fail(ctx, msg, 0)
            open_exec(ctx, name, <int>op.a)
            return 0
        if end == NULL:
            break
        p = end + 1
    snprintf(msg, MSG_MAX, "exec: \"%s\": executable file not found in $PATH", name)
    child_fail(ctx, msg, 0)
    return -1  # not reached: child_fail exits


cdef int do_wait_start(Ctx *ctx, Op *op) noexcept nogil:
    """Block on the exec fifo until `start` opens it for reading, then tell it we go on.

    The init holds only an O_PATH fd of the fifo itself (no directory of the host, S2) and
    reopens it for writing through its own /proc/self/fd.
    """
    cdef int fd
    cdef char path[64]
    pyrunc_fd_path(path, sizeof(path), <int>op.a)
    while True:
        fd = open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 and errno == EINTR:
            continue
        break
    if fd < 0:
        return -1
    if not pyrunc_same_file(fd, <int>op.a):
        close(fd)
        pyrunc_set_errno(EPERM)
        return -1
    close(<int>op.a)
    if write(fd, b"0", 1) != 1:
        close(fd)
        return -1
    # fd stays open: it closes on execve, which is how `start` knows the process runs (a
    # startContainer hook's failure is written to it first)
    ctx.fifo_w = fd
    return 0


cdef int do_hook(Ctx *ctx, Op *op) noexcept nogil:
    """A startContainer hook (runtime.md: in the container, after start, before the user
    process); a failure ends the init, told to `start` through the exec fifo and on stderr."""
    cdef int status = 0
    cdef size_t outlen = 0
    cdef char msg[MSG_MAX]
    cdef int n
    cdef int i
    if pyrunc_run_hook(op.s1, op.v1, op.v2, op.s2, op.s3, <int>op.a, &status, &outlen) < 0:
        n = snprintf(msg, MSG_MAX, "E%s: %s", op.desc, strerror(errno))
    elif status == 0:
        return 0
    elif status == -1:
        n = snprintf(msg, MSG_MAX, "E%s did not finish within %ds", op.desc, <int>op.a)
    elif (status & 0x7f) != 0:
        n = snprintf(msg, MSG_MAX, "E%s was killed by signal %d", op.desc, status & 0x7f)
    else:
        n = snprintf(msg, MSG_MAX, "E%s failed with status %d", op.desc, (status >> 8) & 0xff)
    if n > 0 and n < MSG_MAX - 4 and outlen > 0:
        for i in range(<int>outlen):
            if pyrunc_hook_out[i] == b'\n' or pyrunc_hook_out[i] == b'\t':
                pyrunc_hook_out[i] = b' '
        snprintf(msg + n, MSG_MAX - n, ": %s", pyrunc_hook_out)
    if ctx.fifo_w >= 0:
        write(ctx.fifo_w, msg, strlen(msg))
    n = <int>strlen(msg)
    msg[n] = b'\n'
    write(2, msg + 1, n)
    _exit(1)
    return -1


cdef int do_close_others(Ctx *ctx, Op *op) noexcept nogil:
    """Close every fd from `a` up but the ones the plan still needs (and the sync socket)."""
    cdef unsigned int keep[256]
    cdef int n = 0, i, j
    cdef unsigned int tmp, first = <unsigned int>op.a
    keep[n] = <unsigned int>ctx.sock
    n += 1
    for i in range(op.nids):
        if n < 255:
            keep[n] = op.ids[i]
            n += 1
    for i in range(n):
        for j in range(i + 1, n):
            if keep[j] < keep[i]:
                tmp = keep[i]
                keep[i] = keep[j]
                keep[j] = tmp
    for i in range(n):
        if keep[i] < first:
            continue
        if keep[i] > first:
            pyrunc_close_range(first, keep[i] - 1)
        first = keep[i] + 1
    return pyrunc_close_range(first, 0xFFFFFFFF)


cdef int do_exec(Ctx *ctx, Op *op) noexcept nogil:
    cdef char msg[MSG_MAX]
    cdef int err
    # through the fd resolved by FIND_EXEC; a script needs its path (/dev/fd/N is gone by then),
    # and a seccomp filter may allow execve but not execveat
    if ctx.exec_fd >= 0:
        pyrunc_execveat(ctx.exec_fd, op.v1, op.v2)
        if errno == ENOENT or errno == EPERM or errno == ENOSYS:
            execve(ctx.exec_path, op.v1, op.v2)
    else:
        execve(ctx.exec_path, op.v1, op.v2)
    err = errno
    # after `start` nobody listens on the sync socket: say it on the container's stderr
    snprintf(msg, MSG_MAX, "pyrunc: exec %s: %s\n", ctx.exec_path, strerror(err))
    write(2, msg, strlen(msg))
    _exit(126 if err == EACCES or err == EPERM else 127)
    return -1


# The operations whose handler is one call: each a line of the table below, as the elif chain
# they replace had them.

cdef int do_close(Ctx *ctx, Op *op) noexcept nogil:
    close(<int>op.a)
    return 0


cdef int do_setns(Ctx *ctx, Op *op) noexcept nogil:
    cdef int ret = setns(<int>op.a, <int>op.b)
    close(<int>op.a)
    return ret


cdef int do_sync(Ctx *ctx, Op *op) noexcept nogil:
    return child_sync(ctx, op.s1)


cdef int do_unshare(Ctx *ctx, Op *op) noexcept nogil:
    return unshare(<int>op.a)


cdef int do_root(Ctx *ctx, Op *op) noexcept nogil:
    ctx.rootfd = open(op.s1, O_PATH | O_DIRECTORY | O_CLOEXEC)
    return -1 if ctx.rootfd < 0 else 0


cdef int do_hostname(Ctx *ctx, Op *op) noexcept nogil:
    return sethostname(op.s1, strlen(op.s1))


cdef int do_domainname(Ctx *ctx, Op *op) noexcept nogil:
    return setdomainname(op.s1, strlen(op.s1))


cdef int do_loopback(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_loopback_up()


cdef int do_no_new_privs(Ctx *ctx, Op *op) noexcept nogil:
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


cdef int do_dumpable(Ctx *ctx, Op *op) noexcept nogil:
    return prctl(PR_SET_DUMPABLE, <int>op.a, 0, 0, 0)


cdef int do_setgroups(Ctx *ctx, Op *op) noexcept nogil:
    return setgroups(<size_t>op.nids, op.ids)


cdef int do_umask(Ctx *ctx, Op *op) noexcept nogil:
    umask(<mode_t>op.a)
    return 0


cdef int do_ready(Ctx *ctx, Op *op) noexcept nogil:
    return child_sync(ctx, "ready")


cdef int do_cloexec_from(Ctx *ctx, Op *op) noexcept nogil:
    if pyrunc_close_range_cloexec(<unsigned int>op.a) < 0:
        if errno == EPERM or errno == ENOSYS:
            return 0  # a filter refuses close_range: the other fds were closed at the start
        return -1
    return 0


cdef int do_open_devnull(Ctx *ctx, Op *op) noexcept nogil:
    """The container's own /dev/null, checked to be the real char device 1:3 (S7)."""
    ctx.devnull = pyrunc_open_in_root(ctx.rootfd, "/dev/null", O_PATH | O_NOFOLLOW)
    if ctx.devnull >= 0 and not pyrunc_is_devnull(ctx.devnull):
        close(ctx.devnull)
        ctx.devnull = -1
        pyrunc_set_errno(EPERM)
    if ctx.devnull >= 0:
        return pyrunc_reopen_stdio(ctx.devnull)
    if op.a:  # masked paths need it; stdio alone does not
        return -1
    return 0


cdef int do_setsid(Ctx *ctx, Op *op) noexcept nogil:
    return 0 if setsid() >= 0 else -1


cdef int do_remount_root(Ctx *ctx, Op *op) noexcept nogil:
    return mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | <unsigned long>op.a, NULL)


cdef int do_set_propagation(Ctx *ctx, Op *op) noexcept nogil:
    return mount(NULL, op.s1, NULL, <unsigned long>op.a, NULL)


cdef int do_keyring(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_join_session_keyring(op.s1)


cdef int do_console(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_setup_console(ctx.rootfd, <int>op.a, <unsigned short>op.b, <unsigned short>op.c)


cdef int do_dup2(Ctx *ctx, Op *op) noexcept nogil:
    return dup2(<int>op.a, <int>op.b)


cdef int do_scheduler(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_sched_setattr(<unsigned int>op.a, op.b, <int>op.c, <unsigned int>op.d, op.e,
                                op.f, op.g)


cdef int do_ioprio(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_ioprio_set(<int>op.a)


cdef int do_affinity(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_set_affinity(op.ids, op.nids)


cdef int do_mempolicy(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_set_mempolicy(<int>op.a, op.ids, op.nids)


cdef int do_personality(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_personality(<unsigned long>op.a)


cdef int do_seccomp(Ctx *ctx, Op *op) noexcept nogil:
    cdef int ret = pyrunc_load_seccomp(op.blob, op.nblob, <unsigned int>op.a)
    if ret >= 0 and (op.a & SECCOMP_FILTER_FLAG_NEW_LISTENER):
        # the notify fd goes to the runtime, which hands it to the seccomp agent
        ret = pyrunc_send_fd(ctx.sock, ret)
        if ret == 0:
            ret = child_wait(ctx)
    return -1 if ret < 0 else 0


cdef int do_fix_stdio(Ctx *ctx, Op *op) noexcept nogil:
    return pyrunc_fix_stdio(<unsigned int>op.a)


# ---------------------------------------------------------------------------------------------
# The dispatch: one handler per operation code, indexed by the code. Filled once when the
# extension is imported (the init is a clone of the parent, so it has the table);
# tests/test_ops.py holds it to instructions.py's codes.

ctypedef int (*Handler)(Ctx *ctx, Op *op) noexcept nogil

cdef enum:
    N_CODES = 64  # above every OP_ code: checked below, before the table is filled

if max([v for k, v in op_codes().items() if k.startswith("OP_")]) >= N_CODES:
    raise ImportError("pyrunc._executor: an operation code is >= N_CODES: raise N_CODES")

cdef Handler HANDLERS[N_CODES]
HANDLERS[OP_CLOSE] = do_close
HANDLERS[OP_SETNS] = do_setns
HANDLERS[OP_SYNC] = do_sync
HANDLERS[OP_UNSHARE] = do_unshare
HANDLERS[OP_MOUNT] = do_mount
HANDLERS[OP_ROOT] = do_root
HANDLERS[OP_MKNOD] = do_mknod
HANDLERS[OP_SYMLINK] = do_symlink
HANDLERS[OP_PIVOT] = do_pivot
HANDLERS[OP_HOSTNAME] = do_hostname
HANDLERS[OP_DOMAINNAME] = do_domainname
HANDLERS[OP_WRITE_PROC] = do_write_proc
HANDLERS[OP_LOOPBACK] = do_loopback
HANDLERS[OP_MASK] = do_mask
HANDLERS[OP_READONLY] = do_readonly
HANDLERS[OP_RLIMIT] = do_rlimit
HANDLERS[OP_NO_NEW_PRIVS] = do_no_new_privs
HANDLERS[OP_DUMPABLE] = do_dumpable
HANDLERS[OP_SETGROUPS] = do_setgroups
HANDLERS[OP_SETUSER] = do_setuser
HANDLERS[OP_DROP_BOUNDING] = do_drop_bounding
HANDLERS[OP_CAPSET] = do_capset
HANDLERS[OP_UMASK] = do_umask
HANDLERS[OP_CHDIR] = do_chdir
HANDLERS[OP_FIND_EXEC] = do_find_exec
HANDLERS[OP_READY] = do_ready
HANDLERS[OP_WAIT_START] = do_wait_start
HANDLERS[OP_CLOEXEC_FROM] = do_cloexec_from
HANDLERS[OP_EXEC] = do_exec
HANDLERS[OP_OPEN_DEVNULL] = do_open_devnull
HANDLERS[OP_SETSID] = do_setsid
HANDLERS[OP_REMOUNT_ROOT] = do_remount_root
HANDLERS[OP_SET_PROPAGATION] = do_set_propagation
HANDLERS[OP_CONSOLE] = do_console
HANDLERS[OP_DUP2] = do_dup2
HANDLERS[OP_SCHEDULER] = do_scheduler
HANDLERS[OP_IOPRIO] = do_ioprio
HANDLERS[OP_AFFINITY] = do_affinity
HANDLERS[OP_MEMPOLICY] = do_mempolicy
HANDLERS[OP_PERSONALITY] = do_personality
HANDLERS[OP_SECCOMP] = do_seccomp
HANDLERS[OP_MOUNT_SETATTR] = do_mount_setattr
HANDLERS[OP_TMPFS] = do_tmpfs
HANDLERS[OP_RECV_SOURCES] = do_recv_sources
HANDLERS[OP_HIDE_MOUNT] = do_hide_mount
HANDLERS[OP_HOOK] = do_hook
HANDLERS[OP_FIX_STDIO] = do_fix_stdio
HANDLERS[OP_MOVE_MOUNT] = do_move_mount
HANDLERS[OP_CLOSE_OTHERS] = do_close_others
HANDLERS[OP_KEYRING] = do_keyring


def handled_codes():
    """The codes the table has a handler for (tests/test_ops.py: every one of instructions.py)."""
    return [code for code in range(N_CODES) if HANDLERS[code] != NULL]


cdef void child_main(Op *ops, int nops, int sock) noexcept nogil:
    cdef Ctx ctx
    cdef Op *op
    cdef int i
    ctx.sock = sock
    ctx.rootfd = -1
    ctx.procfd = -1
    ctx.devnull = -1
    ctx.exec_fd = -1
    ctx.exec_path[0] = 0
    ctx.cwd_done = 0
    ctx.fifo_w = -1
    ctx.nsources = 0
    # nothing in the container may ptrace us or read our memory before execve (S1, S6)
    if prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0:
        child_fail(&ctx, "prctl(PR_SET_DUMPABLE)", errno)
    umask(0)
    pyrunc_reset_signals()
    for i in range(nops):
        op = &ops[i]
        if HANDLERS[op.code](&ctx, op) < 0:
            child_fail(&ctx, op.desc, errno)
    child_fail(&ctx, "init: the plan ended without exec", 0)
    _exit(1)


# ---------------------------------------------------------------------------------------------
# The parent side: the plan copied into C structs, the clone.

cdef char *dup_bytes(object value) except? NULL:
    cdef bytes b
    cdef char *out
    if value is None:
        return NULL
    b = value.encode() if isinstance(value, str) else bytes(value)
    if b"\0" in b:
        raise ValueError("string contains a NUL byte: %r" % (b[:40],))
    out = <char *>malloc(len(b) + 1)
    if out == NULL:
        raise MemoryError()
    memcpy(out, <char *>b, len(b))
    out[len(b)] = 0
    return out


cdef char **dup_vector(object values) except? NULL:
    cdef char **out
    cdef Py_ssize_t i, n
    if values is None:
        return NULL
    n = len(values)
    out = <char **>calloc(n + 1, sizeof(char *))
    if out == NULL:
        raise MemoryError()
    for i in range(n):
        out[i] = dup_bytes(values[i])
    return out


cdef void free_vector(char **v) noexcept:
    cdef int i = 0
    if v == NULL:
        return
    while v[i] != NULL:
        free(v[i])
        i += 1
    free(v)


cdef void free_ops(Op *ops, int n) noexcept:
    cdef int i
    for i in range(n):
        free(ops[i].s1)
        free(ops[i].s2)
        free(ops[i].s3)
        free(ops[i].s4)
        free(ops[i].desc)
        free_vector(ops[i].v1)
        free_vector(ops[i].v2)
        free(ops[i].ids)
        free(ops[i].blob)
    free(ops)


cdef unsigned long long as_u64(object v):
    return <unsigned long long>(int(v) & 0xFFFFFFFFFFFFFFFF)


cdef int socket_pair(int *sv) except -1:
    """The runtime's end and the init's end of their SOCK_SEQPACKET channel."""
    if socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0:
        raise OSError(errno, "socketpair: " + strerror(errno).decode())
    return 0


cdef Op *build_ops(list plan) except NULL:
    cdef Op *ops = <Op *>calloc(len(plan) + 1, sizeof(Op))
    cdef Op *op
    cdef int i, j
    if ops == NULL:
        raise MemoryError()
    try:
        for i, item in enumerate(plan):
            op = &ops[i]
            code, desc, nums, strs, argv, envp, ids = item
            if not 0 <= code < N_CODES or HANDLERS[code] == NULL:
                raise ValueError(f"{desc}: unknown operation {code}")
            op.code = code
            op.desc = dup_bytes(desc)
            nums = tuple(nums) + (0,) * (7 - len(nums))
            op.a = as_u64(nums[0])
            op.b = as_u64(nums[1])
            op.c = as_u64(nums[2])
            op.d = as_u64(nums[3])
            op.e = as_u64(nums[4])
            op.f = as_u64(nums[5])
            op.g = as_u64(nums[6])
            strs = tuple(strs) + (None,) * (4 - len(strs))
            op.s1 = dup_bytes(strs[0])
            op.s2 = dup_bytes(strs[1])
            op.s3 = dup_bytes(strs[2])
            op.s4 = dup_bytes(strs[3])
            op.v1 = dup_vector(argv)
            op.v2 = dup_vector(envp)
            if isinstance(ids, bytes):
                op.nblob = len(ids)
                op.blob = <char *>malloc(len(ids) + 1)
                memcpy(op.blob, <char *>ids, len(ids))
            elif ids:
                op.nids = len(ids)
                op.ids = <unsigned int *>malloc(len(ids) * sizeof(unsigned int))
                for j in range(len(ids)):
                    op.ids[j] = <unsigned int>ids[j]
    except BaseException:
        free_ops(ops, len(plan))
        raise
    return ops


def spawn(list plan, unsigned long clone_flags, int join_pid_fd=-1, int join_time_fd=-1,
          bytes time_offsets=None, int join_user_fd=-1):
    """Clone the container init to execute `plan`; returns (host pid, parent's socket fd).

    `join_pid_fd` is a pid namespace to create the init in: setns(CLONE_NEWPID) only affects
    children, so the parent enters it just around the clone and goes back. Time namespaces work
    the same way (`join_time_fd`, or a new one with `time_offsets` written before the clone).

    `join_user_fd` (an unprivileged caller: joining a pid namespace needs CAP_SYS_ADMIN over it,
    which only its user namespace gives): an intermediate process joins that user namespace,
    then the pid namespace, and clones the process with CLONE_PARENT, so that it is still our
    child; the plan must not join the user namespace again.

    A plan it cannot copy into C (an unknown code, a NUL in a string) raises ValueError before
    anything is made: no fd, no process.
    """
    if join_user_fd >= 0:
        return spawn_via_userns(plan, clone_flags, join_user_fd, join_pid_fd)
    cdef int sv[2]
    cdef Op *ops
    cdef int n = len(plan)
    cdef long pid = -1
    cdef int own_pid_ns = -1
    cdef int own_time_ns = -1
    cdef int err = 0
    sv[0] = sv[1] = -1
    ops = build_ops(plan)  # first: a plan it cannot copy raises before any fd is made
    try:
        socket_pair(sv)
        if join_pid_fd >= 0:
            own_pid_ns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC)
            if own_pid_ns < 0 or setns(join_pid_fd, CLONE_NEWPID) < 0:
                raise OSError(errno, "setns(pid): " + strerror(errno).decode())
        if join_time_fd >= 0 or time_offsets is not None:
            own_time_ns = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC)
            if own_time_ns < 0:
                raise OSError(errno, "open time namespace: " + strerror(errno).decode())
            if join_time_fd >= 0:
                if setns(join_time_fd, CLONE_NEWTIME) < 0:
                    raise OSError(errno, "setns(time): " + strerror(errno).decode())
            else:
                if unshare(CLONE_NEWTIME) < 0:
                    raise OSError(errno, "unshare(time): " + strerror(errno).decode())
                write_offsets(time_offsets)
        with nogil:
            pid = pyrunc_raw_clone(clone_flags)
            if pid == 0:
                close(sv[0])
                child_main(ops, n, sv[1])
                _exit(1)
            err = errno
        if pid < 0:
            raise OSError(err, "clone: " + strerror(err).decode())
    except BaseException:
        if sv[0] >= 0:
            close(sv[0])
        raise
    finally:
        # back in our own namespaces for children, whatever failed after we left them
        if own_pid_ns >= 0:
            setns(own_pid_ns, CLONE_NEWPID)
            close(own_pid_ns)
        if own_time_ns >= 0:
            setns(own_time_ns, CLONE_NEWTIME)
            close(own_time_ns)
        free_ops(ops, n)
        if sv[1] >= 0:
            close(sv[1])
    return int(pid), sv[0]


cdef spawn_via_userns(list plan, unsigned long clone_flags, int user_fd, int pid_fd):
    cdef int sv[2]
    cdef int pp[2]
    cdef Op *ops
    cdef int n = len(plan)
    cdef long mid
    cdef long pid = -1
    cdef long got
    cdef int err = 0
    ops = build_ops(plan)  # first: a plan it cannot copy raises before any fd is made
    try:
        socket_pair(sv)
        try:
            socket_pair(pp)
        except BaseException:
            close(sv[0])
            close(sv[1])
            raise
    except BaseException:
        free_ops(ops, n)
        raise
    try:
        with nogil:
            mid = pyrunc_raw_clone(0)
            if mid == 0:
                close(sv[0])
                close(pp[0])
                if setns(user_fd, CLONE_NEWUSER) < 0:
                    pid = -errno
                elif pid_fd >= 0 and setns(pid_fd, CLONE_NEWPID) < 0:
                    pid = -errno
                else:
                    pid = pyrunc_raw_clone(clone_flags | 0x00008000)  # CLONE_PARENT
                    if pid == 0:
                        close(pp[1])
                        close(user_fd)
                        if pid_fd >= 0:
                            close(pid_fd)
                        child_main(ops, n, sv[1])
                        _exit(1)
                    if pid < 0:
                        pid = -errno
                write(pp[1], &pid, sizeof(long))
                _exit(0)
            err = errno
    finally:
        free_ops(ops, n)
        close(sv[1])
        close(pp[1])
    if mid < 0:
        close(pp[0])
        close(sv[0])
        raise OSError(err, "clone: " + strerror(err).decode())
    while True:
        # a signal with a Python handler (installed without SA_RESTART) interrupts the read
        got = read(pp[0], &pid, sizeof(long))
        if got < 0 and errno == EINTR:
            continue
        break
    close(pp[0])
    # reaped here, not by os.waitpid: a Python handler raising there would lose sv[0] and
    # leave the init waiting on it for ever
    while waitpid(<int>mid, NULL, 0) < 0 and errno == EINTR:
        pass
    if got != sizeof(long) or pid < 0:
        close(sv[0])
        err = <int>-pid if got == sizeof(long) else 0
        raise OSError(err, "join the container's namespaces: " + strerror(err).decode())
    return int(pid), sv[0]


cdef write_offsets(bytes offsets):
    """/proc/self/timens_offsets: only writable before a process enters the new namespace.

    The runtime's own /proc/self, before any container process exists: nothing can stand in
    the way (S4)."""
    cdef int fd
    if not offsets:
        return
    fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC)
    if fd < 0:
        raise OSError(errno, "open timens_offsets: " + strerror(errno).decode())
    if write(fd, <char *>offsets, len(offsets)) != len(offsets):
        err = errno
        close(fd)
        raise OSError(err, "write timens_offsets: " + strerror(err).decode())
    close(fd)
