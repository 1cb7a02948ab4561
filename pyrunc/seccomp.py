"""linux.seccomp -> a classic BPF program (compiled with libseccomp in the parent) + flags."""

from __future__ import annotations

from pyrunc.errors import ConfigError

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


def uses_notify(seccomp: object) -> bool:
    return seccomp.default_action == "SCMP_ACT_NOTIFY" or any(
        s.action == "SCMP_ACT_NOTIFY" for s in seccomp.syscalls
    )


def compile_seccomp(seccomp: object) -> tuple[bytes, int]:
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
    for i, rule in enumerate(seccomp.syscalls):
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
    rules = []
    for s in seccomp.syscalls:
        action = action_value(s.action, s.errno_ret, seccomp.default_errno_ret)
        args = [(a.index, OPERATORS[a.op], a.value, a.value_two or 0) for a in s.args]
        indices = [a[0] for a in args]
        if len(set(indices)) != len(indices):
            # libseccomp takes one comparison per argument in a rule: split them (OR), as runc
            rules.extend((action, list(s.names), [a]) for a in args)
        else:
            rules.append((action, list(s.names), args))
    flags = SECCOMP_FILTER_FLAG_NEW_LISTENER if notify else 0
    for name in seccomp.flags:
        flags |= FLAGS[name]
    try:
        return _seccomp.compile_filter(default, archs, rules), flags
    except (OSError, ValueError) as e:
        raise ConfigError(f"config.json: linux.seccomp: {e}") from None


def send_to_listener(seccomp: object, notify_fd: int, pid: int, state: dict) -> None:
    """The container process state and the notify fd, in one sendmsg, to listenerPath."""
    import array
    import json
    import socket

    message = {"ociVersion": state.get("ociVersion", "1.3.0"), "fds": ["seccompFd"], "pid": pid,
               "state": state}
    if seccomp.listener_metadata:
        message["metadata"] = seccomp.listener_metadata
    try:
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
