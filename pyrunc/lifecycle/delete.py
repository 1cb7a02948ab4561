"""`delete`: kill what is left (created, or anything with --force), remove the state, poststop."""

from __future__ import annotations

import os

from pyrunc import jsonlite, syscall
from pyrunc.cgroups.manager import from_runtime
from pyrunc.errors import ContainerNotFound, PyruncError, StateCorrupt, StateError
from pyrunc.procfs import SIGKILL, signal_process, wait_gone
from pyrunc.state import (
    INTENT_FILE,
    STATE_FILE,
    Container,
    StateStore,
    is_cgroup_record,
    is_host_mounts,
    read_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.hooks import HookRecord
    from pyrunc.state import HookState

NETWORKS_DIR = ".networks"  # pyrunc.network.store.DIR, not imported by this hot command


def delete(store: StateStore, container_id: str, force: bool = False) -> None:
    try:
        lock, container = store.lock(container_id)
    except (ContainerNotFound, StateCorrupt):
        if not force:
            raise
        if container_id == NETWORKS_DIR:
            return  # the state root's network records (pyrunc.network.store), no container
        # a create killed before it wrote its state, a damaged state file, a delete killed
        # half-way: recover from the intent, the state's remains and the derivable cgroups
        recover(store, container_id)
        return
    with lock:
        poststop, state = _delete_loaded(store, container, force)
    _poststop(poststop, state)


def _delete_loaded(store: StateStore, container: Container,
                   force: bool) -> tuple[list[HookRecord] | None, HookState]:
    container_id = container.id
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
    poststop = (container.runtime.get("hooks") or {}).get("poststop")  # null hooks: none
    store.remove(container_id)
    return poststop, state


def _poststop(poststop: list[HookRecord] | None, state: HookState) -> None:
    if poststop:
        from pyrunc.hooks import run_hooks

        run_hooks("poststop", poststop, state, warn_only=True)


def _teardown_network(state_dir: str) -> None:
    """The veth, lease and nftables elements a networked create recorded (network.json)."""
    if syscall.get().exists(os.path.join(state_dir, "network.json")):
        from pyrunc.network.attach import teardown

        teardown(state_dir)


def _salvage(store: StateStore,
             container_id: str) -> tuple[dict[str, object] | None, list[tuple[int, str]]]:
    """What recovery can still read: the intent (None when missing or damaged) and the
    (pid, start time) pairs recorded there (the init, a hook) or legible in a damaged state
    file."""
    intent = None
    try:
        raw = read_file(store.file(container_id, INTENT_FILE), 1 << 20)
        data = jsonlite.loads(raw)
        if isinstance(data, dict):
            intent = data
    except (OSError, ValueError, RecursionError, PyruncError):
        pass
    inits: list[tuple[int, str]] = []
    if intent is not None:
        pid, start = intent.get("pid"), intent.get("init_start_time")
        if type(pid) is int and pid > 0 and isinstance(start, str) and start:
            inits.append((pid, start))
        hook = intent.get("hook")  # the hook a killed create was waiting for
        if (isinstance(hook, list) and len(hook) == 2 and type(hook[0]) is int and hook[0] > 0
                and isinstance(hook[1], str) and hook[1]):
            inits.append((hook[0], hook[1]))
    try:
        raw = read_file(store.file(container_id, STATE_FILE))
    except (OSError, PyruncError):
        raw = b""
    import re  # only here: the hot delete never needs it

    pid_m = re.search(rb'"pid":\s*(\d+)', raw)
    start_m = re.search(rb'"init_start_time":\s*"(\d+)"', raw)
    if pid_m and start_m:
        inits.append((int(pid_m[1]), start_m[1].decode()))
    return intent, inits


def recover(store: StateStore, container_id: str) -> None:
    """`delete --force` without a readable state: kill the recorded init (only while it is
    the process that started then, S8) and every process in the container's cgroups, remove
    those cgroups (the intent's, else the ones derivable from the root and the id) and the
    mounts the intent names, then the directory. What cannot be removed is said, exit 1, and
    the directory stays for another try."""
    path = store.path(container_id)
    sys_ = syscall.get()
    if sys_.islink(path):  # never followed: only the link itself is ours to remove
        sys_.unlink(path)
        return
    try:
        lock = store._lock_dir(path, exclusive=True)
    except FileNotFoundError:
        lock = None
    except OSError as e:
        raise PyruncError(f"delete {container_id}: cannot lock {path}: {e.strerror}") from None
    try:
        if lock is not None:
            try:  # a create that was still running when we looked may have finished since
                container = store.load(container_id)
            except PyruncError:
                pass
            else:
                poststop, state = _delete_loaded(store, container, True)
                lock.release()
                _poststop(poststop, state)
                return
            intent, inits = _salvage(store, container_id)
        else:
            intent, inits = None, []
        problems = _recover_resources(store, container_id, intent, inits)
        if problems:
            raise PyruncError(
                f"delete --force {container_id}: could not remove: {'; '.join(problems)}"
            )
        if lock is not None:
            store.remove(container_id)
    finally:
        if lock is not None:
            lock.release()


def _recover_resources(
    store: StateStore, container_id: str, intent: dict[str, object] | None,
    inits: list[tuple[int, str]],
) -> list[str]:
    from pyrunc.cgroups import layout as layout_mod
    from pyrunc.cgroups import manager, paths
    from pyrunc.errors import CgroupError

    problems: list[str] = []
    for pid, start in inits:
        if signal_process(pid, start, SIGKILL):
            try:
                wait_gone(pid, start)
            except PyruncError as e:
                problems.append(str(e))
    groups = []
    record = intent.get("cgroup") if intent else None
    if is_cgroup_record(record):
        groups.append(manager.Cgroups(record))
    lay = layout_mod.detect()
    derived = manager.derived(lay, paths.resolve(None, container_id, store.root),
                              groups[0] if groups else None)
    if derived is not None:
        groups.append(derived)
    for cg in groups:
        try:
            cg.signal_all(SIGKILL)
            cg.destroy()
        except CgroupError as e:
            problems.append(str(e))
    try:  # the veth, lease and firewall elements a networked create recorded before making them
        _teardown_network(store.path(container_id))
    except (PyruncError, OSError, ValueError) as e:
        problems.append(f"network: {e}")
    mounts = intent.get("host_mounts") if intent else None
    if is_host_mounts(mounts):
        from pyrunc.rootfs import detach_host_mounts

        try:
            detach_host_mounts(mounts["rootfs"], mounts["before"])
        except PyruncError as e:
            problems.append(str(e))
    elif isinstance(mounts, dict) and isinstance(mounts.get("rootfs"), str):
        # without a true "before", what on the rootfs was there before the create is unknown:
        # never detach what may be the host's own
        from pyrunc.log import get_logger

        get_logger().warning(f"delete --force {container_id}: host_mounts: malformed: the "
                             f"mounts on {mounts['rootfs']} are left")
    return problems
