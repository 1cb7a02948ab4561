"""`run`: create + start, then wait for the init and pass its exit status through."""

from __future__ import annotations

from pyrunc.lifecycle.create import create
from pyrunc.lifecycle.delete import delete
from pyrunc.lifecycle.foreground import Forwarder, exit_status, unblock_forwarded
from pyrunc.lifecycle.start import start

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.state import StateStore


def run(
    store: StateStore,
    container_id: str,
    bundle: str,
    *,
    detach: bool = False,
    keep: bool = False,
    **create_options: Any,
) -> int:
    if not detach and not create_options.get("console_socket"):
        create_options["relay_console"] = True
    forwarder = None if detach else Forwarder()
    if detach:  # nothing to forward: what cli.main held is delivered as usual
        unblock_forwarded()
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
