/* Paths resolved inside a container's root, so that its symlinks and ".." never lead
   out (S2, S3, S4, S14), and the checks of what an fd is. */

#include "pyrunc.h"

#include <limits.h>

int pyrunc_open_in_root(int rootfd, const char *path, int flags) {
    /* resolve path as if rootfd were "/": symlinks and ".." can never leave it */
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    return pyrunc_openat2(rootfd, path, &how);
}

int pyrunc_mkdirs_in_root(int rootfd, const char *path, int depth) {
    /* mkdir -p inside the root: every component is resolved from the root with
       RESOLVE_IN_ROOT, and a dangling symlink gets its target created inside the root
       (never on the host); returns an O_PATH fd of the directory */
    char prefix[4096], link[4096], target[4096];
    const char *p = path;
    size_t plen = 0;
    int fd, parent;
    ssize_t n;
    if (depth > 8) { errno = ELOOP; return -1; }
    prefix[0] = 0;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *end = strchr(p, '/');
        size_t clen = end ? (size_t)(end - p) : strlen(p);
        if (plen + clen + 2 >= sizeof(prefix)) { errno = ENAMETOOLONG; return -1; }
        char comp[256];
        if (clen >= sizeof(comp)) { errno = ENAMETOOLONG; return -1; }
        memcpy(comp, p, clen); comp[clen] = 0;
        size_t saved_len = plen;
        if (plen) prefix[plen++] = '/';
        memcpy(prefix + plen, comp, clen + 1);
        plen += clen;
        p += clen;
        fd = pyrunc_open_in_root(rootfd, prefix, O_PATH | O_DIRECTORY);
        if (fd >= 0) { close(fd); continue; }
        if (errno != ENOENT) return -1;
        /* the parent exists (made in the previous round) */
        char saved_c = prefix[saved_len];
        prefix[saved_len] = 0;
        parent = pyrunc_open_in_root(rootfd, saved_len ? prefix : ".", O_PATH | O_DIRECTORY);
        if (parent < 0) { prefix[saved_len] = saved_c; return -1; }
        n = readlinkat(parent, comp, link, sizeof(link) - 1);
        if (n >= 0) {
            link[n] = 0;
            if (link[0] == '/')
                snprintf(target, sizeof(target), "%s", link);
            else
                snprintf(target, sizeof(target), "%s/%s", prefix, link);
        }
        prefix[saved_len] = saved_c;
        if (n >= 0) {
            close(parent);
            fd = pyrunc_mkdirs_in_root(rootfd, target, depth + 1);
            if (fd < 0) return -1;
            close(fd);
            continue;
        }
        if (mkdirat(parent, comp, 0755) < 0 && errno != EEXIST) {
            int e = errno; close(parent); errno = e; return -1;
        }
        close(parent);
    }
    return pyrunc_open_in_root(rootfd, plen ? prefix : ".", O_PATH | O_DIRECTORY);
}

int pyrunc_same_file(int a, int b) {
    struct stat sa, sb;
    if (fstat(a, &sa) < 0 || fstat(b, &sb) < 0) return 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int pyrunc_is_procfs(int fd) {
    struct statfs st;
    if (fstatfs(fd, &st) < 0) return 0;
    return st.f_type == PROC_SUPER_MAGIC;
}

int pyrunc_is_procfs_root(int fd) {
    /* the root directory of a procfs instance (PROC_ROOT_INO), not a directory inside one
       that something bind-mounted somewhere */
    struct stat st;
    if (!pyrunc_is_procfs(fd) || fstat(fd, &st) < 0) return 0;
    return S_ISDIR(st.st_mode) && st.st_ino == 1;
}

int pyrunc_open_beneath(int dirfd, const char *path, int flags) {
    /* path strictly beneath dirfd: no "..", no symlink, no magic link, no mount crossed */
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
                  RESOLVE_NO_XDEV;
    return pyrunc_openat2(dirfd, path, &how);
}

int pyrunc_open_in_root_nosymlinks(int rootfd, const char *path, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    return pyrunc_openat2(rootfd, path, &how);
}

#define PYRUNC_WALK_DEPTH 128
int pyrunc_walk_in_root(int rootfd, const char *path) {
    /* The directory `path` names inside the root, without openat2 (a seccomp filter may
       refuse it): one component at a time, openat(O_PATH|O_NOFOLLOW); a symlink is read
       and expanded by hand (an absolute one from the root), ".." never goes above the
       root, and a symlink on procfs (/proc/self, the magic links /proc/N/cwd, fd/N, root)
       is refused, never followed (S2). Returns an O_PATH fd of the directory. */
    int stack[PYRUNC_WALK_DEPTH];
    int depth = 0, links = 0, fd, cur, i, result = -1, err = 0;
    char rest[PATH_MAX], link[PATH_MAX], tmp[PATH_MAX];
    struct stat st;
    ssize_t n;
    size_t len, clen;
    const char *p;
    char comp[256];
    if (strlen(path) >= sizeof(rest)) { errno = ENAMETOOLONG; return -1; }
    snprintf(rest, sizeof(rest), "%s", path);
    p = rest;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) break;
        clen = strcspn(p, "/");
        if (clen >= sizeof(comp)) { err = ENAMETOOLONG; goto out; }
        memcpy(comp, p, clen); comp[clen] = 0;
        p += clen;
        if (!strcmp(comp, ".")) continue;
        if (!strcmp(comp, "..")) {
            if (depth > 0) close(stack[--depth]);
            continue;
        }
        cur = depth ? stack[depth - 1] : rootfd;
        fd = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) { err = errno; if (fd >= 0) close(fd); goto out; }
        if (S_ISLNK(st.st_mode)) {
            if (pyrunc_is_procfs(fd) || ++links > 40) { close(fd); err = ELOOP; goto out; }
            n = readlinkat(fd, "", link, sizeof(link) - 1);
            close(fd);
            if (n < 0) { err = errno; goto out; }
            link[n] = 0;
            len = strlen(p);
            if ((size_t)n + len + 2 >= sizeof(tmp)) { err = ENAMETOOLONG; goto out; }
            snprintf(tmp, sizeof(tmp), "%s/%s", link, p);
            memcpy(rest, tmp, strlen(tmp) + 1);
            p = rest;
            if (link[0] == '/')
                while (depth > 0) close(stack[--depth]);
            continue;
        }
        if (!S_ISDIR(st.st_mode)) { close(fd); err = ENOTDIR; goto out; }
        if (depth == PYRUNC_WALK_DEPTH) { close(fd); err = ENAMETOOLONG; goto out; }
        stack[depth++] = fd;
    }
    if (depth > 0) {
        result = stack[--depth];
    } else {
        result = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (result < 0) err = errno;
    }
out:
    for (i = 0; i < depth; i++) close(stack[i]);
    if (err) { errno = err; return -1; }
    return result;
}

static int pyrunc_same_mount_dir(int a, int b) {
    /* the same directory of the same mount (a bind mount of the rootfs elsewhere is not
       the rootfs) */
    struct statx sa, sb;
    if (statx(a, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sa) < 0 ||
        statx(b, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sb) < 0) return 0;
    return sa.stx_dev_major == sb.stx_dev_major && sa.stx_dev_minor == sb.stx_dev_minor &&
           sa.stx_ino == sb.stx_ino && sa.stx_mnt_id == sb.stx_mnt_id;
}

int pyrunc_cwd_inside(int rootfd) {
    /* 1 if the cwd is the root or below it (walking ".." up the mount tree meets the
       root), 0 if the walk reaches the top of its tree without meeting it, -1 on error */
    int cur = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC), up, i;
    if (cur < 0) return -1;
    for (i = 0; i < 4096; i++) {
        if (pyrunc_same_mount_dir(cur, rootfd)) { close(cur); return 1; }
        up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (up < 0) { int e = errno; close(cur); errno = e; return -1; }
        if (pyrunc_same_mount_dir(up, cur)) { close(up); close(cur); return 0; }
        close(cur);
        cur = up;
    }
    close(cur);
    return 0;
}

static int pyrunc_fd_paths_state = 0;  /* 0: not checked since the root changed */
/* an open that failed for want of fds or memory, which says nothing about the path */
#define PYRUNC_OUT_OF_FDS(e) ((e) == EMFILE || (e) == ENFILE || (e) == ENOMEM)

int pyrunc_fd_paths_ok(void) {
    /* Mounts (and reopens) name our own fds as /proc/self/fd/N, resolved from our root:
       after pivot_root that is the container's /proc, which must then be a procfs root
       with nothing mounted over self/fd, or an image's symlinks (say, with no proc mount)
       would send a mask's mount, or the console's, elsewhere (S4). Checked once per
       root; 0 (errno PYRUNC_EPROCFD) when it is not. */
    if (pyrunc_fd_paths_state == 0) {
        struct open_how how;
        int proc = open("/proc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), fds = -1;
        if (proc < 0 && PYRUNC_OUT_OF_FDS(errno))
            return 0;  /* errno says why; not a verdict on /proc: checked again next time */
        if (proc >= 0 && pyrunc_is_procfs_root(proc)) {
            memset(&how, 0, sizeof(how));
            how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
            how.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS;
            fds = pyrunc_openat2(proc, "self/fd", &how);
            if (fds < 0 && (errno == EPERM || errno == ENOSYS))
                fds = openat(proc, "self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (fds < 0 && PYRUNC_OUT_OF_FDS(errno)) {
                int saved = errno;
                close(proc);
                errno = saved;
                return 0;
            }
        }
        pyrunc_fd_paths_state = (fds >= 0 && pyrunc_is_procfs(fds)) ? 1 : -1;
        if (fds >= 0) close(fds);
        if (proc >= 0) close(proc);
    }
    if (pyrunc_fd_paths_state < 0) { errno = PYRUNC_EPROCFD; return 0; }
    return 1;
}

void pyrunc_fd_paths_reset(void) { pyrunc_fd_paths_state = 0; }

long long pyrunc_regular_size(int fd) {
    /* the size of a regular file, -1 for anything else */
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return -1;
    return (long long)st.st_size;
}

int pyrunc_is_node(int dirfd, const char *name, unsigned int mode, unsigned int maj,
                   unsigned int min) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return -1;
    if ((st.st_mode & S_IFMT) != (mode & S_IFMT) ||
        ((S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) &&
         (major(st.st_rdev) != maj || minor(st.st_rdev) != min))) {
        errno = EEXIST;
        return -1;
    }
    return 0;
}

int pyrunc_is_dir(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return -1;
    return S_ISDIR(st.st_mode) ? 1 : 0;
}

int pyrunc_is_devnull(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return 0;
    return S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

int pyrunc_is_executable_file(const char *path) {
    /* 1: regular file with an x bit, 0: exists but not executable, -1: stat failed */
    struct stat st;
    if (stat(path, &st) < 0) return -1;
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0111) == 0) return 0;
    return 1;
}

int pyrunc_fd_path(char *buf, size_t len, int fd) {
    return snprintf(buf, len, "/proc/self/fd/%d", fd);
}
