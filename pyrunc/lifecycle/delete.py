"""`delete`: kill what is left (created, or anything with --force), remove the state, poststop."""

from __future__ import annotations

import os
import select

from pyrunc import _fast
from pyrunc.cgroups.manager import from_runtime
from pyrunc.errors import ContainerNotFound, PyruncError, StateError
from pyrunc.lifecycle.kill import signal_process
from pyrunc.state import StateStore

SIGKILL = 9
NETWORKS_DIR = ".networks"  # pyrunc.network.store.DIR, not imported by this hot command


def wait_gone(pid: int, start_time: str, timeout_ms: int = 10000) -> None:
    """Wait until the process has exited (a zombie counts as gone)."""
    try:
        pidfd = _fast.pidfd_open(pid)
    except OSError:
        return
    try:
        from pyrunc.state import process_alive

        if not process_alive(pid, start_time):
            return
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout_ms):
            raise PyruncError(f"process {pid} did not exit after SIGKILL")
    finally:
        os.close(pidfd)


def delete(store: StateStore, container_id: str, force: bool = False) -> None:
    try:
        lock, container = store.lock(container_id)
    except ContainerNotFound:
        if not force:
            raise
        # runc: --force of a missing container is not an error; a create that died before
        # writing its state leaves only the directory (and what its intent files name)
        if container_id == NETWORKS_DIR:
            return  # the state root's network records (pyrunc.network.store), no container
        _teardown_network(store.path(container_id))
        store.remove(container_id)
        return
    with lock:
        status = container.status
        if status in ("running", "paused") and not force:
            raise StateError(
                f"cannot delete container {container_id} that is not stopped: {status}"
            )
        cgroups = from_runtime(container.runtime)
        start_time = container.runtime.get("init_start_time", "")
        if status != "stopped":
            signal_process(container.pid, start_time, SIGKILL)
        # a stopped init of its own pid namespace took every process of it along: what is
        # left in the cgroup is someone else's (a cgroup shared on purpose, which runc only
        # warns about) and runc leaves it alone; unless frozen (v1 keeps a frozen task alive)
        shared_leftovers = (
            status == "stopped" and container.runtime.get("own_pid_ns")
            and cgroups is not None and not cgroups.is_frozen()
        )
        if cgroups is not None and not shared_leftovers:
            # the rest of the container (also what a stopped one left, as runc does); this
            # thaws a paused (v1) container too, so that its processes can die
            cgroups.signal_all(SIGKILL)
        if status != "stopped":
            wait_gone(container.pid, start_time)
        if cgroups is not None:
            cgroups.destroy()
        host_mounts = container.runtime.get("host_mounts")
        if host_mounts:  # a container without a mount namespace mounted in ours
            from pyrunc.rootfs import detach_host_mounts

            detach_host_mounts(
                host_mounts["rootfs"], host_mounts["before"], host_mounts.get("ours")
            )
        _teardown_network(container.dir)
        state = container.hook_state("stopped")
        poststop = container.runtime.get("hooks", {}).get("poststop")
        store.remove(container_id)
    if poststop:
        from pyrunc.hooks import run_hooks

        run_hooks("poststop", poststop, state, warn_only=True)


def _teardown_network(state_dir: str) -> None:
    """The veth, lease and nftables elements a networked create recorded (network.json)."""
    if os.path.exists(os.path.join(state_dir, "network.json")):
        from pyrunc.network.attach import teardown

        teardown(state_dir)
