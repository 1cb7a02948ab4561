/*
 * checker: runs inside an OCI container and compares what it sees with expectations derived on
 * the host from the container's config.json. Built statically (gcc -static -O2), so it needs
 * nothing inside the container.
 *
 *   checker check EXPECT [--json|--tap] [--out FILE]
 *       one check per line of EXPECT: "<check> <arg> ...", arguments separated by spaces and
 *       percent-encoded (%20 space, %25 percent, %0A newline); "#" starts a comment line.
 *       Prints one result per check, as JSON lines (default) or TAP; exit status 0 if all pass.
 *   checker hook NAME LOG [--exit N] [--sleep-ms N] [--mark PATH]
 *       a lifecycle hook: reads the state from stdin and appends one JSON line to LOG saying
 *       what it saw (namespaces, root, the state, the container process's exe), then exits N.
 *   checker wait-signal FILE
 *       writes "ready" to FILE, then waits for a signal and writes "signal N" to FILE.
 *   checker sleep         waits forever (a long-running container process).
 *   checker write|append FILE TEXT [--then-sleep]
 *       writes (or appends) TEXT to FILE, to mark that the process ran; then exits or waits.
 *
 * The checks are listed in run_check() below; each result names the check, its arguments, ok or
 * not (or skip), and what was found.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define MAXARGS 64
#define BIG 65536

extern char **environ;

/* ---- small helpers ------------------------------------------------------------------------ */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* decode %XX escapes in place */
static void pct_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
            *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* read a whole (small) file; returns length or -1 with errno set */
static ssize_t read_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    buf[len] = 0;
    close(fd);
    return (ssize_t)len;
}

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = 0;
}

/* squeeze runs of blanks to one space and trim (for uid_map and friends) */
static void squeeze(char *s)
{
    char *w = s;
    int space = 1;
    for (char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t' || *r == '\n') {
            if (!space) *w++ = ' ';
            space = 1;
        } else {
            *w++ = *r;
            space = 0;
        }
    }
    if (w > s && w[-1] == ' ') w--;
    *w = 0;
}

/* the value of "Key:" in /proc/self/status */
static int status_field(const char *key, char *out, size_t size)
{
    static char buf[BIG];
    if (read_file("/proc/self/status", buf, sizeof buf) < 0) return -1;
    size_t klen = strlen(key);
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(out, size, "%s", v);
            return 0;
        }
    }
    return -1;
}

/* JSON string escaping into a fixed buffer */
static void json_escape(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 7 < size; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            o += (size_t)snprintf(out + o, size - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o] = 0;
}

/* ---- results ------------------------------------------------------------------------------ */

static int g_tap = 0, g_count = 0, g_failed = 0;
static FILE *g_out = NULL;
static char g_line[4096];

enum { PASS, FAIL, SKIP };

static void result(int status, const char *fmt, ...)
{
    char detail[8192], edetail[16384], eline[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    g_count++;
    if (status == FAIL) g_failed++;
    FILE *streams[2] = {stdout, g_out};
    for (int i = 0; i < 2; i++) {
        FILE *f = streams[i];
        if (!f) continue;
        if (g_tap) {
            fprintf(f, "%s %d - %s%s%s\n", status == FAIL ? "not ok" : "ok", g_count, g_line,
                    status == SKIP ? " # SKIP " : (status == FAIL ? " # " : ""),
                    status == PASS ? "" : detail);
        } else {
            json_escape(detail, edetail, sizeof edetail);
            json_escape(g_line, eline, sizeof eline);
            fprintf(f, "{\"n\": %d, \"check\": \"%s\", \"status\": \"%s\", \"detail\": \"%s\"}\n",
                    g_count, eline, status == PASS ? "pass" : status == FAIL ? "fail" : "skip",
                    edetail);
        }
        fflush(f);
    }
}

/* ---- mountinfo ---------------------------------------------------------------------------- */

struct mnt {
    int id, parent;
    unsigned major, minor;
    char root[PATH_MAX], point[PATH_MAX], opts[1024], optional[256], fstype[64], source[PATH_MAX],
        super[2048];
};

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static int parse_mount_line(char *line, struct mnt *m)
{
    char *save = NULL, *tok;
    int field = 0;
    memset(m, 0, sizeof *m);
    int after_dash = 0, post = 0;
    for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (!after_dash) {
            switch (field) {
            case 0: m->id = atoi(tok); break;
            case 1: m->parent = atoi(tok); break;
            case 2: sscanf(tok, "%u:%u", &m->major, &m->minor); break;
            case 3: snprintf(m->root, sizeof m->root, "%s", tok); unescape_octal(m->root); break;
            case 4: snprintf(m->point, sizeof m->point, "%s", tok); unescape_octal(m->point); break;
            case 5: snprintf(m->opts, sizeof m->opts, "%s", tok); break;
            default:
                if (strcmp(tok, "-") == 0) {
                    after_dash = 1;
                } else {
                    size_t n = strlen(m->optional);
                    snprintf(m->optional + n, sizeof m->optional - n, "%s%s", n ? " " : "", tok);
                }
            }
        } else {
            switch (post++) {
            case 0: snprintf(m->fstype, sizeof m->fstype, "%s", tok); break;
            case 1: snprintf(m->source, sizeof m->source, "%s", tok); break;
            case 2: snprintf(m->super, sizeof m->super, "%s", tok); break;
            }
        }
    }
    return after_dash ? 0 : -1;
}

/* find the mount with this id in /proc/self/mountinfo */
static int find_mount_by_id(int id, struct mnt *out)
{
    static char buf[1 << 20];
    if (read_file("/proc/self/mountinfo", buf, sizeof buf) < 0) return -1;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct mnt m;
        if (parse_mount_line(line, &m) == 0 && m.id == id) {
            *out = m;
            return 0;
        }
    }
    return -1;
}

/* the mount that a path is on, via statx(STATX_MNT_ID): precise even for stacked mounts */
static int mount_of(const char *path, struct mnt *out)
{
    struct statx stx;
    if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0) return -1;
    if (!(stx.stx_mask & STATX_MNT_ID)) {
        errno = ENOSYS;
        return -1;
    }
    if (find_mount_by_id((int)stx.stx_mnt_id, out) < 0) {
        errno = ENOENT;
        return -1;
    }
    return 0;
}

static int has_token(const char *list, const char *tok, char sep)
{
    size_t n = strlen(tok);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, sep);
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, tok, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int has_prefix_token(const char *list, const char *prefix, char sep)
{
    size_t n = strlen(prefix);
    const char *p = list;
    while (*p) {
        if (strncmp(p, prefix, n) == 0) return 1;
        const char *e = strchr(p, sep);
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* ---- checks ------------------------------------------------------------------------------- */

static void check_mount(char **a, int n)
{
    if (n < 2) return result(FAIL, "usage: mount DEST FSTYPE|* [OPT...]");
    struct mnt m;
    if (mount_of(a[0], &m) < 0) return result(FAIL, "%s: %s", a[0], strerror(errno));
    if (strcmp(m.point, a[0]) != 0)
        return result(FAIL, "%s is not a mount point (it is on %s, %s)", a[0], m.point, m.fstype);
    char found[4096];
    snprintf(found, sizeof found, "%s on %s: %s [%s] %s", m.fstype, m.point, m.opts, m.optional,
             m.super);
    if (strcmp(a[1], "*") != 0 && strcmp(a[1], m.fstype) != 0)
        return result(FAIL, "fstype %s != %s; %s", m.fstype, a[1], found);
    for (int i = 2; i < n; i++) {
        const char *o = a[i];
        int negate = (*o == '!');
        if (negate) o++;
        int have;
        if (strncmp(o, "sb:", 3) == 0) {
            have = has_token(m.super, o + 3, ',');
        } else if (strcmp(o, "strictatime") == 0) {
            have = !has_token(m.opts, "relatime", ',') && !has_token(m.opts, "noatime", ',');
        } else if (strcmp(o, "shared") == 0) {
            have = has_prefix_token(m.optional, "shared:", ' ');
        } else if (strcmp(o, "slave") == 0) {
            have = has_prefix_token(m.optional, "master:", ' ');
        } else if (strcmp(o, "unbindable") == 0) {
            have = has_token(m.optional, "unbindable", ' ');
        } else if (strcmp(o, "private") == 0) {
            have = !has_prefix_token(m.optional, "shared:", ' ') &&
                   !has_prefix_token(m.optional, "master:", ' ') &&
                   !has_token(m.optional, "unbindable", ' ');
        } else if (strncmp(o, "root=", 5) == 0) {
            have = strcmp(m.root, o + 5) == 0;
        } else {
            have = has_token(m.opts, o, ',');
        }
        if (have == negate) return result(FAIL, "%s%s not as expected; %s", negate ? "!" : "", o, found);
    }
    result(PASS, "%s", found);
}

static void check_notmount(char **a, int n)
{
    if (n < 1) return result(FAIL, "usage: notmount PATH");
    struct mnt m;
    if (mount_of(a[0], &m) < 0) {
        if (errno == ENOENT) return result(PASS, "%s does not exist", a[0]);
        return result(FAIL, "%s: %s", a[0], strerror(errno));
    }
    if (strcmp(m.point, a[0]) == 0) return result(FAIL, "%s is a mount point (%s)", a[0], m.fstype);
    result(PASS, "%s is on %s", a[0], m.point);
}

static void check_rdonly(char **a, int n, int want_ro)
{
    if (n < 1) return result(FAIL, "usage: readonly|writable PATH");
    struct statvfs sv;
    if (statvfs(a[0], &sv) < 0) return result(FAIL, "statvfs %s: %s", a[0], strerror(errno));
    int ro = (sv.f_flag & ST_RDONLY) != 0;
    if (ro != want_ro) return result(FAIL, "%s is %s", a[0], ro ? "read-only" : "writable");
    result(PASS, "%s is %s", a[0], ro ? "read-only" : "writable");
}

static void check_masked(char **a, int n)
{
    if (n < 1) return result(FAIL, "usage: masked PATH");
    struct stat st;
    if (stat(a[0], &st) < 0) {
        if (errno == ENOENT) return result(PASS, "%s does not exist", a[0]);
        return result(PASS, "%s cannot be reached: %s", a[0], strerror(errno));
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(a[0]);
        if (!d) return result(PASS, "directory %s cannot be read: %s", a[0], strerror(errno));
        struct dirent *e;
        int entries = 0;
        char first[256] = "";
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                if (!entries) snprintf(first, sizeof first, "%s", e->d_name);
                entries++;
            }
        }
        closedir(d);
        if (entries) return result(FAIL, "directory %s lists %d entries (%s...)", a[0], entries, first);
        return result(PASS, "directory %s is empty", a[0]);
    }
    int fd = open(a[0], O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return result(PASS, "%s cannot be opened: %s", a[0], strerror(errno));
    char buf[64];
    ssize_t got = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    if (got > 0) return result(FAIL, "%s is readable: %zd bytes", a[0], got);
    if (got < 0) return result(PASS, "%s cannot be read: %s", a[0], strerror(e));
    result(PASS, "%s reads as empty", a[0]);
}

static void check_device(char **a, int n)
{
    /* device PATH TYPE MAJOR MINOR [MODE|- [UID|- [GID|-]]] */
    if (n < 4) return result(FAIL, "usage: device PATH TYPE MAJOR MINOR [MODE UID GID]");
    struct stat st;
    if (stat(a[0], &st) < 0) return result(FAIL, "%s: %s", a[0], strerror(errno));
    char type = S_ISCHR(st.st_mode) ? 'c' : S_ISBLK(st.st_mode) ? 'b' : S_ISFIFO(st.st_mode) ? 'p' : '?';
    char want = a[1][0] == 'u' ? 'c' : a[1][0];
    char found[256];
    snprintf(found, sizeof found, "%c %u:%u mode %o uid %u gid %u", type, major(st.st_rdev),
             minor(st.st_rdev), st.st_mode & 07777, st.st_uid, st.st_gid);
    if (type != want) return result(FAIL, "type: %s", found);
    if (want != 'p' && (major(st.st_rdev) != strtoul(a[2], NULL, 0) ||
                        minor(st.st_rdev) != strtoul(a[3], NULL, 0)))
        return result(FAIL, "numbers: %s", found);
    if (n > 4 && strcmp(a[4], "-") && (st.st_mode & 07777) != strtoul(a[4], NULL, 8))
        return result(FAIL, "mode: %s", found);
    if (n > 5 && strcmp(a[5], "-") && st.st_uid != strtoul(a[5], NULL, 10))
        return result(FAIL, "uid: %s", found);
    if (n > 6 && strcmp(a[6], "-") && st.st_gid != strtoul(a[6], NULL, 10))
        return result(FAIL, "gid: %s", found);
    result(PASS, "%s", found);
}

static void check_symlink(char **a, int n)
{
    if (n < 2) return result(FAIL, "usage: symlink PATH TARGET");
    char buf[PATH_MAX];
    ssize_t len = readlink(a[0], buf, sizeof buf - 1);
    if (len < 0) return result(FAIL, "readlink %s: %s", a[0], strerror(errno));
    buf[len] = 0;
    if (strcmp(buf, a[1])) return result(FAIL, "%s -> %s", a[0], buf);
    result(PASS, "%s -> %s", a[0], buf);
}

static void check_rlimit(char **a, int n)
{
    static const struct { const char *name; int res; } table[] = {
        {"RLIMIT_AS", RLIMIT_AS}, {"RLIMIT_CORE", RLIMIT_CORE}, {"RLIMIT_CPU", RLIMIT_CPU},
        {"RLIMIT_DATA", RLIMIT_DATA}, {"RLIMIT_FSIZE", RLIMIT_FSIZE},
        {"RLIMIT_LOCKS", RLIMIT_LOCKS}, {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_NOFILE", RLIMIT_NOFILE}, {"RLIMIT_NPROC", RLIMIT_NPROC},
        {"RLIMIT_RSS", RLIMIT_RSS}, {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
        {"RLIMIT_RTTIME", RLIMIT_RTTIME}, {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_STACK", RLIMIT_STACK},
    };
    if (n < 3) return result(FAIL, "usage: rlimit NAME SOFT HARD");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].name, a[0])) continue;
        struct rlimit rl;
        if (getrlimit(table[i].res, &rl) < 0) return result(FAIL, "getrlimit: %s", strerror(errno));
        unsigned long long soft = strtoull(a[1], NULL, 10), hard = strtoull(a[2], NULL, 10);
        if ((unsigned long long)rl.rlim_cur != soft || (unsigned long long)rl.rlim_max != hard)
            return result(FAIL, "soft %llu hard %llu", (unsigned long long)rl.rlim_cur,
                          (unsigned long long)rl.rlim_max);
        return result(PASS, "soft %llu hard %llu", soft, hard);
    }
    result(FAIL, "unknown rlimit %s", a[0]);
}

static void check_cap(char **a, int n)
{
    static const char *sets[][2] = {{"bounding", "CapBnd"}, {"effective", "CapEff"},
                                    {"permitted", "CapPrm"}, {"inheritable", "CapInh"},
                                    {"ambient", "CapAmb"}};
    if (n < 2) return result(FAIL, "usage: cap SET HEXMASK");
    for (size_t i = 0; i < 5; i++) {
        if (strcmp(sets[i][0], a[0])) continue;
        char v[64];
        if (status_field(sets[i][1], v, sizeof v) < 0) return result(FAIL, "no %s in status", sets[i][1]);
        unsigned long long got = strtoull(v, NULL, 16), want = strtoull(a[1], NULL, 16);
        if (got != want) return result(FAIL, "%s %016llx, expected %016llx (extra %llx, missing %llx)",
                                       sets[i][1], got, want, got & ~want, want & ~got);
        return result(PASS, "%s %016llx", sets[i][1], got);
    }
    result(FAIL, "unknown capability set %s", a[0]);
}

static int ns_inode(const char *type, unsigned long long *ino, char *link, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/ns/%s", type);
    ssize_t len = readlink(path, link, size - 1);
    if (len < 0) return -1;
    link[len] = 0;
    char *b = strchr(link, '[');
    if (!b) return -1;
    *ino = strtoull(b + 1, NULL, 10);
    return 0;
}

static void check_ns(char **a, int n)
{
    /* ns TYPE same|differ INODE */
    if (n < 3) return result(FAIL, "usage: ns TYPE same|differ INODE");
    unsigned long long ino;
    char link[128];
    if (ns_inode(a[0], &ino, link, sizeof link) < 0)
        return result(FAIL, "/proc/self/ns/%s: %s", a[0], strerror(errno));
    unsigned long long ref = strtoull(a[2], NULL, 10);
    int same = ino == ref;
    if (same != (strcmp(a[1], "same") == 0))
        return result(FAIL, "%s, %s %llu", link, same ? "same as" : "differs from", ref);
    result(PASS, "%s", link);
}

static void check_groups(char **a, int n)
{
    gid_t groups[256];
    int count = getgroups(256, groups);
    if (count < 0) return result(FAIL, "getgroups: %s", strerror(errno));
    char found[2048] = "";
    for (int i = 0; i < count; i++) {
        size_t l = strlen(found);
        snprintf(found + l, sizeof found - l, "%s%u", i ? " " : "", groups[i]);
    }
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        gid_t want = (gid_t)strtoul(a[i], NULL, 10);
        int seen = 0;
        for (int j = 0; j < count; j++) seen |= groups[j] == want;
        ok = seen;
    }
    for (int j = 0; j < count && ok; j++) {
        int listed = 0;
        for (int i = 0; i < n; i++) listed |= groups[j] == (gid_t)strtoul(a[i], NULL, 10);
        ok = listed;
    }
    result(ok ? PASS : FAIL, "groups: [%s]", found);
}

static void check_ids(char **a, int n, int is_gid)
{
    if (n < 1) return result(FAIL, "usage: uid|gid N");
    unsigned r, e, s;
    if (is_gid) {
        gid_t x, y, z;
        getresgid(&x, &y, &z);
        r = x, e = y, s = z;
    } else {
        uid_t x, y, z;
        getresuid(&x, &y, &z);
        r = x, e = y, s = z;
    }
    unsigned want = (unsigned)strtoul(a[0], NULL, 10);
    int ok = r == want && e == want && s == want;
    result(ok ? PASS : FAIL, "real %u effective %u saved %u", r, e, s);
}

static void check_env(char **a, int n)
{
    if (n < 1) return result(FAIL, "usage: env NAME=VALUE");
    const char *eq = strchr(a[0], '=');
    size_t klen = eq ? (size_t)(eq - a[0]) : strlen(a[0]);
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, a[0], klen) == 0 && (*e)[klen] == '=') {
            if (strcmp(*e, a[0]) == 0) return result(PASS, "%s", *e);
            return result(FAIL, "found %s", *e);
        }
    }
    result(FAIL, "not in the environment");
}

static int g_argc;
static char **g_argv;

static void check_argv(char **a, int n)
{
    if (n < 2) return result(FAIL, "usage: argv INDEX VALUE");
    int i = atoi(a[0]);
    if (i >= g_argc) return result(FAIL, "argc is %d", g_argc);
    if (strcmp(g_argv[i], a[1])) return result(FAIL, "argv[%d] = %s", i, g_argv[i]);
    result(PASS, "argv[%d] = %s", i, g_argv[i]);
}

static void check_file(char **a, int n)
{
    if (n < 2) return result(FAIL, "usage: file PATH CONTENT");
    static char buf[BIG];
    if (read_file(a[0], buf, sizeof buf) < 0) return result(FAIL, "%s: %s", a[0], strerror(errno));
    rstrip(buf);
    if (strcmp(buf, a[1])) return result(FAIL, "%s contains \"%.200s\"", a[0], buf);
    result(PASS, "%s contains \"%s\"", a[0], buf);
}

static void check_proc_value(const char *label, const char *path, const char *want)
{
    static char buf[BIG];
    if (read_file(path, buf, sizeof buf) < 0) return result(FAIL, "%s: %s", path, strerror(errno));
    rstrip(buf);
    if (strcmp(buf, want)) return result(FAIL, "%s is \"%s\"", label, buf);
    result(PASS, "%s is \"%s\"", label, buf);
}

static void check_status(const char *key, const char *want)
{
    char v[256];
    if (status_field(key, v, sizeof v) < 0) return result(FAIL, "no %s in /proc/self/status", key);
    if (strcmp(v, want)) return result(FAIL, "%s: %s", key, v);
    result(PASS, "%s: %s", key, v);
}

static void check_syscall(char **a, int n)
{
    /* syscall NAME ok|ERRNO: make a harmless call and compare its errno */
    if (n < 2) return result(FAIL, "usage: syscall NAME ok|ERRNO");
    long rc;
    errno = 0;
    if (!strcmp(a[0], "mkdir")) {
        rc = syscall(SYS_mkdir, "/tmp/.checker-syscall", 0700);
        if (rc == 0) rmdir("/tmp/.checker-syscall");
    } else if (!strcmp(a[0], "mkdirat")) {
        rc = syscall(SYS_mkdirat, AT_FDCWD, "/tmp/.checker-syscall", 0700);
        if (rc == 0) rmdir("/tmp/.checker-syscall");
    } else if (!strcmp(a[0], "getppid")) {
        rc = syscall(SYS_getppid);
    } else if (!strcmp(a[0], "uname")) {
        struct utsname u;
        rc = syscall(SYS_uname, &u);
    } else if (!strcmp(a[0], "getpriority")) {
        rc = syscall(SYS_getpriority, PRIO_PROCESS, 0);
    } else if (!strcmp(a[0], "personality")) {
        rc = syscall(SYS_personality, 0xffffffff);
    } else {
        return result(FAIL, "syscall %s is not in the checker's table", a[0]);
    }
    int e = rc < 0 ? errno : 0;
    int want = strcmp(a[1], "ok") == 0 ? 0 : atoi(a[1]);
    if (e != want) return result(FAIL, "%s returned %ld, errno %d (%s)", a[0], rc, e, e ? strerror(e) : "none");
    result(PASS, "%s: errno %d", a[0], e);
}

/* The directory of this process's cgroup for a v1 controller (or "" for the v2 hierarchy), found
 * from /proc/self/cgroup and the matching cgroup mount's root in /proc/self/mountinfo, so that it
 * works with and without a cgroup namespace. */
static int cgroup_dir(const char *controller, char *out, size_t size)
{
    static char cg[BIG], mi[1 << 20];
    if (read_file("/proc/self/cgroup", cg, sizeof cg) < 0) return -1;
    char path[PATH_MAX] = "";
    int found = 0;
    char *save = NULL;
    for (char *line = strtok_r(cg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrls = c1 + 1;
        if ((*controller == 0 && *ctrls == 0) || (*controller && has_token(ctrls, controller, ','))) {
            snprintf(path, sizeof path, "%s", c2 + 1);
            found = 1;
            break;
        }
    }
    if (!found) {
        errno = ENOENT;
        return -1;
    }
    if (read_file("/proc/self/mountinfo", mi, sizeof mi) < 0) return -1;
    save = NULL;
    for (char *line = strtok_r(mi, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        struct mnt m;
        if (parse_mount_line(line, &m) < 0) continue;
        int match = *controller ? (!strcmp(m.fstype, "cgroup") && has_token(m.super, controller, ','))
                                : !strcmp(m.fstype, "cgroup2");
        if (!match) continue;
        size_t rl = strlen(m.root);
        const char *rel = NULL;
        if (!strcmp(m.root, "/")) rel = path;
        else if (!strncmp(path, m.root, rl) && (path[rl] == '/' || path[rl] == 0)) rel = path + rl;
        if (!rel) continue;
        snprintf(out, size, "%s%s", m.point, rel);
        struct stat st;
        if (stat(out, &st) == 0) return 0;
    }
    errno = ENOENT;
    return -1;
}

static void check_cgfile(char **a, int n)
{
    /* cgfile CONTROLLER|- FILE VALUE */
    if (n < 3) return result(FAIL, "usage: cgfile CONTROLLER FILE VALUE");
    char dir[PATH_MAX], file[PATH_MAX * 2];
    const char *ctrl = strcmp(a[0], "-") ? a[0] : "";
    if (cgroup_dir(ctrl, dir, sizeof dir) < 0)
        return result(SKIP, "no cgroup mount of %s visible: %s", a[0], strerror(errno));
    snprintf(file, sizeof file, "%s/%s", dir, a[1]);
    check_proc_value(file, file, a[2]);
}

static void check_cgpath(char **a, int n)
{
    /* cgpath CONTROLLER|- PATH: the path in /proc/self/cgroup */
    if (n < 2) return result(FAIL, "usage: cgpath CONTROLLER PATH");
    static char cg[BIG];
    if (read_file("/proc/self/cgroup", cg, sizeof cg) < 0) return result(FAIL, "%s", strerror(errno));
    const char *ctrl = strcmp(a[0], "-") ? a[0] : "";
    char *save = NULL;
    for (char *line = strtok_r(cg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        if ((*ctrl == 0 && c1[1] == 0) || (*ctrl && has_token(c1 + 1, ctrl, ','))) {
            if (strcmp(c2 + 1, a[1])) return result(FAIL, "%s: %s", a[0], c2 + 1);
            return result(PASS, "%s: %s", a[0], c2 + 1);
        }
    }
    result(FAIL, "controller %s not in /proc/self/cgroup", a[0]);
}

static void check_stat_owner(char **a, int n)
{
    if (n < 3) return result(FAIL, "usage: owner PATH UID GID");
    struct stat st;
    if (stat(a[0], &st) < 0) return result(FAIL, "%s: %s", a[0], strerror(errno));
    if (st.st_uid != strtoul(a[1], NULL, 10) || st.st_gid != strtoul(a[2], NULL, 10))
        return result(FAIL, "%s is owned by %u:%u", a[0], st.st_uid, st.st_gid);
    result(PASS, "%s is owned by %u:%u", a[0], st.st_uid, st.st_gid);
}

static void check_open(char **a, int n)
{
    /* open PATH r|w|rw ok|ERRNO */
    if (n < 3) return result(FAIL, "usage: open PATH r|w|rw ok|ERRNO");
    int flags = !strcmp(a[1], "rw") ? O_RDWR : !strcmp(a[1], "w") ? O_WRONLY : O_RDONLY;
    int fd = open(a[0], flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0) close(fd);
    int want = !strcmp(a[2], "ok") ? 0 : atoi(a[2]);
    if (e != want) return result(FAIL, "open %s (%s): errno %d (%s)", a[0], a[1], e, e ? strerror(e) : "none");
    result(PASS, "open %s (%s): errno %d", a[0], a[1], e);
}

static void check_exists(char **a, int n, int want)
{
    if (n < 1) return result(FAIL, "usage: exists|absent PATH");
    struct stat st;
    int there = lstat(a[0], &st) == 0;
    if (there != want) return result(FAIL, "%s %s", a[0], there ? "exists" : "does not exist");
    result(PASS, "%s %s", a[0], there ? "exists" : "does not exist");
}

static void check_netdev(char **a, int n)
{
    /* netdev NAME [up] [IPV4]: the interface exists in this network namespace */
    if (n < 1) return result(FAIL, "usage: netdev NAME [up|any] [IPV4]");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return result(FAIL, "socket: %s", strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", a[0]);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        int e = errno;
        close(s);
        return result(FAIL, "%s: %s", a[0], strerror(e));
    }
    int up = (ifr.ifr_flags & IFF_UP) != 0;
    char addr[64] = "none";
    struct ifreq ifa;
    memset(&ifa, 0, sizeof ifa);
    snprintf(ifa.ifr_name, IFNAMSIZ, "%s", a[0]);
    if (ioctl(s, SIOCGIFADDR, &ifa) == 0)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ifa.ifr_addr)->sin_addr, addr, sizeof addr);
    close(s);
    if (n > 1 && !strcmp(a[1], "up") && !up) return result(FAIL, "%s is down, address %s", a[0], addr);
    if (n > 2 && strcmp(a[2], addr)) return result(FAIL, "%s has address %s", a[0], addr);
    result(PASS, "%s is %s, address %s", a[0], up ? "up" : "down", addr);
}

static void check_console(void)
{
    /* /dev/console is the pty on the standard streams */
    struct stat con, in;
    if (stat("/dev/console", &con) < 0) return result(FAIL, "/dev/console: %s", strerror(errno));
    if (fstat(0, &in) < 0) return result(FAIL, "fstat 0: %s", strerror(errno));
    if (!isatty(0)) return result(FAIL, "stdin is not a terminal");
    if (!S_ISCHR(con.st_mode) || con.st_rdev != in.st_rdev)
        return result(FAIL, "/dev/console is %u:%u, stdin is %u:%u", major(con.st_rdev),
                      minor(con.st_rdev), major(in.st_rdev), minor(in.st_rdev));
    result(PASS, "/dev/console and stdin are %u:%u", major(in.st_rdev), minor(in.st_rdev));
}

static void run_check(char **a, int n)
{
    const char *c = a[0];
    a++, n--;
    if (!strcmp(c, "hostname") || !strcmp(c, "domainname")) {
        struct utsname u;
        uname(&u);
        const char *got = !strcmp(c, "hostname") ? u.nodename : u.domainname;
        const char *want = n ? a[0] : "";
        if (strcmp(got, want)) return result(FAIL, "%s is \"%s\"", c, got);
        return result(PASS, "%s is \"%s\"", c, got);
    }
    if (!strcmp(c, "cwd")) {
        char buf[PATH_MAX];
        if (!getcwd(buf, sizeof buf)) return result(FAIL, "getcwd: %s", strerror(errno));
        if (n < 1 || strcmp(buf, a[0])) return result(FAIL, "cwd is %s", buf);
        return result(PASS, "cwd is %s", buf);
    }
    if (!strcmp(c, "uid")) return check_ids(a, n, 0);
    if (!strcmp(c, "gid")) return check_ids(a, n, 1);
    if (!strcmp(c, "groups")) return check_groups(a, n);
    if (!strcmp(c, "umask")) {
        char v[32];
        if (status_field("Umask", v, sizeof v) < 0) return result(FAIL, "no Umask in status");
        if (n < 1 || strtoul(v, NULL, 8) != strtoul(a[0], NULL, 8)) return result(FAIL, "umask %s", v);
        return result(PASS, "umask %s", v);
    }
    if (!strcmp(c, "env")) return check_env(a, n);
    if (!strcmp(c, "argv")) return check_argv(a, n);
    if (!strcmp(c, "argc")) {
        if (n < 1 || g_argc != atoi(a[0])) return result(FAIL, "argc is %d", g_argc);
        return result(PASS, "argc is %d", g_argc);
    }
    if (!strcmp(c, "rlimit")) return check_rlimit(a, n);
    if (!strcmp(c, "cap")) return check_cap(a, n);
    if (!strcmp(c, "nnp")) return check_status("NoNewPrivs", n ? a[0] : "1");
    if (!strcmp(c, "seccomp")) return check_status("Seccomp", n ? a[0] : "2");
    if (!strcmp(c, "oom_score_adj")) return check_proc_value(c, "/proc/self/oom_score_adj", n ? a[0] : "");
    if (!strcmp(c, "ns")) return check_ns(a, n);
    if (!strcmp(c, "mount")) return check_mount(a, n);
    if (!strcmp(c, "notmount")) return check_notmount(a, n);
    if (!strcmp(c, "readonly")) return check_rdonly(a, n, 1);
    if (!strcmp(c, "writable")) return check_rdonly(a, n, 0);
    if (!strcmp(c, "masked")) return check_masked(a, n);
    if (!strcmp(c, "device")) return check_device(a, n);
    if (!strcmp(c, "symlink")) return check_symlink(a, n);
    if (!strcmp(c, "exists")) return check_exists(a, n, 1);
    if (!strcmp(c, "absent")) return check_exists(a, n, 0);
    if (!strcmp(c, "file")) return check_file(a, n);
    if (!strcmp(c, "sysctl")) {
        if (n < 2) return result(FAIL, "usage: sysctl NAME VALUE");
        char path[PATH_MAX];
        snprintf(path, sizeof path, "/proc/sys/%s", a[0]);
        for (char *p = path + 10; *p; p++)
            if (*p == '.') *p = '/';
        return check_proc_value(a[0], path, a[1]);
    }
    if (!strcmp(c, "syscall")) return check_syscall(a, n);
    if (!strcmp(c, "cgfile")) return check_cgfile(a, n);
    if (!strcmp(c, "cgpath")) return check_cgpath(a, n);
    if (!strcmp(c, "uidmap") || !strcmp(c, "gidmap")) {
        static char buf[BIG];
        const char *path = c[0] == 'u' ? "/proc/self/uid_map" : "/proc/self/gid_map";
        if (read_file(path, buf, sizeof buf) < 0) return result(FAIL, "%s: %s", path, strerror(errno));
        squeeze(buf);
        char want[4096] = "";
        for (int i = 0; i < n; i++) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "%s%s", i ? " " : "", a[i]);
        }
        if (strcmp(buf, want)) return result(FAIL, "%s: %s", path, buf);
        return result(PASS, "%s: %s", path, buf);
    }
    if (!strcmp(c, "owner")) return check_stat_owner(a, n);
    if (!strcmp(c, "open")) return check_open(a, n);
    if (!strcmp(c, "netdev")) return check_netdev(a, n);
    if (!strcmp(c, "console")) return check_console();
    if (!strcmp(c, "tty")) {
        int fd = n ? atoi(a[0]) : 0, want = n > 1 ? !strcmp(a[1], "yes") : 1;
        int is = isatty(fd);
        if (is != want) return result(FAIL, "fd %d is %sa terminal", fd, is ? "" : "not ");
        return result(PASS, "fd %d is %sa terminal", fd, is ? "" : "not ");
    }
    result(FAIL, "unknown check %s", c);
}

static int cmd_check(int argc, char **argv)
{
    const char *expect = NULL, *outpath = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--tap")) g_tap = 1;
        else if (!strcmp(argv[i], "--json")) g_tap = 0;
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) outpath = argv[++i];
        else if (!expect) expect = argv[i];
    }
    if (!expect) {
        fprintf(stderr, "usage: checker check EXPECT [--json|--tap] [--out FILE]\n");
        return 2;
    }
    static char buf[1 << 20];
    if (read_file(expect, buf, sizeof buf) < 0) {
        fprintf(stderr, "checker: %s: %s\n", expect, strerror(errno));
        return 2;
    }
    if (outpath) g_out = fopen(outpath, "we");
    if (g_tap) {
        int lines = 0;
        for (char *p = buf; *p; p++) lines += *p == '\n';
        printf("# checker: %s\n", expect);
    }
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ') line++;
        if (!*line || *line == '#') continue;
        snprintf(g_line, sizeof g_line, "%s", line);
        char *args[MAXARGS];
        int n = 0;
        char *s2 = NULL;
        for (char *t = strtok_r(line, " \t", &s2); t && n < MAXARGS; t = strtok_r(NULL, " \t", &s2)) {
            pct_decode(t);
            args[n++] = t;
        }
        if (n) run_check(args, n);
    }
    if (g_tap) {
        printf("1..%d\n", g_count);
        if (g_out) fprintf(g_out, "1..%d\n", g_count);
    }
    if (g_out) fclose(g_out);
    return g_failed ? 1 : 0;
}

/* ---- hook mode ---------------------------------------------------------------------------- */

static void append_json_str(char *out, size_t size, const char *key, const char *value, int comma)
{
    static char esc[1 << 17];
    json_escape(value, esc, sizeof esc);
    size_t l = strlen(out);
    snprintf(out + l, size - l, "%s\"%s\": \"%s\"", comma ? ", " : "", key, esc);
}

static long state_pid(const char *state)
{
    const char *p = strstr(state, "\"pid\"");
    if (!p) return -1;
    p = strchr(p, ':');
    if (!p) return -1;
    return strtol(p + 1, NULL, 10);
}

static int cmd_hook(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: checker hook NAME LOG [--exit N] [--sleep-ms N] [--mark PATH]\n");
        return 2;
    }
    const char *name = argv[2], *log = argv[3], *mark = NULL;
    int code = 0, sleep_ms = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--exit") && i + 1 < argc) code = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sleep-ms") && i + 1 < argc) sleep_ms = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mark") && i + 1 < argc) mark = argv[++i];
    }
    static char in[1 << 16], out[1 << 18], tmp[PATH_MAX];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(0, in + len, sizeof in - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len + 1 >= sizeof in) break;
    }
    in[len] = 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(out, sizeof out, "{\"time_ns\": %lld, \"pid\": %d", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec,
             getpid());
    append_json_str(out, sizeof out, "hook", name, 1);
    append_json_str(out, sizeof out, "stdin", in, 1);
    static const char *types[] = {"mnt", "pid", "net", "ipc", "uts", "user", "cgroup"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        unsigned long long ino;
        char link[128], key[32];
        snprintf(key, sizeof key, "ns_%s", types[i]);
        if (ns_inode(types[i], &ino, link, sizeof link) < 0) snprintf(link, sizeof link, "?");
        append_json_str(out, sizeof out, key, link, 1);
    }
    ssize_t l = readlink("/proc/self/root", tmp, sizeof tmp - 1);
    tmp[l > 0 ? l : 0] = 0;
    append_json_str(out, sizeof out, "root", tmp, 1);
    if (!getcwd(tmp, sizeof tmp)) tmp[0] = 0;
    append_json_str(out, sizeof out, "cwd", tmp, 1);
    long spid = state_pid(in);
    if (spid > 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/exe", spid);
        l = readlink(path, tmp, sizeof tmp - 1);
        tmp[l > 0 ? l : 0] = 0;
        append_json_str(out, sizeof out, "target_exe", l > 0 ? tmp : strerror(errno), 1);
        snprintf(path, sizeof path, "/proc/%ld/root", spid);
        l = readlink(path, tmp, sizeof tmp - 1);
        tmp[l > 0 ? l : 0] = 0;
        append_json_str(out, sizeof out, "target_root", l > 0 ? tmp : strerror(errno), 1);
        snprintf(path, sizeof path, "/proc/%ld/ns/mnt", spid);
        l = readlink(path, tmp, sizeof tmp - 1);
        tmp[l > 0 ? l : 0] = 0;
        append_json_str(out, sizeof out, "target_ns_mnt", l > 0 ? tmp : strerror(errno), 1);
        snprintf(path, sizeof path, "/proc/%ld/ns/net", spid);
        l = readlink(path, tmp, sizeof tmp - 1);
        tmp[l > 0 ? l : 0] = 0;
        append_json_str(out, sizeof out, "target_ns_net", l > 0 ? tmp : strerror(errno), 1);
        /* alive, or "zombie"/"no": an unreaped zombie has finished running */
        static char st[1024];
        snprintf(path, sizeof path, "/proc/%ld/stat", spid);
        const char *alive = "no";
        if (read_file(path, st, sizeof st) > 0) {
            const char *paren = strrchr(st, ')');
            alive = (paren && (paren[2] == 'Z' || paren[2] == 'X')) ? "zombie" : "yes";
        }
        append_json_str(out, sizeof out, "target_alive", alive, 1);
    }
    l = readlink("/proc/1/exe", tmp, sizeof tmp - 1);
    tmp[l > 0 ? l : 0] = 0;
    append_json_str(out, sizeof out, "pid1_exe", l > 0 ? tmp : strerror(errno), 1);
    if (mark) {
        struct mnt m;
        int is_mount = mount_of(mark, &m) == 0 && strcmp(m.point, mark) == 0;
        append_json_str(out, sizeof out, "mark", is_mount ? "mounted" : "absent", 1);
    }
    /* argv and environment, as JSON arrays */
    {
        size_t o = strlen(out);
        snprintf(out + o, sizeof out - o, ", \"argv\": [");
        for (int i = 0; i < argc; i++) {
            static char esc[8192];
            json_escape(argv[i], esc, sizeof esc);
            o = strlen(out);
            snprintf(out + o, sizeof out - o, "%s\"%s\"", i ? ", " : "", esc);
        }
        o = strlen(out);
        snprintf(out + o, sizeof out - o, "], \"env\": [");
        int first = 1;
        for (char **e = environ; *e; e++) {
            static char esc[8192];
            json_escape(*e, esc, sizeof esc);
            o = strlen(out);
            snprintf(out + o, sizeof out - o, "%s\"%s\"", first ? "" : ", ", esc);
            first = 0;
        }
        o = strlen(out);
        snprintf(out + o, sizeof out - o, "]}\n");
    }
    if (sleep_ms > 0) {
        struct timespec d = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
        /* the record says when the hook finished, which is what ordering checks compare */
        clock_gettime(CLOCK_MONOTONIC, &ts);
    }
    int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0) {
        ssize_t w = write(fd, out, strlen(out)); /* one write: appends do not interleave */
        (void)w;
        close(fd);
    }
    return code;
}

/* ---- process modes ------------------------------------------------------------------------ */

static volatile sig_atomic_t g_sig = 0;
static void on_signal(int s) { g_sig = s; }

static int write_text_flags(const char *path, const char *text, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0666);
    if (fd < 0) return -1;
    ssize_t w = write(fd, text, strlen(text));
    close(fd);
    return w < 0 ? -1 : 0;
}

static int write_text(const char *path, const char *text)
{
    return write_text_flags(path, text, O_TRUNC);
}

static int cmd_wait_signal(int argc, char **argv)
{
    if (argc < 3) return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP) sigaction(s, &sa, NULL);
    write_text(argv[2], "ready\n");
    while (!g_sig) pause();
    char buf[64];
    snprintf(buf, sizeof buf, "signal %d\n", (int)g_sig);
    write_text(argv[2], buf);
    return 0;
}

int main(int argc, char **argv)
{
    g_argc = argc;
    g_argv = argv;
    if (argc < 2) {
        fprintf(stderr, "usage: checker check|hook|wait-signal|sleep|write ...\n");
        return 2;
    }
    if (!strcmp(argv[1], "check")) return cmd_check(argc, argv);
    if (!strcmp(argv[1], "hook")) return cmd_hook(argc, argv);
    if (!strcmp(argv[1], "wait-signal")) return cmd_wait_signal(argc, argv);
    if (!strcmp(argv[1], "sleep")) {
        for (;;) pause();
    }
    if ((!strcmp(argv[1], "write") || !strcmp(argv[1], "append")) && argc >= 4) {
        if (write_text_flags(argv[2], argv[3], argv[1][0] == 'a' ? O_APPEND : O_TRUNC) < 0) return 1;
        if (argc > 4 && !strcmp(argv[4], "--then-sleep"))
            for (;;) pause();
        return 0;
    }
    fprintf(stderr, "checker: unknown mode %s\n", argv[1]);
    return 2;
}
