# cython: language_level=3
"""Seccomp filters compiled with libseccomp, in the parent.

The parent turns linux.seccomp into classic BPF bytes; the init only hands them to seccomp(2),
so the child never calls into libseccomp. A separate module: the hot commands never load it.
"""

from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free

cdef extern from "seccomp.h":
    ctypedef void *scmp_filter_ctx
    cdef enum scmp_compare:
        SCMP_CMP_NE
        SCMP_CMP_LT
        SCMP_CMP_LE
        SCMP_CMP_EQ
        SCMP_CMP_GE
        SCMP_CMP_GT
        SCMP_CMP_MASKED_EQ
    cdef enum scmp_filter_attr:
        SCMP_FLTATR_CTL_NNP
    struct scmp_arg_cmp:
        unsigned int arg
        scmp_compare op
        uint64_t datum_a
        uint64_t datum_b
    scmp_filter_ctx seccomp_init(uint32_t def_action)
    void seccomp_release(scmp_filter_ctx ctx)
    int seccomp_arch_add(scmp_filter_ctx ctx, uint32_t arch_token)
    int seccomp_arch_remove(scmp_filter_ctx ctx, uint32_t arch_token)
    uint32_t seccomp_arch_resolve_name(const char *arch_name)
    uint32_t seccomp_arch_native()
    int seccomp_syscall_resolve_name(const char *name)
    int seccomp_syscall_resolve_name_arch(uint32_t arch_token, const char *name)
    int seccomp_rule_add_array(scmp_filter_ctx ctx, uint32_t action, int syscall,
                               unsigned int arg_cnt, const scmp_arg_cmp *arg_array)
    int seccomp_attr_set(scmp_filter_ctx ctx, scmp_filter_attr attr, uint32_t value)
    int seccomp_export_bpf(const scmp_filter_ctx ctx, int fd)
    int __NR_SCMP_ERROR

cdef extern from "<sys/mman.h>":
    int memfd_create(const char *name, unsigned int flags)

cdef extern from "<unistd.h>":
    long read(int fd, void *buf, size_t count)
    long lseek(int fd, long offset, int whence)
    int close(int fd)


def arch_token(str name) -> int:
    """A libseccomp architecture token from a lower-case name ("x86_64"); 0 if unknown."""
    return seccomp_arch_resolve_name(name.encode())


def syscall_number(str name) -> int:
    """The native number of a syscall, or -1 when this libseccomp does not know it."""
    cdef int nr = seccomp_syscall_resolve_name(name.encode())
    return -1 if nr == __NR_SCMP_ERROR else nr


def syscall_number_arch(unsigned int arch, str name) -> int:
    """The number of a syscall on the architecture `arch` (a token), -1 when it has none
    there (negative pseudo-numbers included); x32's carry the x32 bit."""
    cdef int nr = seccomp_syscall_resolve_name_arch(arch, name.encode())
    return -1 if nr < 0 else nr


def compile_filter(unsigned int default_action, list archs, list rules) -> bytes:
    """BPF for `rules`: [(action, [syscall names], [(index, op, value, value_two)])].

    Rules whose action is the default are skipped (libseccomp refuses them), and so are syscall
    names this libseccomp does not know, as runc does.
    """
    cdef scmp_filter_ctx ctx = seccomp_init(default_action)
    cdef scmp_arg_cmp *cmps = NULL
    cdef int nr, ret, fd = -1
    cdef unsigned int i, n
    cdef uint32_t native
    cdef char *buf
    cdef long size, got, chunk
    if ctx == NULL:
        raise ValueError("seccomp: invalid default action")
    try:
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)
        native = seccomp_arch_native()
        if archs:
            for token in archs:
                ret = seccomp_arch_add(ctx, token)
                if ret < 0 and ret != -17:  # -EEXIST: the native arch is already there
                    raise OSError(-ret, f"seccomp: add architecture {token:#x}")
        for action, names, args in rules:
            if action == default_action:
                continue
            n = len(args)
            cmps = <scmp_arg_cmp *>calloc(n if n else 1, sizeof(scmp_arg_cmp))
            for i in range(n):
                cmps[i].arg = args[i][0]
                cmps[i].op = <scmp_compare>args[i][1]
                cmps[i].datum_a = args[i][2]
                cmps[i].datum_b = args[i][3]
            try:
                for name in names:
                    nr = seccomp_syscall_resolve_name(name.encode())
                    if nr == __NR_SCMP_ERROR:
                        continue
                    ret = seccomp_rule_add_array(ctx, action, nr, n, cmps)
                    if ret < 0:
                        raise OSError(-ret, f"seccomp: add rule for {name}")
            finally:
                free(cmps)
                cmps = NULL
        fd = memfd_create(b"pyrunc-seccomp", 1)
        if fd < 0:
            raise OSError("seccomp: memfd_create failed")
        ret = seccomp_export_bpf(ctx, fd)
        if ret < 0:
            raise OSError(-ret, "seccomp: export the filter")
        size = lseek(fd, 0, 1)
        lseek(fd, 0, 0)
        buf = <char *>calloc(size if size > 0 else 1, 1)
        got = 0
        try:
            while got < size:
                chunk = read(fd, buf + got, size - got)
                if chunk <= 0:
                    raise OSError("seccomp: read the filter back")
                got += chunk
            return buf[:size]
        finally:
            free(buf)
    finally:
        if fd >= 0:
            close(fd)
        seccomp_release(ctx)
