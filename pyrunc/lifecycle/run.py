"""`run`: create + start, then wait for the init and pass its exit status through."""

from __future__ import annotations

import os

from pyrunc.lifecycle.create import create
from pyrunc.lifecycle.delete import delete
from pyrunc.lifecycle.start import start
from pyrunc.state import StateStore

# signals a foreground `run` passes on to the container's init, as runc does
FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def exit_status(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def wait_forwarding(pid: int) -> int:
    """Wait for our child `pid`, passing the usual terminal signals on to it; its wait status."""
    try:
        import _signal as signal  # what `signal` wraps; it imports enum (~2.5 ms) for names only
    except ImportError:
        import signal

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def run(
    store: StateStore,
    container_id: str,
    bundle: str,
    *,
    detach: bool = False,
    keep: bool = False,
    **create_options: object,
) -> int:
    if not detach and not create_options.get("console_socket"):
        create_options["relay_console"] = True
    container, init = create(store, container_id, bundle, **create_options)
    init.close()
    try:
        start(store, container_id)
    except BaseException:
        delete(store, container_id, force=True)
        raise
    if detach:
        return 0
    if init.console is not None:
        from pyrunc.console import receive_master, relay

        relay(receive_master(init.console))
    status = wait_forwarding(init.pid)
    if not keep:
        delete(store, container_id, force=True)
    return exit_status(status)
