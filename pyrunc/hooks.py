"""OCI hooks: prestart, createRuntime, createContainer, startContainer, poststart, poststop.

Hooks are plain dicts (path, args, env, timeout) so that `start` and `delete` can run the ones
kept in state.json without importing the spec model. A hook is spawned by the same executor as
the container's init, which lets it join the container's namespaces first where the spec says
the hook runs "in the container namespace".
"""

from __future__ import annotations

import os
import select

from pyrunc import _executor, _linux, jsonlite
from pyrunc import instructions as ins
from pyrunc.errors import PyruncError

TYPE_CHECKING = False  # typing costs ~10 ms to import; every create loads this module

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NotRequired, TypedDict

    from pyrunc.spec.compiled import Hook, Spec
    from pyrunc.state import HookState, PidlessState

    class HookRecord(TypedDict):
        """A spec Hook as kept in state.json (config.json's field names)."""

        path: str
        args: NotRequired[list[str]]
        env: NotRequired[list[str]]
        timeout: NotRequired[int]

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def hook_dict(hook: Hook) -> HookRecord:
    """The stored form of a spec Hook."""
    d: HookRecord = {"path": hook.path}
    if hook.args:
        d["args"] = list(hook.args)
    if hook.env:
        d["env"] = list(hook.env)
    if hook.timeout is not None:
        d["timeout"] = hook.timeout
    return d


def spec_hooks(spec: Spec) -> dict[str, list[HookRecord]]:
    """Every non-empty hook list of a spec, by its JSON name."""
    h = spec.hooks
    if h is None:
        return {}
    out = {}
    for kind in KINDS:
        attr = "".join("_" + c.lower() if c.isupper() else c for c in kind)
        items = getattr(h, attr) or ()
        if items:
            out[kind] = [hook_dict(x) for x in items]
    return out


def start_container_ops(hooks: list[HookRecord], state: PidlessState,
                        process_env: list[str]) -> list[ins.Op]:
    """startContainer hooks, run by the init itself after `start` and its seccomp filter, just
    before the user process (runc): with its user, capabilities and root. A hook without env
    gets the process's environment, as in runc's init."""
    text = jsonlite.dumps({**state, "pid": 0})  # pid last: the init writes its own
    assert text.endswith('"pid": 0}')
    head, tail = text[: -len("0}")], "}"
    return [
        ins.hook(h["path"], h.get("args") or [h["path"]], h.get("env") or process_env, head, tail,
                 h.get("timeout") or 0, f"startContainer hook #{i} ({h['path']})")
        for i, h in enumerate(hooks)
    ]


def run_hooks(
    kind: str,
    hooks: list[HookRecord] | None,
    state: HookState,
    in_pid: int = 0,
    warn_only: bool = False,
    *,
    root: str | None = None,
    env: list[str] | None = None,
    on_spawn: Callable[[int], None] | None = None,
) -> None:
    """Run hooks in order with the state JSON on stdin; the first failure raises.

    With `in_pid`, each hook joins that process's namespaces (mount last) before its execve, and
    the state names the pid as the container sees it; `root` (the rootfs, createContainer) is
    then its working directory. With `warn_only` (poststop), a failure is logged and the next
    hook still runs, "as if the hook had succeeded". A hook without env gets `env`, else the
    runtime's own environment (runc and crun). `on_spawn` gets each hook's pid before its
    stdin is written (create records it in its intent, so `delete --force` after a killed
    create kills the hook it was waiting for).
    """
    if not hooks:
        return
    if in_pid:
        state = {**state, "pid": pid_in_namespace(in_pid)}
    from pyrunc.log import get_logger

    payload = jsonlite.dumps(state).encode()
    log = get_logger()
    for i, hook in enumerate(hooks):
        if log.debugging:
            log.debug(f"hooks: running {kind} hook {i}: {hook.get('path')}")
        try:
            status, output = _run_one(hook, payload, in_pid, root, env, on_spawn)
            if status != 0:
                detail = output.decode(errors="replace").strip().replace("\n", " ")[:500]
                raise PyruncError(
                    f"{kind} hook #{i} ({hook['path']}) {status_text(status, hook)}"
                    + (f": {detail}" if detail else "")
                )
        except PyruncError as e:
            if not warn_only:
                raise
            from pyrunc.log import get_logger

            get_logger().warning(str(e))


def pid_in_namespace(pid: int) -> int:
    """The pid of a host process as its own pid namespace sees it (last NSpid field)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        pass
    return pid


def status_text(status: int, hook: HookRecord) -> str:
    if status == -1:
        return f"did not finish within {hook.get('timeout')}s"
    if os.WIFSIGNALED(status):
        return f"was killed by signal {os.WTERMSIG(status)}"
    return f"failed with status {os.WEXITSTATUS(status)}"


def _run_one(
    hook: HookRecord, payload: bytes, in_pid: int, root: str | None, env: list[str] | None,
    on_spawn: Callable[[int], None] | None = None,
) -> tuple[int, bytes]:
    """(wait status or -1 on timeout, combined output) of one hook."""
    path = hook["path"]
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    ns_fds: list[tuple[int, int, str]] = []
    pid_ns = user_fd = -1
    try:
        plan: list[ins.Op] = []
        if in_pid:
            from pyrunc.namespaces import open_process_namespaces

            # unprivileged: the container's user namespace first (it owns the others), joined
            # by the process that clones the hook (see _executor.spawn)
            ns_fds, pid_ns = open_process_namespaces(in_pid, with_user=os.geteuid() != 0)
            user_fd = next((fd for fd, _, kind in ns_fds if kind == "user"), -1)
        # S11: the hook's process is cloned into the container's pid namespace (which other
        # containers of a pod may share), so it closes (not only marks close-on-exec) every fd
        # of ours and of our caller (the state directory's lock, a host directory) first
        keep = [stdin_r, out_w] + [fd for fd, _, _ in ns_fds if fd != user_fd]
        plan.append(ins.close_others(3, keep, "close inherited file descriptors"))
        plan += [ins.setns(fd, flag, f"join {kind} namespace")
                 for fd, flag, kind in ns_fds if fd != user_fd]
        if root is not None:
            plan += [ins.root(root, "open the rootfs"),
                     ins.chdir("/", ins.CHDIR_PLAIN, f"chdir to the rootfs {root}")]
        hook_env: list[str] | None = hook.get("env") or env
        if hook_env is None:
            hook_env = [f"{k}={v}" for k, v in os.environ.items()]
        plan += [
            ins.dup2(stdin_r, 0, "stdin"),
            ins.dup2(out_w, 1, "stdout"),
            ins.dup2(out_w, 2, "stderr"),
            ins.cloexec_from(3, "close file descriptors"),
            # a hook outside the container may be a /proc/PID/exe (dockerd's prestart hook)
            ins.find_exec(path, None, ins.LOOKUP_CONTAINER if in_pid else ins.LOOKUP_HOST,
                          "find hook"),
            ins.execve(hook.get("args") or [path], hook_env, "exec hook"),
        ]
        pid, sock = _executor.spawn(plan, 0, pid_ns, join_user_fd=user_fd)
    finally:
        for fd in [stdin_r, out_w, pid_ns] + [fd for fd, _, _ in ns_fds]:
            if fd >= 0:
                os.close(fd)
    try:
        message = os.read(sock, 4096)  # EOF once the hook has exec'd
        os.close(sock)
        if message[:1] == b"E":
            os.waitpid(pid, 0)
            raise PyruncError(f"hook {path}: {message[2:].decode(errors='replace')}")
        if on_spawn is not None:
            try:
                on_spawn(pid)
            except BaseException:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                raise
        try:
            os.write(stdin_w, payload)
        except BrokenPipeError:
            pass
        os.close(stdin_w)
        stdin_w = -1
        return _wait(pid, out_r, hook.get("timeout"))
    finally:
        if stdin_w >= 0:
            os.close(stdin_w)
        os.close(out_r)


def _wait(pid: int, out_r: int, timeout: int | None) -> tuple[int, bytes]:
    pidfd = _linux.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(out_r, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        deadline_ms = None if timeout is None else timeout * 1000
        output = b""
        import time

        start = time.monotonic()
        while True:
            left = None
            if deadline_ms is not None:
                left = max(0, int(deadline_ms - (time.monotonic() - start) * 1000))
            events = poller.poll(left)
            if not events:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                return -1, output
            for fd, _ in events:
                if fd == out_r:
                    chunk = os.read(out_r, 65536)
                    if chunk:
                        output += chunk
                    else:
                        poller.unregister(out_r)
                else:
                    _, status = os.waitpid(pid, 0)
                    # whatever is still buffered in the pipe
                    return status, output
    finally:
        os.close(pidfd)
