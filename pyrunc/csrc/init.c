/* The container init's compound steps, run in the child without the interpreter: the
   console, tmpfs copy-up, stdio, signals, startContainer hooks, the loopback device. */

#include "pyrunc.h"

#include <poll.h>
#include <termios.h>
#include <time.h>

int pyrunc_loopback_up(void) {
    struct ifreq ifr;
    int ret, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    ret = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (ret == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        ret = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return ret;
}

int pyrunc_reopen_stdio(int devnull) {
    /* runc's reOpenDevNull: stdio the runtime was given on a /dev/null (the host's) becomes
       the container's own, `devnull` (an O_PATH fd checked to be 1:3), read-write. Without
       /proc to reopen it through, the fds stay as they are. */
    char path[64];
    int fd, i, err = 0;
    if (!pyrunc_fd_paths_ok()) return 0;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", devnull);
    fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return 0;
    for (i = 0; i < 3 && !err; i++) {
        if (pyrunc_is_devnull(i) && dup3(fd, i, 0) < 0) err = errno;
    }
    close(fd);
    if (err) { errno = err; return -1; }
    return 0;
}

static void pyrunc_exit_on_signal(int sig) { _exit(128 + sig); }

void pyrunc_reset_signals(void) {
    /* Nothing of the runtime's signal set-up may reach the container (Python ignores
       SIGPIPE and SIGXFSZ, and ignored signals survive execve). Until execve, a catchable
       signal ends the init, as it ends runc's: handlers reset to the default at execve. */
    struct sigaction sa;
    sigset_t all;
    int sig;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pyrunc_exit_on_signal;
    for (sig = 1; sig < 32; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        if (sig == SIGCHLD || sig == SIGCONT || sig == SIGWINCH || sig == SIGURG) {
            signal(sig, SIG_DFL);
            continue;
        }
        sigaction(sig, &sa, NULL);
    }
    for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++) signal(sig, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

static int pyrunc_console_target(int rootfd) {
    /* The file to bind the pty over at /dev/console (CVE-2025-52565: never follow it).
       An existing regular file or character device is used as it is, through an O_PATH
       fd of the node itself (a device is never opened); a symlink, FIFO, socket or block
       device is removed and replaced by an empty file; a directory is refused. Returns the
       fd, -2 when there is no /dev or nothing can be made in it (a read-only rootfs
       without /dev/console: nothing to bind over, as before), -1 on a refusal. */
    struct open_how how;
    struct stat st;
    int fd, dev;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    dev = pyrunc_openat2(rootfd, "/dev", &how);
    if (dev < 0) return errno == ENOENT ? -2 : -1;
    if (pyrunc_is_dir(dev) != 1) { close(dev); errno = ENOTDIR; return -1; }
    fd = openat(dev, "console", O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        if (fstat(fd, &st) < 0) { int e = errno; close(fd); close(dev); errno = e; return -1; }
        if (S_ISREG(st.st_mode) || S_ISCHR(st.st_mode)) { close(dev); return fd; }
        close(fd);
        if (S_ISDIR(st.st_mode)) { close(dev); errno = EISDIR; return -1; }
        if (unlinkat(dev, "console", 0) < 0) { int e = errno; close(dev); errno = e; return -1; }
    } else if (errno != ENOENT) {
        int e = errno; close(dev); errno = e; return -1;
    }
    fd = openat(dev, "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC |
                O_NOCTTY, 0600);
    if (fd < 0 && errno == EROFS) {
        close(dev);
        return -2;
    }
    { int e = errno; close(dev); errno = e; }
    return fd;
}

int pyrunc_setup_console(int rootfd, int sock, unsigned short rows, unsigned short cols) {
    /* a pty from the container's own devpts: the master goes to the console socket, the
       peer becomes stdio, the controlling terminal and /dev/console */
    int master, slave, fd, unlock = 0;
    char src[64], dst[64];
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_RDWR | O_NOCTTY | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    master = pyrunc_openat2(rootfd, "/dev/ptmx", &how);
    if (master < 0) return -1;
    if (ioctl(master, TIOCSPTLCK, &unlock) < 0) goto fail;
    slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) goto fail;
    if (rows || cols) {
        struct winsize ws;
        memset(&ws, 0, sizeof(ws));
        ws.ws_row = rows; ws.ws_col = cols;
        if (ioctl(master, TIOCSWINSZ, &ws) < 0) goto fail;
    }
    if (pyrunc_send_fd(sock, master) < 0) goto fail;
    close(master);
    close(sock);
    /* /dev/console: the pty bound over it, never through a symlink */
    fd = pyrunc_console_target(rootfd);
    if (fd == -1) return -1;
    if (fd >= 0) {
        if (!pyrunc_fd_paths_ok()) { close(fd); return -1; }
        snprintf(src, sizeof(src), "/proc/self/fd/%d", slave);
        snprintf(dst, sizeof(dst), "/proc/self/fd/%d", fd);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0) { close(fd); return -1; }
        close(fd);
    }
    if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0) return -1;
    if (slave > 2) close(slave);
    return ioctl(0, TIOCSCTTY, 0);
fail:
    {
        int saved = errno;
        close(master);
        errno = saved;
    }
    return -1;
}

struct pyrunc_dirent64 {
    unsigned long long d_ino;
    long long d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};
static char pyrunc_copy_buf[65536];

static int pyrunc_copy_file(int srcdir, int dstdir, const char *name, const struct stat *st) {
    int in, out, ret = 0, e;
    ssize_t n, w;
    char *p;
    in = openat(srcdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (in < 0) return -1;
    out = openat(dstdir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 st->st_mode & 07777);
    if (out < 0) { e = errno; close(in); errno = e; return -1; }
    for (;;) {
        n = read(in, pyrunc_copy_buf, sizeof(pyrunc_copy_buf));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { if (n < 0) ret = -1; break; }
        p = pyrunc_copy_buf;
        while (n > 0) {
            w = write(out, p, (size_t)n);
            if (w < 0) { if (errno == EINTR) continue; ret = -1; break; }
            p += w; n -= w;
        }
        if (ret < 0) break;
    }
    if (ret == 0 && (fchown(out, st->st_uid, st->st_gid) < 0 ||
                     fchmod(out, st->st_mode & 07777) < 0))
        ret = -1;
    e = errno; close(in); close(out); errno = e;
    return ret;
}

static int pyrunc_copy_tree(int src, int dst, int depth) {
    /* tmpcopyup: the content of the directory `src` into the (new, empty) `dst`: files,
       directories, symlinks and device nodes with their modes and owners; no malloc, no
       path outside the two fds */
    char buf[4096], link[4096];
    long n, off;
    int dirfd, s2, d2, r, e;
    struct stat st;
    if (depth > 128) { errno = ELOOP; return -1; }
    dirfd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return -1;
    for (;;) {
        n = syscall(SYS_getdents64, dirfd, buf, sizeof(buf));
        if (n < 0) goto fail;
        if (n == 0) break;
        for (off = 0; off < n; ) {
            struct pyrunc_dirent64 *d = (struct pyrunc_dirent64 *)(buf + off);
            const char *name = d->d_name;
            off += d->d_reclen;
            if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
            if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) goto fail;
            switch (st.st_mode & S_IFMT) {
            case S_IFDIR:
                if (mkdirat(dst, name, 0700) < 0) goto fail;
                s2 = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (s2 < 0) goto fail;
                d2 = openat(dst, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (d2 < 0) { e = errno; close(s2); errno = e; goto fail; }
                r = pyrunc_copy_tree(s2, d2, depth + 1);
                if (r == 0 && (fchown(d2, st.st_uid, st.st_gid) < 0 ||
                               fchmod(d2, st.st_mode & 07777) < 0))
                    r = -1;
                e = errno; close(s2); close(d2); errno = e;
                if (r < 0) goto fail;
                break;
            case S_IFREG:
                if (pyrunc_copy_file(dirfd, dst, name, &st) < 0) goto fail;
                break;
            case S_IFLNK:
                r = (int)readlinkat(dirfd, name, link, sizeof(link) - 1);
                if (r < 0) goto fail;
                link[r] = 0;
                if (symlinkat(link, dst, name) < 0 ||
                    fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
                    goto fail;
                break;
            case S_IFCHR: case S_IFBLK: case S_IFIFO:
                if (mknodat(dst, name, st.st_mode, st.st_rdev) < 0 ||
                    fchownat(dst, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                    fchmodat(dst, name, st.st_mode & 07777, 0) < 0)
                    goto fail;
                break;
            default:  /* sockets are not copied */
                break;
            }
        }
    }
    close(dirfd);
    return 0;
fail:
    e = errno; close(dirfd); errno = e;
    return -1;
}

int pyrunc_tmpfs_finish(int rootfd, const char *dest, int lower, int copyup) {
    /* the new tmpfs at `dest` takes the mode of the directory `lower` it covers (runc) and,
       with tmpcopyup, its content */
    struct stat st;
    int top, r = 0, e;
    if (fstat(lower, &st) < 0) return -1;
    top = pyrunc_open_in_root(rootfd, dest, O_RDONLY | O_DIRECTORY);
    if (top < 0) return -1;
    if (copyup) r = pyrunc_copy_tree(lower, top, 0);
    if (r == 0) r = fchmod(top, st.st_mode & 07777);
    e = errno; close(top); errno = e;
    return r;
}

int pyrunc_refused_option(const char *fstype, const char *data, char *out,
                          size_t outlen) {
    /* after mount(2) said EINVAL: which option of `data` the filesystem refuses, tried one
       by one with fsconfig on a context of its own (1: found, in `out`) */
    char buf[4096];
    char *opt, *next, *value;
    int fs, r;
    if (!fstype || !data || !*data || strlen(data) >= sizeof(buf)) return 0;
    fs = (int)syscall(SYS_fsopen, fstype, FSOPEN_CLOEXEC);
    if (fs < 0) return 0;
    snprintf(buf, sizeof(buf), "%s", data);
    for (opt = buf; opt; opt = next) {
        next = strchr(opt, ',');
        if (next) *next++ = 0;
        if (!*opt) continue;
        snprintf(out, outlen, "%s", opt);
        value = strchr(opt, '=');
        if (value) *value++ = 0;
        if (value)
            r = (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, opt, value, 0);
        else
            r = (int)syscall(SYS_fsconfig, fs, FSCONFIG_SET_FLAG, opt, NULL, 0);
        if (r < 0 && errno == EINVAL) { close(fs); return 1; }
    }
    close(fs);
    return 0;
}

int pyrunc_fix_stdio(unsigned int uid) {
    /* runc's fixStdioPermissions: stdio (a pty, pipes) becomes the process user's, unless
       it is /dev/null or already theirs; the group stays (devpts gives ptys gid=5). An
       owner the user namespace does not map is left alone. */
    struct stat st;
    int fd;
    for (fd = 0; fd < 3; fd++) {
        if (fstat(fd, &st) < 0) {
            if (errno == EBADF) continue;
            return -1;
        }
        if (st.st_uid == uid ||
            (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3))
            continue;
        if (fchown(fd, uid, (gid_t)-1) < 0 && errno != EINVAL && errno != EPERM)
            return -1;
    }
    return 0;
}

char pyrunc_hook_out[2048];

static int pyrunc_write_all(int fd, const char *p, size_t n) {
    ssize_t w;
    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w; n -= (size_t)w;
    }
    return 0;
}

int pyrunc_run_hook(const char *path, char *const argv[], char *const envp[],
                    const char *state_head, const char *state_tail, int timeout,
                    int *status, size_t *outlen) {
    /* a startContainer hook, from the init: the state on its stdin (with the init's pid
       as the container sees it), stdout and stderr collected; returns -1 with errno when
       it could not be started, else its wait status in *status (-1: timed out) */
    int in[2], out[2], pid, r, left;
    char num[32];
    struct pollfd pfd;
    struct timespec start, now;
    ssize_t n;
    *outlen = 0;
    *status = 0;
    if (pipe2(in, O_CLOEXEC) < 0) return -1;
    if (pipe2(out, O_CLOEXEC) < 0) { close(in[0]); close(in[1]); return -1; }
    pid = (int)pyrunc_raw_clone(0);
    if (pid < 0) {
        int e = errno;
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        errno = e;
        return -1;
    }
    if (pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(out[1], 2) < 0) _exit(127);
        execve(path, argv, envp);
        dprintf(2, "exec %s: %s", path, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    snprintf(num, sizeof(num), "%d", getpid());
    signal(SIGPIPE, SIG_IGN);
    pyrunc_write_all(in[1], state_head, strlen(state_head));
    pyrunc_write_all(in[1], num, strlen(num));
    pyrunc_write_all(in[1], state_tail, strlen(state_tail));
    close(in[1]);
    signal(SIGPIPE, SIG_DFL);
    clock_gettime(CLOCK_MONOTONIC, &start);
    pfd.fd = out[0];
    pfd.events = POLLIN;
    for (;;) {
        left = -1;
        if (timeout > 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            left = timeout * 1000 - (int)((now.tv_sec - start.tv_sec) * 1000 +
                                          (now.tv_nsec - start.tv_nsec) / 1000000);
            if (left <= 0) { kill(pid, SIGKILL); *status = -1; break; }
        }
        r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) continue;
        if (r < 0) break;
        n = read(out[0], pyrunc_hook_out + *outlen, sizeof(pyrunc_hook_out) - 1 - *outlen);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (*outlen < sizeof(pyrunc_hook_out) - 1) break;  /* EOF */
            char sink[512];  /* full: drain the rest */
            n = read(out[0], sink, sizeof(sink));
            if (n <= 0) break;
            continue;
        }
        *outlen += (size_t)n;
    }
    close(out[0]);
    while (*outlen > 0 && (pyrunc_hook_out[*outlen - 1] == '\n' ||
                           pyrunc_hook_out[*outlen - 1] == ' '))
        (*outlen)--;
    pyrunc_hook_out[*outlen] = 0;
    while (waitpid(pid, &r, 0) < 0 && errno == EINTR) ;
    if (*status != -1) *status = r;
    return 0;
}
