# The C helpers of pyrunc/csrc/*.c as Cython sees them: pyrunc.h's declarations, with the
# system calls and constants of the headers it includes that the extensions use. Both
# pyrunc/_executor.pyx (the init) and pyrunc/_linux.pyx (the runtime's own side) include this
# file; setup.py links each with the .c files it needs (C_HELPERS).
cdef extern from "pyrunc.h":
    long pyrunc_raw_clone(unsigned long flags) nogil
    int pyrunc_open_in_root(int rootfd, const char *path, int flags) nogil
    int pyrunc_close_range_cloexec(unsigned int first) nogil
    int pyrunc_pivot_root(const char *new_root, const char *put_old) nogil
    int pyrunc_close_range(unsigned int first, unsigned int last) nogil
    int pyrunc_mkdirs_in_root(int rootfd, const char *path, int depth) nogil
    int pyrunc_same_file(int a, int b) nogil
    int pyrunc_capset(unsigned long long eff, unsigned long long perm, unsigned long long inh) nogil
    int pyrunc_loopback_up() nogil
    int pyrunc_is_procfs(int fd) nogil
    int pyrunc_is_procfs_root(int fd) nogil
    int pyrunc_fd_paths_ok() nogil
    void pyrunc_fd_paths_reset() nogil
    int PYRUNC_EPROCFD
    int pyrunc_open_beneath(int dirfd, const char *path, int flags) nogil
    int pyrunc_open_in_root_nosymlinks(int rootfd, const char *path, int flags) nogil
    long pyrunc_statfs_type(const char *path) nogil
    long long pyrunc_regular_size(int fd) nogil
    int pyrunc_walk_in_root(int rootfd, const char *path) nogil
    int pyrunc_cwd_inside(int rootfd) nogil
    int pyrunc_is_dir(int fd) nogil
    int pyrunc_is_node(int dirfd, const char *name, unsigned int mode, unsigned int maj,
                       unsigned int min) nogil
    int pyrunc_is_devnull(int fd) nogil
    int pyrunc_reopen_stdio(int devnull) nogil
    int pyrunc_is_executable_file(const char *path) nogil
    int pyrunc_fd_path(char *buf, size_t len, int fd) nogil
    int pyrunc_send_fd(int sock, int fd) nogil
    void pyrunc_set_errno(int e) nogil
    void pyrunc_reset_signals() nogil
    int pyrunc_join_session_keyring(const char *name) nogil
    int pyrunc_tmpfs_finish(int rootfd, const char *dest, int lower, int copyup) nogil
    int pyrunc_fix_stdio(unsigned int uid) nogil
    int pyrunc_run_hook(const char *path, char *const argv[], char *const envp[],
                        const char *state_head, const char *state_tail, int timeout,
                        int *status, size_t *outlen) nogil
    char pyrunc_hook_out[2048]
    int pyrunc_refused_option(const char *fstype, const char *data, char *out,
                              size_t outlen) nogil
    int pyrunc_setup_console(int rootfd, int sock, unsigned short rows, unsigned short cols) nogil
    int pyrunc_pidfd_open(int pid) nogil
    int pyrunc_recv_fd(int sock, char *buf, int len, int *fd) nogil
    int pyrunc_mount_setattr(int fd, unsigned long long set, unsigned long long clr,
                             int recursive, int userns) nogil
    int pyrunc_open_tree_clone(const char *path, int recursive) nogil
    int pyrunc_move_mount(int from_fd, int to_fd) nogil
    int pyrunc_open_exec(const char *path, int host_side) nogil
    int pyrunc_execveat(int fd, char *const argv[], char *const envp[]) nogil
    int ELOOP
    unsigned long long SECCOMP_FILTER_FLAG_NEW_LISTENER
    unsigned long long MOUNT_ATTR_IDMAP
    int pyrunc_load_seccomp(const char *bpf, int len, unsigned int flags) nogil
    int pyrunc_sched_setattr(unsigned int policy, unsigned long long flags, int nice,
                             unsigned int prio, unsigned long long runtime,
                             unsigned long long deadline, unsigned long long period) nogil
    int pyrunc_ioprio_set(int value) nogil
    int pyrunc_set_affinity(const unsigned int *cpus, int n) nogil
    int pyrunc_set_mempolicy(int mode, const unsigned int *nodes, int n) nogil
    int pyrunc_personality(unsigned long persona) nogil
    int pyrunc_pidfd_send_signal(int pidfd, int sig) nogil

    int O_PATH, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_WRONLY, O_RDONLY, O_RDWR, O_CREAT, O_NOCTTY
    int EXDEV, ENOTDIR, O_NONBLOCK
    int AF_UNIX, SOCK_SEQPACKET, SOCK_CLOEXEC, MSG_NOSIGNAL
    unsigned long MS_BIND, MS_REC, MS_REMOUNT, MS_RDONLY, MS_PRIVATE, MS_SLAVE, MS_MOVE
    int MNT_DETACH
    int CLONE_NEWPID, CLONE_NEWTIME, CLONE_NEWUSER
    int PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_KEEPCAPS
    int PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_CLEAR_ALL
    int S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, S_IFIFO
    int AT_FDCWD
    int WNOHANG

    ctypedef unsigned int mode_t
    ctypedef unsigned long dev_t
    ctypedef unsigned int uid_t
    ctypedef unsigned int gid_t
    ctypedef long ssize_t

    struct rlimit:
        unsigned long rlim_cur
        unsigned long rlim_max

    int socketpair(int domain, int type, int protocol, int *sv) nogil
    ssize_t send(int fd, const void *buf, size_t n, int flags) nogil
    ssize_t read(int fd, void *buf, size_t n) nogil
    ssize_t write(int fd, const void *buf, size_t n) nogil
    int close(int fd) nogil
    int dup2(int oldfd, int newfd) nogil
    int open(const char *path, int flags, ...) nogil
    int openat(int dirfd, const char *path, int flags, ...) nogil
    int mkdirat(int dirfd, const char *path, mode_t mode) nogil
    ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size) nogil
    int mknodat(int dirfd, const char *path, mode_t mode, dev_t dev) nogil
    int symlinkat(const char *target, int dirfd, const char *linkpath) nogil
    int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags) nogil
    int fchown(int fd, uid_t uid, gid_t gid) nogil
    int fchmod(int fd, mode_t mode) nogil
    int mount(const char *source, const char *target, const char *fstype,
              unsigned long flags, const void *data) nogil
    int umount2(const char *target, int flags) nogil
    int chdir(const char *path) nogil
    int fchdir(int fd) nogil
    int chroot(const char *path) nogil
    int setns(int fd, int nstype) nogil
    int unshare(int flags) nogil
    int sethostname(const char *name, size_t len) nogil
    int setdomainname(const char *name, size_t len) nogil
    int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5) nogil
    int setrlimit(int resource, const rlimit *rl) nogil
    int getrlimit(int resource, rlimit *rl) nogil
    int setgroups(size_t size, const gid_t *list) nogil
    int setresuid(uid_t r, uid_t e, uid_t s) nogil
    int setresgid(gid_t r, gid_t e, gid_t s) nogil
    mode_t umask(mode_t mask) nogil
    int execve(const char *path, char *const argv[], char *const envp[]) nogil
    void _exit(int status) nogil
    dev_t makedev(unsigned int major, unsigned int minor) nogil
    int kill(int pid, int sig) nogil
    int waitpid(int pid, int *status, int options) nogil
    int getpid() nogil
    int setsid() nogil
    int chmod(const char *path, mode_t mode) nogil
