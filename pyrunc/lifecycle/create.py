"""`create`: parse the bundle, compile the plan, clone the init and leave it waiting for `start`."""

from __future__ import annotations

import os
import time

from pyrunc import _executor, _linux, hooks, syscall
from pyrunc.errors import ConfigError, PyruncError
from pyrunc.fdlimit import while_raised
from pyrunc.lifecycle.child import (
    CONFIG_COPY,
    SECCOMP_FD,
    InitProcess,
    connect_console,
    write_pid_file,
)
from pyrunc.log import get_logger
from pyrunc.plan import (
    SYNC_CGROUP,
    SYNC_NAMESPACES,
    SYNC_PRE_PIVOT,
    InitPlan,
    check_host_features,
    compile_plan,
    idmap_trees,
    time_offsets,
)
from pyrunc.procfs import read_proc_stat
from pyrunc.spec.loader import load_config
from pyrunc.state import (
    EXEC_FIFO,
    INTENT_FILE,
    OCI_VERSION,
    Container,
    StateStore,
    write_file,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyrunc.cgroups.manager import CgroupRecord
    from pyrunc.hooks import HookRecord
    from pyrunc.network.attach import Attachment, Request
    from pyrunc.spec.compiled import Spec
    from pyrunc.state import HostMounts, Intent, RuntimeRecord, StateRecord


def _rfc3339_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


@while_raised
def create(
    store: StateStore,
    container_id: str,
    bundle: str,
    *,
    pid_file: str | None = None,
    console_socket: str | None = None,
    no_pivot: bool = False,
    no_new_keyring: bool = False,
    preserve_fds: int = 0,
    listen_fds: int = 0,
    relay_console: bool = False,
    network: str | None = None,
    publish: list[str] | None = None,
    config: bytes | None = None,
    stdio: tuple[int, int, int] | None = None,
    rootless: bool | str | None = None,
) -> tuple[Container, InitProcess]:
    """Create the container; on any failure everything done so far is undone.

    `network` ("NAME[:ip=A.B.C.D]") and `publish` (["HOSTPORT:PORT[/tcp|udp]", ...]) join a
    pyrunc bridge network (pyrunc.network), as the org.pyrunc.network* annotations do.
    `config` (the API's spec objects) replaces the bundle's config.json; `stdio` gives the
    fds the init gets as 0, 1 and 2 (-1: this process's own), else it inherits ours.
    `rootless`: --rootless (True, False, None or "auto": detect; see pyrunc.rootless).
    """
    from pyrunc.rootless import check_rootless_config, rootless_cgroups

    rootless_cg = rootless_cgroups(rootless)
    primer = -1
    if not rootless_cg:
        # the kernel's wait before the first cgroup move, while we read the config and plan
        from pyrunc.cgroups import prime

        primer = prime.start()
    bundle = os.path.abspath(bundle)
    config_bytes = read_config(os.path.join(bundle, "config.json")) if config is None else config
    spec = load_config(config_bytes, "config.json")
    if syscall.get().geteuid() != 0:
        check_rootless_config(spec)
    net_request = None
    annotations = spec.annotations or {}
    if network or publish or any(k.startswith("org.pyrunc.network") for k in annotations):
        from pyrunc.network.attach import request_from

        net_request = request_from(network, publish, dict(annotations))
        if net_request is not None:
            _check_new_netns(spec, net_request.source)
            if syscall.get().geteuid() != 0:
                raise ConfigError(
                    f"{net_request.source}: pyrunc's bridge networks need root (they make host "
                    "links and nftables rules); a rootless container's network is slirp4netns's"
                )
    if spec.linux is not None and spec.linux.net_devices:
        _check_new_netns(spec, "config.json: linux.netDevices")
        if syscall.get().geteuid() != 0:
            raise ConfigError("config.json: linux.netDevices: moving a host network device "
                              "into the container needs root")
    terminal = spec.process is not None and bool(spec.process.terminal)
    relay = None
    if terminal and not console_socket and relay_console:
        import socket

        relay, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    elif terminal and not console_socket:
        raise PyruncError(
            "cannot allocate tty if pyrunc will detach without setting console socket"
        )
    lock = store.claim(container_id)
    state_dir = store.path(container_id)
    fifo_fd = console_fd = -1
    idmaps: dict[int, int] = {}
    all_hooks: dict[str, list[HookRecord]] = {}
    container: Container | None = None
    plan: InitPlan | None = None
    init: InitProcess | None = None
    data: StateRecord | None = None
    host_mounts: HostMounts | None = None
    attachment: Attachment | None = None
    try:
        if net_request is not None:
            spec, attachment = _prepare_network(spec, store.root, container_id, state_dir,
                                                net_request)
        os.mkfifo(os.path.join(state_dir, EXEC_FIFO), 0o622)
        os.chmod(os.path.join(state_dir, EXEC_FIFO), 0o622)
        fifo_fd = os.open(os.path.join(state_dir, EXEC_FIFO), os.O_PATH | os.O_CLOEXEC)
        if relay is not None:
            console_fd = child_end.detach()
        elif terminal and console_socket:  # a terminal has one or the other (checked above)
            console_fd = connect_console(console_socket)
        idmaps = idmap_trees(spec, bundle)
        linux = spec.linux
        if linux is None:  # as compile_plan says, which needs it too
            raise ConfigError("config.json: linux: required on Linux")
        plan = compile_plan(
            spec,
            bundle,
            lock_fd=lock.fd,
            fifo_fd=fifo_fd,
            preserve_fds=preserve_fds + listen_fds,
            extra_env=[f"LISTEN_FDS={listen_fds}", "LISTEN_PID=1"] if listen_fds else [],
            idmap_trees=idmaps,
            container_id=container_id,
            state_root=store.root,
            no_pivot=no_pivot,
            keyring=None if no_new_keyring else f"_ses.{container_id}",
            console_fd=console_fd,
            stdio=stdio,
            rootless_cgroups=rootless_cg,
        )
        ns = plan.ns
        assert ns is not None  # compile_plan resolved the namespaces
        for warning in check_host_features(spec):
            get_logger().warning(warning)
        if linux.net_devices:
            from pyrunc.network.devices import check_devices

            check_devices(linux.net_devices)
        if "mount" not in ns.kinds:
            # the init's mounts land in this mount namespace: remember what covered the rootfs
            # so that a failed create and delete can take them away again
            from pyrunc.mountinfo import top_mount_id

            real_rootfs = os.path.realpath(plan.rootfs)
            host_mounts = {"rootfs": real_rootfs, "before": top_mount_id(real_rootfs)}
        log = get_logger()
        if log.debugging:
            from pyrunc import narration

            log.debug(f"create {container_id}: config {len(config_bytes)} bytes from "
                      f"{bundle if config is None else 'the caller'}, rootfs {plan.rootfs}")
            narration.plan(log, "init", plan.ops, plan.clone_flags)
        pid, sock = _executor.spawn(
            plan.ops,
            plan.clone_flags,
            ns.join.get("pid", -1),
            ns.join.get("time", -1),
            (time_offsets(linux) or b"") if "time" in ns.new else None,
        )
        init = InitProcess(pid, sock)
        init.console = relay
        if log.debugging:
            log.debug(f"init: started as pid {pid}")
        plan.close()
        stat = read_proc_stat(pid)
        all_hooks = hooks.spec_hooks(spec)
        # startContainer hooks are the init's own (plan.compile_plan)
        stored = {k: v for k, v in all_hooks.items() if k in ("poststart", "poststop")}
        runtime: RuntimeRecord = {
            "init_start_time": stat[1] if stat else "",
            "own_pid_ns": "pid" in ns.new,
            "hooks": stored,
            "rootless": rootless_cg,
        }
        data = {
            "ociVersion": spec.oci_version or OCI_VERSION,
            "id": container_id,
            "pid": pid,
            "bundle": bundle,
            "rootfs": plan.rootfs,
            "created": _rfc3339_now(),
            "owner": _owner(),
            "annotations": dict(spec.annotations or {}),
            "pyrunc": runtime,
        }
        if host_mounts is not None:
            runtime["host_mounts"] = host_mounts
        container = Container(store, container_id, data)
        if attachment is not None:
            r = attachment.record
            runtime["network"] = {"network": r["network"], "ip": r["ip"],
                                  "host_veth": r["host_veth"], "ports": r["ports"]}
        _drive(init, spec, container, plan, all_hooks, attachment,
               joined=lambda: save_config(state_dir, config_bytes))
        if host_mounts is not None:
            from pyrunc.mountinfo import top_mount_id

            host_mounts["ours"] = top_mount_id(host_mounts["rootfs"])
        container.save()
        if pid_file:
            write_pid_file(pid_file, pid)
        init.proceed()
        return container, init
    except BaseException:
        if relay is not None:
            relay.close()
        if init is not None:
            init.abort()
        _destroy_cgroups(data)
        if net_request is not None:
            _teardown_network(state_dir)
        if host_mounts is not None:
            _detach_host_mounts(host_mounts)
        store.remove(container_id)
        if container is not None and all_hooks.get("poststop"):
            # lifecycle steps 12-13: a create that got as far as the init still runs poststop
            hooks.run_hooks("poststop", all_hooks["poststop"],
                            container.hook_state("stopped"), warn_only=True)
        raise
    finally:
        if plan is not None:
            plan.close()
        for fd in (fifo_fd, console_fd, *idmaps.values()):
            if fd >= 0:
                os.close(fd)
        lock.release()
        if primer > 0:
            prime.finish(primer)


def _owner() -> str:
    """`list`'s OWNER: "" (shown as root) for root, else the caller's user name, as runc."""
    euid = syscall.get().geteuid()
    if euid == 0:
        return ""
    import pwd

    try:
        return pwd.getpwuid(euid).pw_name
    except KeyError:
        return f"#{euid}"




def read_config(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        bundle = os.path.dirname(path)
        if not os.path.isdir(bundle):  # runc fails its chdir to the bundle first
            raise ConfigError(f"bundle {bundle}: {reason}") from None
        if isinstance(e, FileNotFoundError):  # runc's words
            raise ConfigError("JSON specification file config.json not found") from None
        raise ConfigError(f"config.json: cannot read {path}: {reason}") from None


def save_config(state_dir: str, config: bytes) -> None:
    """The config the container was created with, for `exec` (the bundle may change later):
    the very bytes that were validated, not a second reading of the bundle."""
    write_file(os.path.join(state_dir, CONFIG_COPY), config)


def _check_new_netns(spec: Spec, field: str) -> None:
    """Networking needs a network namespace of the container's own, made by create."""
    linux = spec.linux
    for ns in (linux.namespaces if linux is not None else None) or ():
        if ns.type == "network":
            if ns.path:
                raise ConfigError(f"{field}: needs a new network namespace, "
                                  f"not the one at {ns.path}")
            return
    raise ConfigError(f"{field}: needs a new network namespace (linux.namespaces)")


def _prepare_network(spec: Spec, root: str, container_id: str, state_dir: str,
                     req: Request) -> tuple[Spec, Attachment]:
    """Lease an address and record the intent; resolv.conf/hosts become bind mounts."""
    from pyrunc.network.attach import prepare
    from pyrunc.spec.compiled import Mount, Spec

    att = prepare(root, container_id, state_dir, req, spec.hostname)
    if att.mounts:
        # the spec classes are immutable (pyrunc.spec.compiled): a copy with more mounts
        extra = tuple(Mount(destination=m["destination"], source=m["source"],
                            type=m["type"], options=tuple(m["options"]))
                      for m in att.mounts)
        fields = {name: getattr(spec, name) for name in Spec.__slots__}
        fields["mounts"] = tuple(spec.mounts or ()) + extra
        spec = Spec(**fields)
    return spec, att


def _teardown_network(state_dir: str) -> None:
    from pyrunc.network.attach import teardown

    try:
        teardown(state_dir)
    except PyruncError as e:
        get_logger().warning(f"cleaning up after the failed create: {e}")


def send_mount_sources(init: InitProcess, sources: list[tuple[int, str]]) -> None:
    """Open each bind source in the init's mount namespace (through /proc/PID/root, with this
    process's credentials: the init's user namespace may lack the right to reach it) and hand
    the O_PATH fd over; the init mounts from it (runc's mount sources)."""
    for i, source in sources:
        try:
            fd = os.open(f"/proc/{init.pid}/root{source}", os.O_PATH | os.O_CLOEXEC)
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            raise ConfigError(f"config.json: mounts[{i}].source: {source}: {reason}") from None
        try:
            _linux.send_fd(init.sock, fd)
        finally:
            os.close(fd)


def _detach_host_mounts(record: HostMounts) -> None:
    """Unmount what the init of a failed create mounted in this namespace (no mount namespace);
    a failure here must not hide the first one."""
    from pyrunc.rootfs import detach_host_mounts

    try:
        detach_host_mounts(record["rootfs"], record["before"])
    except PyruncError as e:
        get_logger().warning(f"cleaning up after the failed create: {e}")


def _destroy_cgroups(data: StateRecord | None) -> None:
    """Remove the cgroups a failed create made; a failure here must not hide the first one."""
    if data is None or not data["pyrunc"].get("cgroup"):
        return
    from pyrunc.cgroups.setup import destroy_recorded

    try:
        destroy_recorded(data["pyrunc"])
    except PyruncError as e:
        get_logger().warning(f"cleaning up after the failed create: {e}")


def write_intent(container: Container, cgroup: CgroupRecord | None,
                 hook: list[int | str] | None = None) -> None:
    """What this create is about to make that outlives it (its init, its cgroups, mounts in our
    namespace, the hook it waits for), written atomically before it makes any of it: `delete
    --force` after a create killed at any moment removes exactly that (the state file comes
    only at the end)."""
    from pyrunc import jsonlite

    rt = container.data["pyrunc"]
    intent: Intent = {"pid": container.pid, "init_start_time": rt.get("init_start_time", ""),
              "cgroup": cgroup, "host_mounts": rt.get("host_mounts")}
    if hook is not None:
        intent["hook"] = hook
    # none of what it names outlives the machine (a process, cgroups, mounts, a hook): the
    # record must survive only our being killed, which the page cache does; no fsync (~1 ms,
    # up to ~13 ms here when the disk is busy, on every create)
    write_file(container.store.file(container.id, INTENT_FILE),
               jsonlite.dumps(intent, separators=(",", ":")).encode(), durable=False)


def _join_cgroups(init: InitProcess, spec: Spec, container: Container,
                  intent: Callable[[CgroupRecord | None], None]) -> None:
    """The container's cgroups made and the init added, while the init mounts. If that fails
    because the init failed first (its pid gone), the init's error is the one to report."""
    from pyrunc.cgroups.setup import setup as setup_cgroups

    try:
        setup_cgroups(spec, container.id, init.pid, container.data["pyrunc"],
                      root=container.store.root,
                      rootless=container.data["pyrunc"].get("rootless", False),
                      intent=intent)
    except PyruncError:
        # the init stops at the cgroup sync point, or reports why it could not get there
        if init.next_message() != SYNC_CGROUP:
            raise PyruncError("container init did not stop at the cgroup sync point") from None
        raise


def _drive(
    init: InitProcess, spec: Spec, container: Container, plan: InitPlan,
    all_hooks: dict[str, list[HookRecord]],
    attachment: Attachment | None = None, joined: Callable[[], None] | None = None,
) -> None:
    """Answer the child's sync points until it reports ready. `joined` runs once the init is
    in its cgroups, while it makes the rest of its mounts (the config copy's fsync meanwhile)."""
    log = get_logger()
    linux, process = spec.linux, spec.process
    assert linux is not None and process is not None  # compile_plan refused a spec without
    intended: list[CgroupRecord | None] = [None]  # the cgroup the intent names, kept for a hook's

    def intent_cgroup(cgroup: CgroupRecord | None) -> None:
        intended[0] = cgroup
        write_intent(container, cgroup)

    def intent_hook(pid: int) -> None:
        stat = read_proc_stat(pid)  # (pid, start time): S8, recovery kills only this process
        if stat is not None:
            write_intent(container, intended[0], [pid, stat[1]])
    while True:
        tag = init.next_message()
        if log.debugging:
            log.debug(f"init: at sync point {tag!r}")
        if tag == SYNC_NAMESPACES:
            if plan.ns is not None and "user" in plan.ns.new:
                from pyrunc.rootless import write_id_maps

                write_id_maps(init.pid, linux.uid_mappings, linux.gid_mappings)
            if process.oom_score_adj is not None:
                # the runtime's own /proc and our unreaped child, as for the id maps above
                try:
                    syscall.get().write(f"/proc/{init.pid}/oom_score_adj",
                                        str(process.oom_score_adj))
                except OSError as e:
                    reason = (e.strerror or str(e)).lower()
                    raise PyruncError(
                        f"config.json: process.oomScoreAdj: cannot set oom_score_adj to "
                        f"{process.oom_score_adj}: {reason}"
                    ) from None
            # the container's network namespace exists; its process has not started
            if linux.net_devices:
                from pyrunc.network.devices import move_devices

                move_devices(init.pid, linux.net_devices)
            if attachment is not None:
                from pyrunc.network.attach import setup as setup_network

                setup_network(attachment, init.pid)
            # the init mounts what needs no cgroup while we join it to its cgroups; it waits
            # at the cgroup sync point for the rest (plan.py)
            init.proceed()
            if plan.mount_sources:
                # the init receives them right after this sync point (OP_RECV_SOURCES)
                send_mount_sources(init, plan.mount_sources)
            _join_cgroups(init, spec, container, intent_cgroup)
            if log.debugging:
                record = container.data["pyrunc"].get("cgroup")
                cgroup = record.get("path", "no cgroup") if record else "no cgroup"
                log.debug(f"cgroup: init {init.pid} in {cgroup}")
            continue
        elif tag == SYNC_CGROUP:
            # joined above, at the namespaces sync point
            init.proceed()
            if joined is not None:
                joined()
            continue
        elif tag == SYNC_PRE_PIVOT:
            # the rootfs is mounted, pivot_root has not happened yet (runtime.md, lifecycle 5-7)
            # lifecycle steps 3-5 come after step 2 ("creating"): the status is "created"
            state = container.hook_state("created")
            hooks.run_hooks("prestart", all_hooks.get("prestart"), state, on_spawn=intent_hook)
            hooks.run_hooks("createRuntime", all_hooks.get("createRuntime"), state,
                            on_spawn=intent_hook)
            hooks.run_hooks("createContainer", all_hooks.get("createContainer"), state,
                            in_pid=init.pid, root=plan.rootfs, env=list(process.env or ()),
                            on_spawn=intent_hook)
        elif tag == SECCOMP_FD:
            from pyrunc.seccomp import send_to_listener

            fd, init.received_fd = init.received_fd, -1
            if linux.seccomp is None:  # no filter, no fd
                os.close(fd)
                raise PyruncError("container init sent a seccomp fd without a filter")
            send_to_listener(linux.seccomp, fd, init.pid, container.hook_state("creating"))
        elif tag == "ready":
            return
        else:
            raise PyruncError(f"container init sent an unknown message {tag!r}")
        init.proceed()
