"""The kernel's wait for the first cgroup move, started early and aside (issue 19).

Moving a process between cgroups takes the global `cgroup_threadgroup_rwsem` for writing; the
first writer after a quiet spell waits for an RCU grace period (5-11 ms here, for runc and crun
too), holding the global cgroup_mutex meanwhile (every cgroup mkdir waits too); later writers
within ~20 ms do not wait (measured: 0.05 ms). `start()`, at the beginning of create and exec,
spawns a shell that moves itself into the cgroup2 cgroup it is already in (a move to where it
is: nothing changes), so that the grace period passes while the config is read and the plan
compiled; the cgroup work that follows finds the lock's fast path.

A process, not a thread of ours: no thread may run while the init (C code without the
interpreter) is cloned from us, and we cannot know when a thread is completely gone.
"""

from __future__ import annotations

import os

SHELL = "/bin/sh"


def start() -> int:
    """Spawn the helper if there is a cgroup2 hierarchy to do it in: its pid, or -1. It never
    fails the command: the real moves work without it, only slower."""
    try:
        from pyrunc.cgroups.layout import detect, read_text

        unified = detect().unified
        if unified is None:
            return -1
        own = next((line[3:] for line in read_text("/proc/self/cgroup").splitlines()
                    if line.startswith("0::")), None)
        if not own:
            return -1
        procs = os.path.join(unified.dir(own), "cgroup.procs")
        # no stdio of ours (the caller may read our stdout to its end)
        null = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)]
        return os.posix_spawn(SHELL, ["sh", "-c", 'echo $$ > "$0"', procs], {},
                              file_actions=null)
    except Exception:
        return -1


def finish(pid: int) -> None:
    """Reap the helper if it is done (else it is reaped after we exit, as an orphan)."""
    if pid > 0:
        try:
            os.waitpid(pid, os.WNOHANG)
        except OSError:
            pass
