/* pyrunc's C helpers: what the container init (pyrunc/_executor.pyx) runs between clone() and
   execve() without the interpreter, and the few syscalls the runtime's own side needs that
   Python's os module lacks (pyrunc/_linux.pyx). Both extensions include this header; the
   system headers below are the ones their declarations (O_PATH, MS_BIND, ...) come from.

   syscalls.c  thin wrappers over the syscalls glibc lacks (openat2, the mount API, pidfd, ...)
   inroot.c    paths resolved inside a container's root, and what an fd is (S2-S4, S14)
   fdpass.c    SCM_RIGHTS over the sync socket
   init.c      the init's compound steps (console, tmpfs copy-up, stdio, signals, hooks) */
#ifndef PYRUNC_H
#define PYRUNC_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <grp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/personality.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/magic.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/mount.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

/* errno value of a refusal to go through a /proc/self/fd that is not procfs's */
#define PYRUNC_EPROCFD 0x10000

/* syscalls.c */
long pyrunc_raw_clone(unsigned long flags);
int pyrunc_close_range_cloexec(unsigned int first);
int pyrunc_close_range(unsigned int first, unsigned int last);
int pyrunc_pivot_root(const char *new_root, const char *put_old);
int pyrunc_capset(unsigned long long eff, unsigned long long perm, unsigned long long inh);
long pyrunc_statfs_type(const char *path);
void pyrunc_set_errno(int e);
int pyrunc_sched_setattr(unsigned int policy, unsigned long long flags, int nice,
                         unsigned int prio, unsigned long long runtime,
                         unsigned long long deadline, unsigned long long period);
int pyrunc_ioprio_set(int value);
int pyrunc_set_affinity(const unsigned int *cpus, int n);
int pyrunc_set_mempolicy(int mode, const unsigned int *nodes, int n);
int pyrunc_personality(unsigned long persona);
int pyrunc_load_seccomp(const char *bpf, int len, unsigned int flags);
#define PYRUNC_OPENAT2_TRIES 256
int pyrunc_openat2(int dirfd, const char *path, struct open_how *how);
int pyrunc_open_exec(const char *path, int host_side);
int pyrunc_execveat(int fd, char *const argv[], char *const envp[]);
int pyrunc_mount_setattr(int fd, unsigned long long set, unsigned long long clr,
                         int recursive, int userns);
int pyrunc_open_tree_clone(const char *path, int recursive);
int pyrunc_move_mount(int from, int to);
int pyrunc_pidfd_open(int pid);
int pyrunc_pidfd_send_signal(int pidfd, int sig);
int pyrunc_join_session_keyring(const char *name);

/* inroot.c */
int pyrunc_open_in_root(int rootfd, const char *path, int flags);
int pyrunc_mkdirs_in_root(int rootfd, const char *path, int depth);
int pyrunc_open_beneath(int dirfd, const char *path, int flags);
int pyrunc_open_in_root_nosymlinks(int rootfd, const char *path, int flags);
int pyrunc_walk_in_root(int rootfd, const char *path);
int pyrunc_cwd_inside(int rootfd);
int pyrunc_fd_paths_ok(void);
void pyrunc_fd_paths_reset(void);
int pyrunc_fd_path(char *buf, size_t len, int fd);
int pyrunc_same_file(int a, int b);
int pyrunc_is_procfs(int fd);
int pyrunc_is_procfs_root(int fd);
long long pyrunc_regular_size(int fd);
int pyrunc_is_node(int dirfd, const char *name, unsigned int mode, unsigned int maj,
                   unsigned int min);
int pyrunc_is_dir(int fd);
int pyrunc_is_devnull(int fd);
int pyrunc_is_executable_file(const char *path);

/* fdpass.c */
int pyrunc_send_fd(int sock, int fd);
int pyrunc_recv_fd(int sock, char *buf, int len, int *fd);

/* init.c */
int pyrunc_loopback_up(void);
int pyrunc_reopen_stdio(int devnull);
void pyrunc_reset_signals(void);
int pyrunc_setup_console(int rootfd, int sock, unsigned short rows, unsigned short cols);
int pyrunc_tmpfs_finish(int rootfd, const char *dest, int lower, int copyup);
int pyrunc_refused_option(const char *fstype, const char *data, char *out, size_t outlen);
int pyrunc_fix_stdio(unsigned int uid);
extern char pyrunc_hook_out[2048];
int pyrunc_run_hook(const char *path, char *const argv[], char *const envp[],
                    const char *state_head, const char *state_tail, int timeout,
                    int *status, size_t *outlen);

#endif
