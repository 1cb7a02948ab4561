"""linux.seccomp: filters compiled by pyrunc.seccomp (libseccomp) and loaded by the init.

Unit tests run the compiled classic-BPF program through a small interpreter (below) on
synthetic `seccomp_data`, so every comparison operator is checked without a container;
container tests check the filter the process really runs under, including podman's own
default profile (converted as podman does, see helpers_security.podman_profile_to_oci).
"""

from __future__ import annotations

import copy
import json
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Bundle, Pyrunc
from helpers_security import (
    PODMAN_SECCOMP,
    ensure_podman_profile,
    one_line,
    podman_profile_to_oci,
    proc_status,
    start_sleeper,
)

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
NR_PERSONALITY = 135  # x86_64
NR_MKDIR = 83
NR_GETPID = 39
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
RET_KILL_THREAD = 0x00000000
RET_KILL_PROCESS = 0x80000000
RET_LOG = 0x7FFC0000
RET_TRAP = 0x00030000
MASK64 = (1 << 64) - 1

OPERATORS = {
    "SCMP_CMP_NE": lambda arg, v, _m: arg != v,
    "SCMP_CMP_LT": lambda arg, v, _m: arg < v,
    "SCMP_CMP_LE": lambda arg, v, _m: arg <= v,
    "SCMP_CMP_EQ": lambda arg, v, _m: arg == v,
    "SCMP_CMP_GE": lambda arg, v, _m: arg >= v,
    "SCMP_CMP_GT": lambda arg, v, _m: arg > v,
    # OCI: value is the mask, valueTwo the expected result
    "SCMP_CMP_MASKED_EQ": lambda arg, v, m: arg & v == m,
}


# --- a classic BPF interpreter for seccomp programs ----------------------------------


def alu(op: int, a: int, operand: int) -> int:
    if op == 0x00:
        return a + operand
    if op == 0x10:
        return a - operand
    if op == 0x20:
        return a * operand
    if op == 0x30:
        return a // operand
    if op == 0x40:
        return a | operand
    if op == 0x50:
        return a & operand
    if op == 0x60:
        return a << operand
    if op == 0x70:
        return a >> operand
    if op == 0x80:
        return -a
    if op == 0x90:
        return a % operand
    if op == 0xA0:
        return a ^ operand
    raise AssertionError(f"unsupported BPF_ALU op {op:#x}")


def run_bpf(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64,
            ip: int = 0) -> int:
    """The seccomp return value of `program` for one syscall (struct seccomp_data)."""
    full = (tuple(args) + (0,) * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, ip, *(a & MASK64 for a in full))
    assert len(program) % 8 == 0 and program, "a BPF program is a list of 8-byte instructions"
    insns = [struct.unpack_from("<HBBI", program, off) for off in range(0, len(program), 8)]
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(100000):
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:  # BPF_LD
            mode = code & 0xE0
            if mode == 0x20:  # ABS
                a = struct.unpack_from("<I", data, k)[0]
            elif mode == 0x00:  # IMM
                a = k
            elif mode == 0x60:  # MEM
                a = mem[k]
            elif mode == 0x80:  # LEN
                a = len(data)
            else:
                raise AssertionError(f"unsupported BPF_LD mode {code:#x}")
        elif cls == 0x01:  # BPF_LDX
            mode = code & 0xE0
            if mode == 0x00:
                x = k
            elif mode == 0x60:
                x = mem[k]
            else:
                x = len(data)
        elif cls == 0x02:  # BPF_ST
            mem[k] = a
        elif cls == 0x03:  # BPF_STX
            mem[k] = x
        elif cls == 0x04:  # BPF_ALU
            operand = x if code & 0x08 else k
            a = alu(code & 0xF0, a, operand) & 0xFFFFFFFF
        elif cls == 0x05:  # BPF_JMP
            op = code & 0xF0
            operand = x if code & 0x08 else k
            if op == 0x00:
                pc += k
                continue
            taken = {
                0x10: a == operand, 0x20: a > operand, 0x30: a >= operand,
                0x40: bool(a & operand),
            }[op]  # fmt: skip
            pc += jt if taken else jf
        elif cls == 0x06:  # BPF_RET
            return a if code & 0x10 else k
        elif cls == 0x07:  # BPF_MISC
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
    raise AssertionError("the BPF program did not return")


# --- unit tests: compile_seccomp on model objects from load_config --------------------


def compile_for(base_config: dict[str, Any], seccomp: dict[str, Any]) -> tuple[bytes, int]:
    from pyrunc.seccomp import compile_seccomp
    from pyrunc.spec.converter import load_config

    config = copy.deepcopy(base_config)
    config["linux"]["seccomp"] = seccomp
    spec = load_config(json.dumps(config))
    return compile_seccomp(spec.linux.seccomp)


@pytest.fixture(scope="module")
def base_config() -> dict[str, Any]:
    return {
        "ociVersion": "1.0.2",
        "process": {"args": ["sh"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "mount"}]},
    }


PROBES = (0, 1, 7, 8, 9, 0x80, 0xFF, 0x1_0000_0000, 0x1_0000_0008, MASK64)


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_compile_every_operator(base_config: dict[str, Any], operator: str) -> None:
    value, value_two = (0x0F, 0x08) if operator == "SCMP_CMP_MASKED_EQ" else (8, 0)
    arg: dict[str, Any] = {"index": 0, "value": value, "op": operator}
    if value_two:
        arg["valueTwo"] = value_two
    program, flags = compile_for(base_config, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
                      "args": [arg]}],
    })  # fmt: skip
    assert flags == 0
    for probe in PROBES:
        want = OPERATORS[operator](probe, value, value_two)
        got = run_bpf(program, NR_PERSONALITY, (probe,))
        assert got == (RET_ERRNO | 33 if want else RET_ALLOW), (operator, hex(probe))
    # other syscalls are never affected
    assert run_bpf(program, NR_GETPID) == RET_ALLOW


def test_compile_args_on_several_indexes_are_anded(base_config: dict[str, Any]) -> None:
    program, _ = compile_for(base_config, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                               {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]}],
    })  # fmt: skip
    assert run_bpf(program, NR_PERSONALITY, (1, 2)) == RET_ERRNO | 5
    assert run_bpf(program, NR_PERSONALITY, (1, 3)) == RET_ALLOW
    assert run_bpf(program, NR_PERSONALITY, (0, 2)) == RET_ALLOW


def test_compile_args_on_the_same_index_are_ored(base_config: dict[str, Any]) -> None:
    # runc: several comparisons of one argument become one rule each
    program, _ = compile_for(base_config, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                      "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                               {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}],
    })  # fmt: skip
    assert run_bpf(program, NR_PERSONALITY, (1,)) == RET_ERRNO | 5
    assert run_bpf(program, NR_PERSONALITY, (2,)) == RET_ERRNO | 5
    assert run_bpf(program, NR_PERSONALITY, (3,)) == RET_ALLOW


@pytest.mark.parametrize(
    ("action", "errno_ret", "want"),
    [
        ("SCMP_ACT_ERRNO", None, RET_ERRNO | 1),  # EPERM when errnoRet is absent
        ("SCMP_ACT_ERRNO", 38, RET_ERRNO | 38),
        ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", None, RET_TRAP),
        ("SCMP_ACT_LOG", None, RET_LOG),
    ],
)
def test_compile_actions(
    base_config: dict[str, Any], action: str, errno_ret: int | None, want: int
) -> None:
    rule: dict[str, Any] = {"names": ["mkdir"], "action": action}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    program, _ = compile_for(base_config, {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
    assert run_bpf(program, NR_MKDIR) == want
    assert run_bpf(program, NR_GETPID) == RET_ALLOW


def test_compile_default_errno_and_allow_list(base_config: dict[str, Any]) -> None:
    program, _ = compile_for(base_config, {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}],
    })  # fmt: skip
    assert run_bpf(program, NR_GETPID) == RET_ALLOW
    assert run_bpf(program, NR_MKDIR) == RET_ERRNO | 38


def test_compile_unknown_syscall_names_are_skipped(base_config: dict[str, Any]) -> None:
    program, _ = compile_for(base_config, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_xyz", "mkdir"], "action": "SCMP_ACT_ERRNO"}],
    })  # fmt: skip
    assert run_bpf(program, NR_MKDIR) == RET_ERRNO | 1


def test_compile_architectures(base_config: dict[str, Any]) -> None:
    """Without x86 in `architectures` a 32-bit syscall gets the kill of a foreign arch;
    with it, the rule for mkdir (39 on i386) applies to the i386 number too."""
    seccomp = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7}],
    }
    native_only, _ = compile_for(base_config, seccomp)
    assert run_bpf(native_only, NR_MKDIR) == RET_ERRNO | 7
    assert run_bpf(native_only, 39, arch=AUDIT_ARCH_I386) != RET_ALLOW
    both, _ = compile_for(
        base_config, dict(seccomp, architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    )
    assert run_bpf(both, 39, arch=AUDIT_ARCH_I386) == RET_ERRNO | 7
    assert run_bpf(both, 20, arch=AUDIT_ARCH_I386) == RET_ALLOW  # getpid on i386


def test_compile_flags(base_config: dict[str, Any]) -> None:
    _, flags = compile_for(base_config, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    })  # fmt: skip
    assert flags == 2 | 4


@pytest.mark.parametrize(
    ("seccomp", "where"),
    [
        ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
         "linux.seccomp.flags"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]}]},
         "linux.seccomp.syscalls[0].args[0].op"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}]},
         "linux.seccomp.syscalls[0].errnoRet"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
         "linux.seccomp"),
    ],
)  # fmt: skip
def test_compile_invalid_is_a_config_error(
    base_config: dict[str, Any], seccomp: dict[str, Any], where: str
) -> None:
    from pyrunc.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        compile_for(base_config, seccomp)
    message = str(info.value)
    assert message.startswith(f"config.json: {where}"), message
    assert "\n" not in message


# --- containers -------------------------------------------------------------------


def with_seccomp(bundle: Bundle, seccomp: dict[str, Any], script: str) -> Bundle:
    bundle.config["linux"]["seccomp"] = seccomp
    bundle.config["root"]["readonly"] = False
    return bundle.sh(script)


def test_errno_rule_blocks_mkdir(bundle: Bundle, pyrunc: Pyrunc) -> None:
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 39}],  # ENOTEMPTY
    }, "mkdir /tmp/d; echo status=$?; test -d /tmp/d || echo absent; "
       "touch /tmp/f && echo touch-ok")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.returncode == 0, proc.stderr
    assert "Directory not empty" in proc.stderr
    assert proc.stdout.split() == ["status=1", "absent", "touch-ok"]


def test_default_errno_with_allow_list(bundle: Bundle, pyrunc: Pyrunc) -> None:
    allowed = allow_list(exclude={"mkdir", "mkdirat"})
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
    }, "echo allowed; mkdir /tmp/d")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.stdout == "allowed\n", proc.stderr
    assert proc.returncode == 1
    assert "Function not implemented" in proc.stderr


def test_allow_list_with_execve_but_not_execveat(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """An allow-list that runc 1.1.5 runs with (it execs with execve, not execveat).

    pyrunc executes through execveat(fd) (S1); a profile without execveat must still start
    the process, as it does with runc.
    """
    allowed = allow_list(exclude={"execveat"})
    assert "execve" in allowed
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
    }, "echo started")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert (proc.returncode, proc.stdout) == (0, "started\n"), proc.stderr


@pytest.mark.parametrize(
    ("operator", "value", "value_two", "blocked"),
    [
        ("SCMP_CMP_EQ", 8, 0, {"linux32"}),
        ("SCMP_CMP_NE", 8, 0, {"linux64"}),
        ("SCMP_CMP_GT", 0, 0, {"linux32"}),
        ("SCMP_CMP_MASKED_EQ", 0x08, 0x08, {"linux32"}),
    ],
)
def test_args_comparison(
    bundle: Bundle, pyrunc: Pyrunc, operator: str, value: int, value_two: int,
    blocked: set[str],
) -> None:
    """busybox linux32 calls personality(PER_LINUX32 = 8), linux64 personality(PER_LINUX = 0)."""
    arg: dict[str, Any] = {"index": 0, "value": value, "op": operator}
    if value_two:
        arg["valueTwo"] = value_two
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
                      "args": [arg]}],
    }, "linux32 echo ran-linux32; linux64 echo ran-linux64; true")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.returncode == 0, proc.stderr
    for cmd in ("linux32", "linux64"):
        if cmd in blocked:
            assert f"ran-{cmd}" not in proc.stdout
            assert f"{cmd}: personality" in proc.stderr
            assert "Numerical argument out of domain" in proc.stderr
        else:
            assert f"ran-{cmd}" in proc.stdout, proc.stderr


def test_unknown_syscall_names_are_skipped(bundle: Bundle, pyrunc: Pyrunc) -> None:
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["not_a_syscall_at_all", "mkdir", "mkdirat"],
                      "action": "SCMP_ACT_ERRNO"}],
    }, "mkdir /tmp/d")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.returncode == 1
    assert "Operation not permitted" in proc.stderr


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS"])
def test_kill_action(bundle: Bundle, pyrunc: Pyrunc, action: str) -> None:
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}],
    }, "exec mkdir /tmp/d")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.returncode == 128 + 31, proc.stderr  # SIGSYS


def test_flag_log_accepted(bundle: Bundle, pyrunc: Pyrunc) -> None:
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }, "grep ^Seccomp: /proc/self/status; mkdir /tmp/d")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.returncode == 1
    assert proc.stdout == "Seccomp:\t2\n"
    assert "Operation not permitted" in proc.stderr


def test_filter_loads_without_no_new_privileges(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["noNewPrivileges"] = False
    with_seccomp(bundle, {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }, "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/d")  # fmt: skip
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.returncode == 1
    assert proc.stdout.split() == ["NoNewPrivs:", "0", "Seccomp:", "2"]
    assert "Operation not permitted" in proc.stderr


# --- podman's default profile ---------------------------------------------------------


@pytest.fixture(scope="session")
def podman_profile() -> dict[str, Any]:
    reason = ensure_podman_profile()
    if reason:
        pytest.skip(reason)
    return json.loads(PODMAN_SECCOMP.read_text())


def allow_list(exclude: set[str]) -> list[str]:
    """The unconditional allow rules of podman's profile (or a fallback list), less `exclude`."""
    names: list[str] = []
    if PODMAN_SECCOMP.is_file():
        for call in json.loads(PODMAN_SECCOMP.read_text())["syscalls"]:
            if call["action"] == "SCMP_ACT_ALLOW" and not call.get("args"):
                if not (call.get("includes") or {}).get("caps"):
                    names.extend(call["names"])
    else:
        names = FALLBACK_ALLOW
    names.append("arch_prctl")
    return sorted(set(names) - exclude)


FALLBACK_ALLOW = """access arch_prctl brk capget capset chdir close dup dup2 dup3 execve execveat
exit exit_group fcntl fstat fstatfs futex getcwd getdents64 getegid geteuid getgid getpgrp
getpid getppid getrandom getuid ioctl lseek lstat mkdir mkdirat mmap mprotect munmap newfstatat
open openat pipe pipe2 poll prctl pread64 prlimit64 read readlink readlinkat rseq rt_sigaction
rt_sigprocmask rt_sigreturn set_robust_list set_tid_address stat statx sysinfo uname wait4 write
writev clone clone3 fork vfork kill getrlimit setpgid getpgid""".split()


PROBE_C = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    /* add_key(2) into the process keyring: allowed for root, in no rule of podman's profile */
    long r = syscall(SYS_add_key, "user", "pyrunc-probe", "v", 1L, -2L);
    if (r < 0) { printf("add_key: %s\n", strerror(errno)); return 1; }
    printf("add_key: ok\n");
    return 0;
}
"""


@pytest.fixture(scope="session")
def add_key_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static binary calling add_key(2): busybox has no applet that uses a syscall podman's
    profile leaves out (those it blocks with EPERM, e.g. swapon, fail with EPERM without the
    profile too, for lack of CAP_SYS_ADMIN)."""
    if not shutil.which("gcc"):
        pytest.skip("gcc is missing (tests/setup.sh installs it)")
    src = tmp_path_factory.mktemp("probe") / "probe.c"
    src.write_text(PROBE_C)
    out = src.with_suffix("")
    proc = subprocess.run(["gcc", "-static", "-O", "-o", str(out), str(src)],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip(f"cannot build a static probe: {proc.stderr.strip()[-300:]}")
    return out


def test_podman_default_profile(
    bundle: Bundle, pyrunc: Pyrunc, podman_profile: dict[str, Any], add_key_probe: Path
) -> None:
    shutil.copy(add_key_probe, bundle.rootfs / "bin" / "probe")
    caps = bundle.process["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" not in caps
    oci = podman_profile_to_oci(podman_profile, caps)
    assert oci["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert oci["defaultAction"] == "SCMP_ACT_ERRNO" and oci["defaultErrnoRet"] == 38
    assert all(set(rule) <= {"names", "action", "errnoRet", "args"} for rule in oci["syscalls"])
    # the CAP_SYS_ADMIN-only allow rules are gone, the matching errno rules stay
    allowed = {n for r in oci["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
    assert "bpf" not in allowed and "arch_prctl" in allowed and "sync_file_range2" not in allowed

    # without the profile add_key works: the control
    bundle.config["root"]["readonly"] = False
    bundle.sh("probe")
    control = pyrunc("run", "--bundle", bundle.path, "sc0")
    assert (control.returncode, control.stdout) == (0, "add_key: ok\n"), control.stderr

    script = ("echo hello; ls / > /dev/null && echo ls-ok; linux32 true && echo personality-ok; "
              "grep ^Seccomp: /proc/self/status; probe; echo probe=$?")
    with_seccomp(bundle, oci, script)
    proc = pyrunc("run", "--bundle", bundle.path, "sc1")
    assert proc.returncode == 0, proc.stderr
    # add_key is in no rule: the profile's default, ENOSYS
    assert proc.stdout.split("\n") == [
        "hello", "ls-ok", "personality-ok", "Seccomp:\t2", "add_key: Function not implemented",
        "probe=1", "",
    ], proc.stderr


def test_podman_profile_applies_to_exec(
    bundle: Bundle, pyrunc: Pyrunc, podman_profile: dict[str, Any], add_key_probe: Path
) -> None:
    shutil.copy(add_key_probe, bundle.rootfs / "bin" / "probe")
    bundle.config["linux"]["seccomp"] = podman_profile_to_oci(
        podman_profile, bundle.process["capabilities"]["bounding"]
    )
    bundle.write()
    init = start_sleeper(pyrunc, bundle, "sc1")
    assert proc_status(init)["Seccomp"] == "2"
    proc = pyrunc("exec", "sc1", "sh", "-c", "echo in-exec; probe")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "in-exec\nadd_key: Function not implemented\n"


# --- SCMP_ACT_NOTIFY: the notify fd goes to a seccomp agent at listenerPath ----------------

NOTIF_RECV = 0xC0502100  # SECCOMP_IOCTL_NOTIF_RECV (struct seccomp_notif, 80 bytes)
NOTIF_SEND = 0xC0182101  # SECCOMP_IOCTL_NOTIF_SEND (struct seccomp_notif_resp, 24 bytes)


def _seccomp_agent(path: Path, answers: int, out: list[Any]) -> Any:
    """A minimal agent: one connection, the state JSON + one fd, then `answers` replies of
    EACCES. Runs in a thread; what it saw goes to `out`."""
    import array
    import fcntl
    import os
    import socket
    import threading

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        fds = array.array("i")
        data, ancillary, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        for _level, _kind, payload in ancillary:
            fds.frombytes(payload[:4])
        out.append(json.loads(data))
        out.append(len(fds))
        conn.close()
        for _ in range(answers):
            buf = bytearray(80)
            fcntl.ioctl(fds[0], NOTIF_RECV, buf)
            notif_id, _pid, _flags, nr = struct.unpack_from("QIIi", buf)
            out.append(nr)
            fcntl.ioctl(fds[0], NOTIF_SEND, bytearray(struct.pack("QqiI", notif_id, 0, -13, 0)))
        os.close(fds[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


@pytest.mark.parametrize("nnp", [True, False])
def test_notify_sends_the_fd_to_the_listener(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path, nnp: bool
) -> None:
    """config-linux.md listenerPath: one connection, the container process state with
    fds ["seccompFd"], metadata, and the fd by SCM_RIGHTS; the agent decides the syscall."""
    sock = tmp_path / "agent.sock"
    seen: list[Any] = []
    server, thread = _seccomp_agent(sock, 1, seen)
    try:
        bundle.config["root"]["readonly"] = False
        bundle.process["noNewPrivileges"] = nnp
        bundle.config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": str(sock),
            "listenerMetadata": "agent-meta",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
        }
        bundle.sh("mkdir /tmp/notified; echo mkdir=$?")
        proc = pyrunc("run", "-b", bundle, "scn1", timeout=30)
        thread.join(10)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr
    assert "mkdir=1" in proc.stdout and "Permission denied" in proc.stderr
    state, nfds, nr = seen
    assert nfds == 1 and state["fds"] == ["seccompFd"] and state["metadata"] == "agent-meta"
    assert state["state"]["id"] == "scn1" and state["pid"] > 0
    assert nr == NR_MKDIR


def test_notify_without_listener_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }
    bundle.write()
    proc = pyrunc("create", "-b", bundle, "scn2")
    assert proc.returncode == 1
    assert "linux.seccomp.listenerPath" in one_line(proc.stderr)
    assert not (pyrunc.root / "scn2").exists()
