"""A foreground `run` or `exec`: the usual terminal signals passed on to the child it waits for,
and the child's wait status turned into the command's exit status. Shared by both operations
(below them, as lifecycle.child is)."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions and constants as the C module
else:
    try:
        import _signal  # what `signal` wraps; it imports enum (~2.5 ms) for names only
    except ImportError:
        import signal as _signal

# signals a foreground `run` or `exec` passes on to the container's init, as runc does
FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def block() -> None:
    """Hold the forwarded signals (pending) until a Forwarder can pass them on."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, FORWARDED)


def unblock_forwarded() -> None:
    """Deliver what `block` held, as usual (a detached `run` forwards nothing)."""
    _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)


class Forwarder:
    """Passes the usual terminal signals on to one child. Installed (with the signals blocked
    first) before the container exists, so that a signal sent at any moment after `run` began
    is held, then delivered to the container once it started, never lost and never fatal to
    `run` itself (which would orphan the container)."""

    def __init__(self) -> None:
        self.pid = 0
        block()  # already blocked when cli.main re-executed us for `run`
        for signum in FORWARDED:
            _signal.signal(signum, self._forward)

    def _forward(self, signum: int, _frame: object) -> None:
        if self.pid > 0:  # our unreaped child: its pid cannot have been reused
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def unblock(self) -> None:
        """Deliver what came meanwhile (to `self.pid`, or nowhere if there is none yet)."""
        unblock_forwarded()

    def wait(self, pid: int) -> int:
        """Wait for our child `pid`, forwarding to it; its wait status."""
        self.pid = pid
        self.unblock()
        try:
            while True:
                try:
                    return os.waitpid(pid, 0)[1]
                except InterruptedError:
                    continue
        finally:
            self.pid = 0


def wait_forwarding(pid: int) -> int:
    """Wait for our child `pid`, passing the usual terminal signals on to it; its wait status."""
    forwarder = Forwarder()
    return forwarder.wait(pid)
