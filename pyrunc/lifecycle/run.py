"""`run`: create + start, then wait for the init and pass its exit status through."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions and constants as the C module
    from typing import Any

    from pyrunc.state import StateStore
else:
    try:
        import _signal  # what `signal` wraps; it imports enum (~2.5 ms) for names only
    except ImportError:
        import signal as _signal

# signals a foreground `run` passes on to the container's init, as runc does
FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def block() -> None:
    """Hold the forwarded signals (pending) until a Forwarder can pass them on."""
    _signal.pthread_sigmask(_signal.SIG_BLOCK, FORWARDED)


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
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)

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


def run(
    store: StateStore,
    container_id: str,
    bundle: str,
    *,
    detach: bool = False,
    keep: bool = False,
    **create_options: Any,
) -> int:
    # here, not at the top: `exec` uses this module's signal forwarding, not the lifecycle
    from pyrunc.lifecycle.create import create
    from pyrunc.lifecycle.delete import delete
    from pyrunc.lifecycle.start import start

    if not detach and not create_options.get("console_socket"):
        create_options["relay_console"] = True
    forwarder = None if detach else Forwarder()
    if detach:  # nothing to forward: what cli.main held is delivered as usual
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, FORWARDED)
    try:
        container, init = create(store, container_id, bundle, **create_options)
        init.close()
        if forwarder is not None:
            forwarder.pid = init.pid
        try:
            start(store, container_id)
        except BaseException:
            delete(store, container_id, force=True)
            raise
        if detach:
            return 0
        assert forwarder is not None  # not detached
        if init.console is not None:
            from pyrunc.console import receive_master, relay

            forwarder.unblock()
            relay(receive_master(init.console))
        status = forwarder.wait(init.pid)
    finally:
        if forwarder is not None:
            forwarder.unblock()
    if not keep:
        delete(store, container_id, force=True)
    return exit_status(status)
