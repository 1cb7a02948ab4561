"""The kernel's wait for the first cgroup move, started early and in the background (issue 19).

Moving a process between cgroups takes the global `cgroup_threadgroup_rwsem` for writing; the
first writer after a quiet spell waits for an RCU grace period (5-15 ms here, for runc and crun
too), later writers within ~20 ms do not. `start()` has a thread write this process's own pid
to the cgroup.procs of the cgroup2 cgroup it is in (a move to where it already is: nothing
changes) while create and exec prepare the container's cgroups; their real moves of the child
then find the lock's fast path.

Called only once the child is cloned: no thread of ours runs while a child that executes C
code without the interpreter is cloned from us (it could inherit a lock held by that thread).
"""

from __future__ import annotations

import os


def start() -> None:
    """Start the wait, if there is a cgroup2 hierarchy to do it in; never fails."""
    try:
        import _thread

        from pyrunc.cgroups.layout import detect, read_text

        unified = detect().unified
        if unified is None:
            return
        own = next((line[3:] for line in read_text("/proc/self/cgroup").splitlines()
                    if line.startswith("0::")), None)
        if not own:
            return
        _thread.start_new_thread(_move_self, (os.path.join(unified.dir(own), "cgroup.procs"),))
    except Exception:  # only ever a head start: the real moves work without it
        return


def _move_self(path: str) -> None:
    try:
        import _signal

        # signals stay the main thread's business (run forwards them to the container)
        _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
    except Exception:
        pass
