"""`exec`: start one more process inside a running container.

The process is spawned by the same executor as the init: it joins the init's namespaces (the
pid namespace around the clone, so no extra fork is needed), then applies its process spec.
"""

from __future__ import annotations

import errno
import os

from pyrunc import _executor, jsonlite, plan, syscall
from pyrunc import instructions as ins
from pyrunc.errors import ConfigError, PyruncError, StateError
from pyrunc.fdlimit import while_raised
from pyrunc.identity import environment, keeps_original_groups
from pyrunc.lifecycle.child import (
    CONFIG_COPY,
    SECCOMP_FD,
    InitProcess,
    connect_console,
    write_pid_file,
)
from pyrunc.namespaces import FLAGS, open_process_namespaces
from pyrunc.state import StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~3 ms to import; exec is a hot command
    from typing import TypedDict

    class UserJSON(TypedDict, total=False):
        uid: int
        gid: int
        umask: int | None
        additionalGids: list[int] | None

    class ProcessJSON(TypedDict, total=False):
        """config.json's `process` as JSON, the keys exec's callers change before the
        loader checks it all; null is absent there, as the loader takes it."""

        args: list[str] | None
        terminal: bool | None
        env: list[str] | None
        cwd: str
        user: UserJSON | None
        capabilities: dict[str, list[str] | None] | None
        noNewPrivileges: bool | None
        apparmorProfile: str | None
        selinuxLabel: str | None


def container_config(store: StateStore, container_id: str) -> dict:
    """The config the container was created with (kept in its state directory). Through
    jsonlite: `json` imports `re`, `enum` and more (~7 ms of every exec)."""
    try:
        with open(os.path.join(store.path(container_id), CONFIG_COPY), "rb") as f:
            config = jsonlite.loads(f.read())
    except FileNotFoundError:
        store.load(container_id)  # "container does not exist" when it does not
        raise PyruncError(f"container {container_id} has no saved config") from None
    if not isinstance(config, dict):  # create saved the object it ran: a changed copy
        raise PyruncError(f"container {container_id}: its saved config is not a JSON object")
    return config


@while_raised
def exec_process(
    store: StateStore,
    container_id: str,
    process: object,
    *,
    detach: bool = False,
    pid_file: str | None = None,
    console_socket: str | None = None,
    preserve_fds: int = 0,
    ignore_paused: bool = False,
    stdio: tuple[int, int, int] | None = None,
    pid_out: list[int] | None = None,
    sub_cgroups: list[str] | None = None,
    config: dict | None = None,
) -> int:
    """Run `process` (a process spec as JSON) in the container; its exit status, or 0 detached.

    `stdio`: the fds the process gets as 0, 1, 2 (-1: ours); `pid_out` receives its pid;
    `sub_cgroups`: runc's `exec --cgroup` arguments, `PATH` or `CTRL[,CTRL]:PATH`, sub-cgroups
    of the container's to run the process in; `config`: the container's saved config when the
    caller has read it already (`container_config`), changed here."""
    from pyrunc.spec.loader import load_config

    lock, container = store.lock(container_id, exclusive=False)
    primer = -1
    with lock:
        status = container.status
        if status == "stopped":
            raise StateError("cannot exec in a stopped container")
        if status == "paused" and not ignore_paused:
            raise StateError("cannot exec in a paused container (use --ignore-paused to override)")
        if container.runtime.get("cgroup_paths") and not container.runtime.get("rootless"):
            # the kernel's wait before the first cgroup move, while we read the config and plan
            # (not for an exec refused above: it moves nothing)
            from pyrunc.cgroups import prime

            primer = prime.start()
        cgroup_dirs = cgroup_targets(container.runtime.get("cgroup_paths") or {},
                                     parse_sub_cgroups(sub_cgroups or []))
        if config is None:
            config = container_config(store, container_id)
        config["process"] = process
        spec = load_config(config, "process.json")
        proc = spec.process
        if proc is None:  # a process.json of null: the loader takes null for absent
            raise ConfigError("process.json: process: expected object, got null")
        linux = spec.linux
        if linux is None:  # create refused a config without it: a changed copy
            raise ConfigError("config.json: linux: required on Linux")
        if proc.apparmor_profile or proc.selinux_label:
            plan.check_host_features(spec)
        joined, pid_ns = open_process_namespaces(container.pid, with_user=True)
    relay = None
    console_fd = -1
    try:
        if proc.terminal:
            if console_socket:
                console_fd = connect_console(console_socket)
            elif detach:
                raise PyruncError("cannot allocate tty if pyrunc will detach without setting "
                                  "console socket")
            else:
                import socket

                relay, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                console_fd = child_end.detach()
        # unprivileged: the user namespace is joined by the process that clones this one
        # (setns into the pid namespace needs it first), see _executor.spawn
        user_fd = next((fd for fd, _, kind in joined if kind == "user"), -1)
        if syscall.get().geteuid() == 0:
            user_fd = -1
        # S11: nothing of the caller's (a host directory, a shim's socket) is still open when
        # the child joins the container's namespaces, where a container process allowed to
        # ptrace could open it through /proc/PID/fd: close (not only mark close-on-exec)
        # every fd but stdio, --preserve-fds, the console and the namespaces to join. The
        # API's stdio (fds >= 3) is dup2'd onto 0-2 first.
        keep = [fd for fd, _, _ in joined if fd != user_fd]
        keep += [console_fd] if console_fd >= 0 else []
        steps: list[ins.Op] = []
        plan.emit_stdio(steps.append, stdio)
        steps.append(ins.close_others(3 + preserve_fds, keep, "close inherited file descriptors"))
        steps += [ins.setns(fd, FLAGS[kind], f"join {kind} namespace")
                  for fd, _, kind in joined if fd != user_fd]
        steps.append(ins.sync(plan.SYNC_NAMESPACES))
        steps.append(ins.root("/", "open the container's root"))
        seccomp = plan.seccomp_op(linux)
        setgroups = (None if keeps_original_groups(spec.annotations)
                     else _setgroups_allowed(container.pid))
        steps += plan.process_ops(proc, linux, console_fd, None, preserve_fds, seccomp,
                                  setgroups=setgroups)
        if seccomp is not None and proc.no_new_privileges and plan.seccomp_notifies(seccomp):
            steps.append(seccomp)
        steps.append(ins.ready())
        if seccomp is not None and proc.no_new_privileges and not plan.seccomp_notifies(seccomp):
            steps.append(seccomp)
        envp = environment(proc, f"/proc/{container.pid}/root")
        steps.append(ins.execve(list(proc.args), envp))
        from pyrunc.log import get_logger

        log = get_logger()
        if log.debugging:
            from pyrunc import narration

            log.debug(f"exec in {container_id} (init {container.pid})")
            narration.plan(log, "exec", steps)
        pid, sock = _executor.spawn(steps, 0, pid_ns, join_user_fd=user_fd)
    finally:
        for fd in [fd for fd, _, _ in joined] + [pid_ns, console_fd]:
            if fd >= 0:
                os.close(fd)
    child = InitProcess(pid, sock)
    try:
        while True:
            tag = child.next_message()
            if tag == "ready":
                break
            if tag == plan.SYNC_NAMESPACES:
                join_cgroups(cgroup_dirs, pid,
                             rootless=bool(container.runtime.get("rootless")) and not sub_cgroups)
            elif tag == SECCOMP_FD:
                from pyrunc.seccomp import send_to_listener

                fd, child.received_fd = child.received_fd, -1
                if linux.seccomp is None:  # no filter, no fd
                    os.close(fd)
                    raise PyruncError("exec: a seccomp fd from a process without a filter")
                send_to_listener(linux.seccomp, fd, pid, container.oci_state())
            child.proceed()
        if pid_file:
            write_pid_file(pid_file, pid)
        if pid_out is not None:
            pid_out.append(pid)
        child.proceed()
        child.close()
        if primer > 0:
            prime.finish(primer)
    except BaseException:
        if relay is not None:
            relay.close()
        child.abort()
        raise
    if detach:
        return 0
    if relay is not None:
        from pyrunc.console import receive_master
        from pyrunc.console import relay as relay_pty

        relay_pty(receive_master(relay))
    from pyrunc.lifecycle.foreground import exit_status, wait_forwarding

    return exit_status(wait_forwarding(pid))


def _setgroups_allowed(pid: int) -> bool:
    """False when the container's user namespace denies setgroups (a rootless container)."""
    try:
        return syscall.get().read(f"/proc/{pid}/setgroups").strip() != b"deny"
    except OSError:
        return True


def parse_sub_cgroups(args: list[str]) -> dict[str, str]:
    """runc's `--cgroup` forms: one `PATH` for every controller, or `CTRL[,CTRL]:PATH` each;
    {controller or "": path}."""
    out: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise PyruncError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise PyruncError(
                    f"invalid --cgroup argument: {arg} (missing <controller>: prefix)"
                )
            out[""] = arg
            continue
        for ctrl in parts[0].split(","):
            if not ctrl:
                raise PyruncError(f"invalid --cgroup argument: {arg} (empty <controller> prefix)")
            if ctrl in out:
                raise PyruncError(
                    f"invalid --cgroup argument(s): controller {ctrl} specified multiple times"
                )
            out[ctrl] = parts[1]
    for sub in out.values():
        # never out of the container's cgroup: no `..` at all (runc only checks the result)
        if ".." in sub.split("/") or "\0" in sub:
            raise PyruncError(f"{sub} is not a sub cgroup path")
    return out


def cgroup_targets(dirs: dict[str, str], sub: dict[str, str]) -> dict[str, str]:
    """{hierarchy key: directory} for the exec'd process: the container's cgroups, or the
    sub-cgroups `sub` names in them."""
    out = dict(dirs)
    if not sub:
        return out
    if "" in sub:
        return {key: os.path.join(d, sub[""].strip("/")) for key, d in dirs.items()}
    for ctrl, path in sub.items():
        # a v1 key names the co-mounted controllers ("cpu,cpuacct"); "" is the cgroup2 one
        key = next((k for k in dirs if ctrl in k.split(",")), None)
        if key is None:
            raise PyruncError(f"unknown controller {ctrl} in SubCgroupPaths")
        out[key] = os.path.join(dirs[key], path.strip("/"))
    return out


def join_cgroups(cgroup_dirs: dict[str, str], pid: int, rootless: bool = False) -> None:
    """Put an exec'd process in its cgroups (those recorded at create, or sub-cgroups).

    A rootless container's cgroup may be out of this caller's reach (moving a process needs
    write access to the common ancestor's cgroup.procs: a caller outside the delegated subtree
    lacks it); with `rootless` (and no --cgroup asked) the process then stays in the caller's
    cgroup, as runc lets it."""
    for path in cgroup_dirs.values():
        try:
            syscall.get().write(os.path.join(path, "cgroup.procs"), str(pid))
        except OSError as e:
            reason = (e.strerror or str(e)).lower()
            if rootless and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                from pyrunc.log import get_logger

                get_logger().debug(f"rootless exec: not joining cgroup {path}: {reason}")
                continue
            raise PyruncError(f"join cgroup {path}: {reason}") from None
