"""Capability names and the masks the init applies (all five sets, S5)."""

from __future__ import annotations

CAPABILITIES: dict[str, int] = {
    name: number
    for number, name in enumerate(
        """CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP
        LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER
        SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE
        SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP
        MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF
        CHECKPOINT_RESTORE""".split()
    )
}


def last_cap() -> int:
    """The highest capability this kernel knows."""
    from pyrunc import syscall

    try:
        return int(syscall.get().read("/proc/sys/kernel/cap_last_cap"))
    except OSError:
        return max(CAPABILITIES.values())


def mask(names: tuple[str, ...] | None, top: int, unknown: set[str] | None = None) -> int:
    """The bit mask of a list of CAP_* names.

    A name this runtime or this kernel (newer than `top`) does not know is left out and added
    to `unknown`, for one warning: runtime-spec 1.3.0 says such names MUST be logged and
    SHOULD NOT fail, and runc and crun skip them.
    """
    bits = 0
    for name in names or ():
        number = CAPABILITIES.get(name.removeprefix("CAP_")) if name.startswith("CAP_") else None
        if number is None or number > top:
            if unknown is not None:
                unknown.add(name)
            continue
        bits |= 1 << number
    return bits


def warn_unknown(unknown: set[str]) -> None:
    """runc's warning for the names `mask` skipped."""
    if unknown:
        from pyrunc.log import get_logger

        listing = " ".join(sorted(unknown))
        get_logger().warning(f"ignoring unknown or unavailable capabilities: [{listing}]")


def names_of(bits: int) -> list[str]:
    by_number = {v: k for k, v in CAPABILITIES.items()}
    return ["CAP_" + by_number[n] for n in sorted(by_number) if bits >> n & 1]
