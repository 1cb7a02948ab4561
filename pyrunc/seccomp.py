"""linux.seccomp -> a classic BPF program (compiled with libseccomp in the parent) + flags."""

from __future__ import annotations

from pyrunc.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.spec.compiled import LinuxSeccomp
    from pyrunc.state import HookState

EPERM = 1
ACTIONS: dict[str, int] = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000, "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_NOTIFY": 0x7FC00000,
}  # fmt: skip
OPERATORS: dict[str, int] = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}  # fmt: skip
FLAGS: dict[str, int] = {
    "SECCOMP_FILTER_FLAG_TSYNC": 0,  # the init is single-threaded: nothing to synchronise
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
ARCHES = (
    "X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32", "MIPSEL",
    "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390", "S390X", "PARISC",
    "PARISC64", "RISCV64", "LOONGARCH64", "M68K", "SH", "SHEB",
)  # fmt: skip


TAKES_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")


def action_value(name: str, errno_ret: int | None, default_errno: int | None) -> int:
    value = ACTIONS[name]
    if name in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        ret = errno_ret if errno_ret is not None else default_errno
        value |= (EPERM if ret is None else ret) & 0xFFFF
    return value


SECCOMP_FILTER_FLAG_NEW_LISTENER = 8


def uses_notify(seccomp: LinuxSeccomp) -> bool:
    return seccomp.default_action == "SCMP_ACT_NOTIFY" or any(
        s.action == "SCMP_ACT_NOTIFY" for s in seccomp.syscalls
    )


def compile_seccomp(seccomp: LinuxSeccomp) -> tuple[bytes, int]:
    """(BPF program, seccomp(2) flags) for a LinuxSeccomp."""
    from pyrunc import _seccomp

    notify = uses_notify(seccomp)
    if notify and not seccomp.listener_path:
        raise ConfigError(
            "config.json: linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used"
        )
    if seccomp.default_errno_ret is not None and seccomp.default_action not in TAKES_ERRNO:
        raise ConfigError(
            f"config.json: linux.seccomp.defaultErrnoRet: {seccomp.default_action} takes no errno"
        )
    # runc: the agent could never get the notify fd if writes (or everything) waited on it
    if seccomp.default_action == "SCMP_ACT_NOTIFY":
        raise ConfigError("config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be "
                          "used as default action")
    for i, rule in enumerate(seccomp.syscalls):
        if rule.action == "SCMP_ACT_NOTIFY" and "write" in rule.names:
            raise ConfigError(f"config.json: linux.seccomp.syscalls[{i}]: SCMP_ACT_NOTIFY "
                              "cannot be used for the write syscall")
        if rule.errno_ret is not None and rule.action not in TAKES_ERRNO:
            raise ConfigError(
                f"config.json: linux.seccomp.syscalls[{i}].errnoRet: {rule.action} takes no errno"
            )
    default = action_value(seccomp.default_action, None, seccomp.default_errno_ret)
    archs = []
    for name in seccomp.architectures:
        token = _seccomp.arch_token(name.removeprefix("SCMP_ARCH_").lower())
        if token:
            archs.append(token)
    rules: list[tuple[int, list[str], list[tuple[int, int, int, int]]]] = []
    for s in seccomp.syscalls:
        action = action_value(s.action, s.errno_ret, seccomp.default_errno_ret)
        args: list[tuple[int, int, int, int]] = [
            (a.index, OPERATORS[a.op], a.value, a.value_two or 0) for a in s.args
        ]
        indices = [a[0] for a in args]
        if len(set(indices)) != len(indices):
            # libseccomp takes one comparison per argument in a rule: split them (OR), as runc
            rules.extend((action, list(s.names), [a]) for a in args)
        else:
            rules.append((action, list(s.names), args))
    flags = SECCOMP_FILTER_FLAG_NEW_LISTENER if notify else 0
    for flag in seccomp.flags:
        flags |= FLAGS[flag]
    try:
        program = _seccomp.compile_filter(default, archs, rules)
    except (OSError, ValueError) as e:
        raise ConfigError(f"config.json: linux.seccomp: {e}") from None
    return enosys_stub(seccomp) + program, flags


# --- the -ENOSYS stub ----------------------------------------------------------------------
# runc (libcontainer/seccomp/patchbpf) puts a few instructions before libseccomp's program:
# a syscall numbered above every syscall the profile names, for each listed architecture,
# gets -ENOSYS instead of the default action, so that a newer libc (clone3, openat2, ...)
# falls back to the old call instead of failing with EPERM. Same semantics, our own code.

ENOSYS = 38
SECCOMP_RET_ERRNO = 0x00050000
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K, _JGT_K, _JSET_K, _JA = 0x15, 0x25, 0x45, 0x05  # BPF_JMP | op | BPF_K
_RET_K = 0x06
_NR, _ARCH = 0, 4  # offsets in struct seccomp_data
X32_BIT = 0x40000000
AUDIT_ARCH_X86_64 = 0xC000003E
SCMP_ARCH_X32 = 0x4000003E  # libseccomp's token; the kernel says AUDIT_ARCH_X86_64


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    import struct

    return struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _stub_applies(seccomp: LinuxSeccomp) -> bool:
    if seccomp.default_errno_ret == ENOSYS:
        return False  # the default already says ENOSYS
    # permissive defaults need no stub (a tracer handles new syscalls itself)
    return seccomp.default_action not in ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")


def last_syscalls(seccomp: LinuxSeccomp) -> dict[int, dict[int, int]]:
    """{kernel audit arch: {libseccomp arch token: highest syscall number the profile names}}
    for the profile's architectures (x86_64 and x32 share one audit arch)."""
    from pyrunc import _seccomp

    names = {n for rule in seccomp.syscalls for n in rule.names}
    out: dict[int, dict[int, int]] = {}
    for arch in seccomp.architectures:
        token = _seccomp.arch_token(arch.removeprefix("SCMP_ARCH_").lower())
        if not token:
            continue
        audit = AUDIT_ARCH_X86_64 if token == SCMP_ARCH_X32 else token
        numbers = [_seccomp.syscall_number_arch(token, n) for n in names]
        top = max((nr for nr in numbers if nr >= 0), default=-1)
        if top > 0:
            out.setdefault(audit, {})[token] = top
    return out


def enosys_stub(seccomp: LinuxSeccomp) -> bytes:
    """The instructions to run before libseccomp's program (b"" when none apply)."""
    if not _stub_applies(seccomp):
        return b""
    table = last_syscalls(seccomp)
    if not table:
        return b""
    # each section: [jeq arch] ld nr, [x86_64/x32 mode split], jgt last -> ENOSYS else filter
    sections = []
    for audit, per_token in table.items():
        body: list[tuple] = [(_LD_W_ABS, _NR)]
        if audit == AUDIT_ARCH_X86_64 and len(per_token) == 2:
            x32, native = per_token[SCMP_ARCH_X32], per_token[AUDIT_ARCH_X86_64]
            body += [(_JSET_K, X32_BIT, 0, 1), ("gt", x32), ("gt", native)]
        elif audit == AUDIT_ARCH_X86_64:
            token, last = next(iter(per_token.items()))
            # syscalls of the other mode are left to libseccomp's program
            mode = (_JSET_K, X32_BIT, "filter", 0) if token != SCMP_ARCH_X32 else (
                _JSET_K, X32_BIT, 0, "filter")
            body += [mode, ("gt", last)]
        else:
            body += [("gt", next(iter(per_token.values())))]
        sections.append((audit, body))
    # layout: ld arch; sections (jeq arch, body); ja +1; ret ENOSYS; libseccomp's program
    insns: list[tuple] = [(_LD_W_ABS, _ARCH)]
    for audit, body in sections:
        insns.append(("arch", audit, len(body)))
        insns += body
    enosys_at = len(insns) + 1
    filter_at = enosys_at + 1
    insns.append((_JA, 1))
    out = []
    for i, ins in enumerate(insns):
        nxt = i + 1
        if ins[0] == "arch":
            out.append(_insn(_JEQ_K, ins[1], 0, ins[2]))  # not this arch: skip its body
        elif ins[0] == "gt":
            out.append(_insn(_JGT_K, ins[1], enosys_at - nxt, filter_at - nxt))
        elif ins[0] == _JSET_K:
            jt, jf = (filter_at - nxt if j == "filter" else j for j in ins[2:4])
            out.append(_insn(_JSET_K, ins[1], jt, jf))
        else:
            out.append(_insn(ins[0], ins[1]))
    out.append(_insn(_RET_K, SECCOMP_RET_ERRNO | ENOSYS))
    return b"".join(out)


def send_to_listener(seccomp: LinuxSeccomp, notify_fd: int, pid: int,
                     state: HookState) -> None:
    """The container process state and the notify fd, in one sendmsg, to listenerPath."""
    import array
    import json
    import socket

    message: dict[str, object] = {"ociVersion": state["ociVersion"], "fds": ["seccompFd"],
                                  "pid": pid, "state": state}
    if seccomp.listener_metadata:
        message["metadata"] = seccomp.listener_metadata
    try:
        if not seccomp.listener_path:  # compile_seccomp required it of a filter that notifies
            raise ConfigError("config.json: linux.seccomp.listenerPath: required when "
                              "SCMP_ACT_NOTIFY is used")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(seccomp.listener_path)
            fds = array.array("i", [notify_fd])
            sock.sendmsg([json.dumps(message).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                           fds)])
    except OSError as e:
        raise ConfigError(
            f"config.json: linux.seccomp.listenerPath: send to {seccomp.listener_path}: "
            f"{(e.strerror or str(e)).lower()}"
        ) from None
    finally:
        import os

        os.close(notify_fd)
