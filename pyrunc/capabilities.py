"""Capability names and the masks the init applies (all five sets, S5)."""

from __future__ import annotations

from pyrunc.errors import ConfigError

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
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPABILITIES.values())


def mask(names: tuple[str, ...] | list[str] | None, field: str, top: int) -> int:
    """The bit mask of a list of CAP_* names; an unknown name is a config error.

    Names this kernel does not have (newer than `top`) are left out, as runc does.
    """
    bits = 0
    for i, name in enumerate(names or ()):
        number = CAPABILITIES.get(name.upper().removeprefix("CAP_"))
        if number is None or not name.upper().startswith("CAP_"):
            raise ConfigError(f"config.json: {field}[{i}]: unknown capability {name!r}")
        if number <= top:
            bits |= 1 << number
    return bits


def names_of(bits: int) -> list[str]:
    by_number = {v: k for k, v in CAPABILITIES.items()}
    return ["CAP_" + by_number[n] for n in sorted(by_number) if bits >> n & 1]
