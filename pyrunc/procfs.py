"""Processes through /proc and pidfds: what a recorded (pid, start time) still is, and signals
and waits that can never reach a reused pid (S8). Shared by the state store, the operations
and the cgroup manager, below all of them. Every syscall goes through `pyrunc.syscall` (the
extension, for pidfds, is loaded only when one signals or waits)."""

from __future__ import annotations

from pyrunc import syscall
from pyrunc.errors import PyruncError

SIGKILL = 9


def read_proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks) of a pid, or None when it is gone."""
    try:
        data = syscall.get().read(f"/proc/{pid}/stat")
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after the last ')'
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), fields[19].decode()


def process_alive(pid: int, start_time: str) -> bool:
    """True when `pid` is still the very process we started (not a zombie, not a reused pid)."""
    if pid <= 0:
        return False
    stat = read_proc_stat(pid)
    return stat is not None and stat[1] == start_time and stat[0] not in ("Z", "X", "x")


def pid_namespace_processes(init: int) -> list[tuple[int, str]]:
    """(pid, start time) of every process in the pid namespace of `init`, init first."""
    sys_ = syscall.get()
    try:
        ns = sys_.readlink(f"/proc/{init}/ns/pid")
    except OSError:
        return []
    out = []
    for name in sys_.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if sys_.readlink(f"/proc/{pid}/ns/pid") != ns:
                continue
        except OSError:
            continue
        stat = read_proc_stat(pid)
        if stat is not None:
            out.append((pid, stat[1]))
    out.sort(key=lambda p: p[0] != init)
    return out


def signal_process(pid: int, start_time: str, sig: int) -> bool:
    """Signal `pid` only if it is still the process that started at `start_time`.

    The pidfd pins the process: once it is open and the start time matches, a pid reuse can no
    longer redirect the signal.
    """
    sys_ = syscall.get()
    try:
        pidfd = sys_.pidfd_open(pid)
    except OSError:
        return False
    try:
        stat = read_proc_stat(pid)
        if stat is None or stat[1] != start_time:
            return False
        sys_.pidfd_send_signal(pidfd, sig)
        return True
    except OSError:
        return False
    finally:
        sys_.close(pidfd)


def wait_gone(pid: int, start_time: str, timeout_ms: int = 10000) -> None:
    """Wait until the process has exited (a zombie counts as gone)."""
    sys_ = syscall.get()
    try:
        pidfd = sys_.pidfd_open(pid)
    except OSError:
        return
    try:
        if not process_alive(pid, start_time):
            return
        if not sys_.wait_readable(pidfd, timeout_ms):
            raise PyruncError(f"process {pid} did not exit after SIGKILL")
    finally:
        sys_.close(pidfd)
