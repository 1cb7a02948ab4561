"""`kill`: signal the init (or every process of the container), never a reused pid (S8)."""

from __future__ import annotations

from pyrunc.errors import PyruncError, StateError
from pyrunc.procfs import pid_namespace_processes, signal_process
from pyrunc.state import Container, StateStore


def kill(store: StateStore, container_id: str, sig: int, all_processes: bool = False) -> None:
    lock, container = store.lock(container_id, exclusive=False)
    with lock:
        stopped = container.status == "stopped"
        if stopped and not all_processes:
            raise StateError("container not running")
    # the signalling itself needs no lock (each process is pinned by a pidfd and checked, so a
    # delete racing with us can only make it miss): one fd fewer, as few as runc needs
    _signal(container, sig, all_processes, stopped)


def _signal(container: Container, sig: int, all_processes: bool, stopped: bool) -> None:
    start_time = container.runtime.get("init_start_time", "")
    if all_processes:
        from pyrunc.cgroups.manager import from_runtime

        # a stopped init may leave processes in the cgroup (a pid namespace shared with a
        # pod's other containers, or the host's): --all still reaches them, as runc does
        cgroups = from_runtime(container.runtime)
        if cgroups is not None:
            cgroups.signal_all(sig)
            return
        if stopped:
            return  # nothing can be told apart as the container's any more: nothing to do
        # without a cgroup, only a pid namespace of its own tells the container's
        # processes apart; a shared one (even the host's) never gets more than the init
        if container.runtime.get("own_pid_ns"):
            for pid, started in pid_namespace_processes(container.pid):
                signal_process(pid, started, sig)
            return
    if not signal_process(container.pid, start_time, sig):
        raise PyruncError("container not running")
