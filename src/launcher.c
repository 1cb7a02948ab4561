/* The `pyrunc` command: finds the interpreter and the package of the installation it belongs
 * to, then execs `python -s -S -P <site>/pyrunc/_launch.py <site> ARGS...`.
 *
 * Why a compiled launcher (see docs/packaging.md):
 * - pip installs a wheel's scripts as they are, except that it rewrites a `#!python` first line
 *   to the installing interpreter, dropping any flags; a launcher that must run Python without
 *   `site` (-S: site and its .pth files cost 5-25 ms a command) and from the protected
 *   interpreter (S1, pyrunc/sealed.py) cannot be such a script, and a `#!/bin/sh` one costs a
 *   shell (~1 ms) and fds.
 * - Nothing is fixed at build time but the Python version the wheel is built for (its ABI tag
 *   guarantees the installing interpreter has it): the interpreter and the package are found
 *   from where this file is installed. pip puts a scheme's scripts in <prefix>/bin and its
 *   packages in <prefix>/lib/pythonX.Y/site-packages (dist-packages on Debian, lib64 on some
 *   distributions), for a venv, pipx, --user, or a system prefix alike.
 * - A moved or half-removed install fails with one line naming what is missing; it never
 *   falls back to some other copy of pyrunc.
 * It opens no file descriptor, so it runs with as few fds as runc needs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#ifndef PY_SHORT
#error "PY_SHORT (the Python version, e.g. \"3.11\") must be defined"
#endif
#ifndef EDITABLE_ROOT
#define EDITABLE_ROOT "" /* an editable install: the source tree holding pyrunc/ */
#endif
#define PROTECTED_ROOT "/run/pyrunc-exe"

static const char *self = "pyrunc";

static void fail(const char *what, const char *path) {
    /* one line, the whole message in one write */
    char line[3 * PATH_MAX];
    int n = snprintf(line, sizeof line, "pyrunc: broken installation (%s): %s %s; reinstall pyrunc\n",
                     self, what, path);
    if (n > 0)
        (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    _exit(1);
}

/* --- SHA-256 (FIPS 180-4), for the protected interpreter's key: pyrunc.sealed's path --- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256_hex16(const char *s, char out[17]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t n = strlen(s), i = 0;
    unsigned char block[64];
    for (; i + 64 <= n; i += 64)
        sha256_block(h, (const unsigned char *)s + i);
    size_t rest = n - i;
    memset(block, 0, sizeof block);
    memcpy(block, s + i, rest);
    block[rest] = 0x80;
    if (rest >= 56) {
        sha256_block(h, block);
        memset(block, 0, sizeof block);
    }
    uint64_t bits = (uint64_t)n * 8;
    for (int j = 0; j < 8; j++)
        block[63 - j] = (unsigned char)(bits >> (8 * j));
    sha256_block(h, block);
    for (int j = 0; j < 8; j++)
        snprintf(out + 2 * j, 3, "%02x", (unsigned)(h[j / 4] >> (24 - 8 * (j % 4))) & 0xff);
    out[16] = 0;
}

/* --- finding the installation --- */

static int is_file(const char *path, int mode) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, mode) == 0;
}

static int site_dir(const char *prefix, char *out) {
    static const char *const layouts[] = {
        "lib/python" PY_SHORT "/site-packages", "lib/python" PY_SHORT "/dist-packages",
        "lib/python3/dist-packages", "lib64/python" PY_SHORT "/site-packages"};
    char probe[PATH_MAX];
    for (size_t i = 0; i < sizeof layouts / sizeof *layouts; i++) {
        snprintf(out, PATH_MAX, "%s/%s", prefix, layouts[i]);
        snprintf(probe, sizeof probe, "%s/pyrunc/_launch.py", out);
        if (EDITABLE_ROOT[0] ? access(out, F_OK) == 0 : is_file(probe, R_OK))
            return 1;
    }
    return 0;
}

static int find_interpreter(const char *bindir, char *out) {
    snprintf(out, PATH_MAX, "%s/python" PY_SHORT, bindir);
    if (is_file(out, X_OK))
        return 1;
    /* a system or --user install: the scripts and the interpreter are in different places */
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        if (len && path[0] == '/') {
            snprintf(out, PATH_MAX, "%.*s/python" PY_SHORT, (int)len, path);
            if (is_file(out, X_OK))
                return 1;
        }
        path += len + (end != NULL);
    }
    return 0;
}

int main(int argc, char **argv) {
    char exe[PATH_MAX], bindir[PATH_MAX], prefix[PATH_MAX], site[PATH_MAX];
    char python[PATH_MAX], real[PATH_MAX], script[PATH_MAX], protected[PATH_MAX];
    (void)argc;
    /* The soft fd limit up to the hard one, as the Go runtime does for runc: the interpreter
       and the runtime need more fds than a caller's `ulimit -Sn 4` (pyrunc/fdlimit.py) */
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max &&
        nofile.rlim_max != RLIM_INFINITY) {
        nofile.rlim_cur = nofile.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (!realpath("/proc/self/exe", exe)) {
        /* no /proc: our argv[0], as the shell found it */
        if (!argv[0] || !strchr(argv[0], '/') || !realpath(argv[0], exe))
            fail("cannot find itself", argv[0] ? argv[0] : "");
    }
    self = exe;
    snprintf(bindir, sizeof bindir, "%s", exe);
    *strrchr(bindir, '/') = 0;
    snprintf(prefix, sizeof prefix, "%s", bindir);
    char *slash = strrchr(prefix, '/');
    if (slash == prefix)
        prefix[1] = 0;
    else if (slash)
        *slash = 0;

    int found_site = site_dir(prefix, site);
    if (EDITABLE_ROOT[0]) {
        snprintf(script, sizeof script, "%s/pyrunc/_launch.py", EDITABLE_ROOT);
        if (!is_file(script, R_OK))
            fail("no editable source tree at", EDITABLE_ROOT);
        if (!found_site)
            snprintf(site, sizeof site, "%s", EDITABLE_ROOT);
    } else {
        if (!found_site) {
            snprintf(site, sizeof site, "%s/lib/python" PY_SHORT "/site-packages", prefix);
            fail("no pyrunc package under", site);
        }
        snprintf(script, sizeof script, "%s/pyrunc/_launch.py", site);
    }
    if (!find_interpreter(bindir, python))
        fail("no interpreter python" PY_SHORT " beside it or on PATH, for", bindir);
    if (!realpath(python, real))
        fail("cannot resolve the interpreter", python);

    /* S1: the read-only overlay of the interpreter's directory, once pyrunc.sealed mounted it */
    char key[17], *name = strrchr(real, '/');
    *name++ = 0;
    sha256_hex16(real, key);
    snprintf(protected, sizeof protected, PROTECTED_ROOT "/%s/%s", key, name);
    struct statvfs vfs;
    const char *run = python;
    if (access(protected, X_OK) == 0 && statvfs(protected, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        run = protected;

    char **args = calloc((size_t)argc + 7, sizeof *args);
    if (!args)
        fail("out of memory", "");
    int n = 0;
    args[n++] = (char *)run;
    args[n++] = "-s";
    args[n++] = "-S";
    args[n++] = "-P";
    args[n++] = script;
    args[n++] = site;
    for (int i = 1; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    execv(run, args);
    char why[PATH_MAX + 64];
    snprintf(why, sizeof why, "%s (%s)", run, strerror(errno));
    fail("cannot execute", why);
    return 1;
}
