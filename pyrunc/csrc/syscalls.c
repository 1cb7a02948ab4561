/* Thin wrappers over the Linux system calls glibc lacks or wraps in a way the init
   cannot use (clone without fork handlers, openat2, the mount API, pidfds, capset, ...). */

#include "pyrunc.h"

long pyrunc_raw_clone(unsigned long flags) {
    /* fork semantics (no new stack) with namespace flags; bypasses glibc's fork handlers */
    return syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
}

int pyrunc_close_range_cloexec(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
}

int pyrunc_close_range(unsigned int first, unsigned int last) {
    return (int)syscall(SYS_close_range, first, last, 0);
}

int pyrunc_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int pyrunc_capset(unsigned long long eff, unsigned long long perm,
                  unsigned long long inh) {
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    data[0].effective = (unsigned int)eff; data[1].effective = (unsigned int)(eff >> 32);
    data[0].permitted = (unsigned int)perm; data[1].permitted = (unsigned int)(perm >> 32);
    data[0].inheritable = (unsigned int)inh; data[1].inheritable = (unsigned int)(inh >> 32);
    return (int)syscall(SYS_capset, &hdr, data);
}

long pyrunc_statfs_type(const char *path) {
    struct statfs st;
    if (statfs(path, &st) < 0) return -1;
    return (long)st.f_type;
}

void pyrunc_set_errno(int e) { errno = e; }

struct pyrunc_sched_attr {
    unsigned int size, sched_policy;
    unsigned long long sched_flags;
    int sched_nice;
    unsigned int sched_priority;
    unsigned long long sched_runtime, sched_deadline, sched_period;
};

int pyrunc_sched_setattr(unsigned int policy, unsigned long long flags, int nice,
                         unsigned int prio, unsigned long long runtime,
                         unsigned long long deadline, unsigned long long period) {
    struct pyrunc_sched_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    attr.sched_policy = policy; attr.sched_flags = flags; attr.sched_nice = nice;
    attr.sched_priority = prio; attr.sched_runtime = runtime;
    attr.sched_deadline = deadline; attr.sched_period = period;
    return (int)syscall(SYS_sched_setattr, 0, &attr, 0);
}

int pyrunc_ioprio_set(int value) {
    return (int)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, value);
}

int pyrunc_set_affinity(const unsigned int *cpus, int n) {
    cpu_set_t *set = CPU_ALLOC(8192);
    size_t size = CPU_ALLOC_SIZE(8192);
    int i, r;
    if (!set) return -1;
    CPU_ZERO_S(size, set);
    for (i = 0; i < n; i++) CPU_SET_S(cpus[i], size, set);
    r = sched_setaffinity(0, size, set);
    CPU_FREE(set);
    return r;
}

int pyrunc_set_mempolicy(int mode, const unsigned int *nodes, int n) {
    unsigned long mask[16];
    int i;
    memset(mask, 0, sizeof(mask));
    for (i = 0; i < n; i++)
        if (nodes[i] < 1024) mask[nodes[i] / (8 * sizeof(long))] |= 1UL << (nodes[i] % (8 * sizeof(long)));
    return (int)syscall(SYS_set_mempolicy, mode, n ? mask : NULL, n ? 1024 + 1 : 0);
}

int pyrunc_personality(unsigned long persona) {
    return personality(persona) < 0 ? -1 : 0;
}

int pyrunc_load_seccomp(const char *bpf, int len, unsigned int flags) {
    /* the filter was compiled by the parent; this is only the seccomp(2) call */
    struct sock_fprog prog;
    prog.len = (unsigned short)(len / sizeof(struct sock_filter));
    prog.filter = (struct sock_filter *)bpf;
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

int pyrunc_openat2(int dirfd, const char *path, struct open_how *how) {
    /* openat2, the one call of it: a scoped lookup (RESOLVE_IN_ROOT, RESOLVE_BENEATH) fails
       with EAGAIN when a rename or mount anywhere on the host races one of its ".." steps,
       and the kernel leaves the retry to the caller (openat2(2)). A busy host does that by
       chance; the answer is the retried lookup's, never the race's. Bounded, so a host that
       renames without pause cannot hold the runtime forever: EAGAIN after that. */
    int fd, tries;
    for (tries = 0; tries < PYRUNC_OPENAT2_TRIES; tries++) {
        fd = (int)syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
        if (fd >= 0 || errno != EAGAIN) break;
    }
    return fd;
}

int pyrunc_open_exec(const char *path, int host_side) {
    /* the executable, refusing /proc magic links such as /proc/self/exe: executing the
       runtime's own binary is how CVE-2019-5736 began (S1). A hook run on the host side
       (never in the container) may name one: dockerd's prestart hook is /proc/PID/exe */
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = host_side ? 0 : RESOLVE_NO_MAGICLINKS;
    return pyrunc_openat2(AT_FDCWD, path, &how);
}

int pyrunc_execveat(int fd, char *const argv[], char *const envp[]) {
    return (int)syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}

int pyrunc_mount_setattr(int fd, unsigned long long set, unsigned long long clr,
                         int recursive, int userns) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.attr_set = set;
    attr.attr_clr = clr;
    if (userns >= 0) attr.userns_fd = (unsigned long long)userns;
    return (int)syscall(SYS_mount_setattr, fd, "",
                        AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof(attr));
}

int pyrunc_open_tree_clone(const char *path, int recursive) {
    return (int)syscall(SYS_open_tree, AT_FDCWD, path,
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
}

int pyrunc_move_mount(int from, int to) {
    return (int)syscall(SYS_move_mount, from, "", to, "",
                        MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

int pyrunc_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
int pyrunc_pidfd_send_signal(int pidfd, int sig) {
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int pyrunc_join_session_keyring(const char *name) {
    /* KEYCTL_JOIN_SESSION_KEYRING: a keyring of the container's own, not the caller's */
    long r = syscall(SYS_keyctl, 1, name, 0, 0, 0);
    if (r < 0 && errno == ENOSYS) return 0;
    return r < 0 ? -1 : 0;
}
