"""Signal names for `kill`: clients send numbers, people send names (KILL, SIGKILL, 9).

A static table: `import signal` pulls in enum, which the hot `kill` command does not need.
"""

from __future__ import annotations

from pyrunc.errors import PyruncError

SIGNALS: dict[str, int] = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}  # fmt: skip
SIGRTMIN = 34
SIGRTMAX = 64


def parse_signal(text: str) -> int:
    """A signal from `9`, `KILL`, `SIGKILL`, `sigkill` or `RTMIN+3`; `0` (is it alive?) as runc."""
    value = text.strip()
    if value.isdigit():
        sig = int(value)
        if 0 <= sig <= SIGRTMAX:
            return sig
        raise PyruncError(f"invalid signal: {text}")
    name = value.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in SIGNALS:
        return SIGNALS[name]
    for base, number in (("RTMIN", SIGRTMIN), ("RTMAX", SIGRTMAX)):
        if name == base:
            return number
        if name.startswith(base + "+") or name.startswith(base + "-"):
            offset = name[len(base) :]
            if offset[1:].isdigit():
                sig = number + int(offset)
                if SIGRTMIN <= sig <= SIGRTMAX:
                    return sig
    raise PyruncError(f"unknown signal {text!r}")
