"""`start`: release the init waiting on the exec fifo, then run poststart hooks."""

from __future__ import annotations

import os
import select

from pyrunc.errors import PyruncError, StateError
from pyrunc.state import EXEC_FIFO, Container, StateStore


def start(store: StateStore, container_id: str) -> None:
    lock, container = store.lock(container_id)
    with lock:
        status = container.status
        if status != "created":
            if status == "stopped":
                raise StateError("cannot start a container that has stopped")
            raise StateError(f"cannot start an already {status} container")
        fifo = os.path.join(container.dir, EXEC_FIFO)
        stored = container.runtime.get("hooks") or {}  # null: none, as validate_state takes it
        try:
            # startContainer hooks run in the init, between this release and its execve
            _release(fifo, container)
            os.unlink(fifo)
            if stored.get("poststart"):
                from pyrunc.hooks import run_hooks

                run_hooks("poststart", stored["poststart"], container.hook_state("running"))
        except PyruncError:
            # a failed start must not leave a container behind that looks startable or alive
            from pyrunc.procfs import SIGKILL, signal_process, wait_gone

            start_time = container.runtime.get("init_start_time", "")
            signal_process(container.pid, start_time, SIGKILL)
            wait_gone(container.pid, start_time)
            raise


def _release(fifo: str, container: Container) -> None:
    """Open the fifo for reading, which unblocks the init; read until it execs (EOF)."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        got = b""
        while True:
            events = poller.poll(200)
            if not events:
                if not container.is_alive():
                    raise PyruncError("container init died before it could be started")
                continue
            try:
                chunk = os.read(fd, 64)
            except BlockingIOError:
                continue
            if chunk:
                got += chunk
                continue
            if got:
                # the writer closed: the init has exec'd, or died trying; a startContainer
                # hook's failure is what follows the "0"
                if got[1:2] == b"E":
                    raise PyruncError(got[2:].decode(errors="replace"))
                return
            if not container.is_alive():
                raise PyruncError("container init died before it could be started")
    finally:
        os.close(fd)
