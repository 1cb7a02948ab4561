"""The importable API: a `Runtime` bound to one state root, and handles on what it starts.

    import subprocess
    from pyrunc import Runtime

    rt = Runtime()
    with rt.create("demo", "bundles/busybox", stdout=subprocess.PIPE) as c:
        c.start()
        print(c.stdout.read(), c.wait())      # the container is deleted on leaving the block

`create`, `run` and `exec` take a bundle directory or a `pyrunc.spec.model.Spec` built in
code (validated as config.json is, with the same JSON-path messages), and stdio as
`subprocess` does: None (inherit this process's), a file object or fd, `subprocess.PIPE`,
`subprocess.DEVNULL` (and `subprocess.STDOUT` for stderr). See docs/api.md.

S1: the processes `create`, `run` and `exec` put into a container are clones of *this*
interpreter until their execve; a container process with CAP_SYS_PTRACE could write the
interpreter binary through /proc/<pid>/exe. So a Runtime refuses to run them from an
interpreter that is not protected (pyrunc/sealed.py) unless it was made with
`allow_writable_interpreter=True`; `pyrunc.api.reexec_protected()` restarts the program from
the protected interpreter in one call.

Each method imports its lifecycle module on first use, so a program that only reads state
never pays for the spec model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from pyrunc.errors import PyruncError
from pyrunc.state import DEFAULT_ROOT, StateStore

if TYPE_CHECKING:
    from typing import TypeAlias

    from pyrunc.cgroups.events import StatsEvent
    from pyrunc.lifecycle.exec import ProcessJSON
    from pyrunc.spec.model import Process as ProcessSpec
    from pyrunc.spec.model import Spec
    from pyrunc.state import OciState

    #: what `stdin`, `stdout` and `stderr` accept: None, an fd, a file, PIPE, DEVNULL, STDOUT
    StdioArg: TypeAlias = None | int | IO[Any]
    #: a bundle directory, a Spec built in code, or a config.json document as a dict
    BundleOrSpec: TypeAlias = str | os.PathLike[str] | Spec | dict[str, Any]

__all__ = [
    "Runtime",
    "Container",
    "Process",
    "InterpreterNotProtected",
    "reexec_protected",
    "PIPE",
    "DEVNULL",
    "STDOUT",
]

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT



class InterpreterNotProtected(PyruncError):
    """create/run/exec from an interpreter a container could overwrite (S1)."""


def reexec_protected() -> None:
    """Restart this program (same argv, same sys.path) from the protected interpreter: the
    read-only overlay pyrunc.sealed mounts, or a sealed memfd copy where overlayfs is missing.
    Returns only when already running from it. Call it first thing, before threads start."""
    from pyrunc import sealed

    if sealed.running_sealed():
        return
    argv = sys.orig_argv[1:]
    # where the program came from (a script, -m module, -c code) stays in argv; the path it
    # had (a venv's site-packages: the protected copy does not know the venv) is handed over
    path = [p for p in sys.path if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    real = os.path.realpath("/proc/self/exe")
    try:
        protected = sealed.protect(real)
    except OSError:
        os.execve(sealed.sealed_copy(), [sys.executable, *argv], env)
    os.execve(protected, [protected, *argv], env)


class _Stdio:
    """The caller's stdin/stdout/stderr arguments as the child's three fds (>= 3, close-on-exec
    here: the plan dup2s them onto 0-2) and our ends of any pipes."""

    def __init__(self, stdin: StdioArg, stdout: StdioArg, stderr: StdioArg,
                 text: bool = False, preserve_fds: int = 0) -> None:  # fmt: skip
        # above the fds the container keeps (3 .. 3+preserve_fds-1): ours must not join them
        low = 3 + preserve_fds

        def _dup(fd: int) -> int:
            import fcntl

            return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)

        self.child = [-1, -1, -1]
        self.ours: list[IO[Any] | None] = [None, None, None]
        try:
            for i, arg in enumerate((stdin, stdout, stderr)):
                if arg is None:
                    continue
                if arg == STDOUT and i == 2:
                    if self.child[1] >= 0:
                        self.child[2] = _dup(self.child[1])
                    else:
                        self.child[2] = _dup(1)
                elif arg == PIPE:
                    r, w = os.pipe2(os.O_CLOEXEC)
                    mine, theirs = (w, r) if i == 0 else (r, w)
                    self.child[i] = _dup(theirs)
                    os.close(theirs)
                    mode = ("w" if i == 0 else "r") + ("" if text else "b")
                    self.ours[i] = open(mine, mode, buffering=-1 if text else 0)  # noqa: SIM115
                elif arg == DEVNULL:
                    fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                    self.child[i] = _dup(fd)
                    os.close(fd)
                elif isinstance(arg, int):
                    if arg < 0:
                        raise ValueError(f"invalid stdio argument {arg}")
                    self.child[i] = _dup(arg)
                elif hasattr(arg, "fileno"):
                    if hasattr(arg, "flush"):
                        arg.flush()
                    self.child[i] = _dup(arg.fileno())
                else:
                    raise TypeError(f"stdio must be None, an fd, a file, PIPE or DEVNULL: {arg!r}")
        except BaseException:
            self.close_child()
            self.close_ours()
            raise

    def given(self) -> tuple[int, int, int] | None:
        return None if self.child == [-1, -1, -1] else (self.child[0], self.child[1],
                                                        self.child[2])  # fmt: skip

    def close_child(self) -> None:
        for fd in self.child:
            if fd >= 0:
                os.close(fd)
        self.child = [-1, -1, -1]

    def close_ours(self) -> None:
        for f in self.ours:
            if f is not None:
                f.close()


def _exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


class Process:
    """A process pyrunc started in a container (the init of a `Container`, or an `exec`):
    `pid` (host pid), `stdin`/`stdout`/`stderr` (our ends of the pipes asked for, else None),
    `returncode` (None until `wait` reaped it)."""

    def __init__(self, pid: int, stdio: _Stdio | None, child: bool = True) -> None:
        self.pid = pid
        self.stdin: IO[Any] | None = stdio.ours[0] if stdio else None
        self.stdout: IO[Any] | None = stdio.ours[1] if stdio else None
        self.stderr: IO[Any] | None = stdio.ours[2] if stdio else None
        self.returncode: int | None = None
        self._child = child  # started by this process, so ours to reap

    def poll(self) -> int | None:
        """The exit code if the process has exited (reaping it), else None."""
        return self.wait(0) if self._exited(0) else None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit and reap it; its exit status, 128+N for signal N.
        Raises subprocess.TimeoutExpired after `timeout` seconds."""
        if self.returncode is not None:
            return self.returncode
        if not self._child:
            raise ChildProcessError(f"process {self.pid} was not started by this program: "
                                    "only its parent can wait for its exit status")  # fmt: skip
        if timeout is not None and not self._exited(timeout):
            raise subprocess.TimeoutExpired(str(self.pid), timeout)
        while True:
            try:
                _, status = os.waitpid(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:  # reaped elsewhere (a SIGCHLD handler)
                self.returncode = 255
                return self.returncode
            self.returncode = _exit_code(status)
            return self.returncode

    def _exited(self, timeout: float) -> bool:
        import select

        try:
            fd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return True
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(max(0, int(timeout * 1000))))
        finally:
            os.close(fd)

    def send_signal(self, sig: int) -> None:
        """Signal the process (nothing if it has been reaped)."""
        if self.returncode is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def communicate(self, input: bytes | str | None = None,
                    timeout: float | None = None) -> tuple[Any, Any]:  # fmt: skip
        """As Popen.communicate: send `input`, read stdout and stderr to their end, wait.
        On timeout raises subprocess.TimeoutExpired carrying the output read so far."""
        import selectors
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        chunks: dict[int, list[bytes]] = {1: [], 2: []}
        data = (input.encode() if isinstance(input, str) else input) or b""
        sel = selectors.DefaultSelector()
        try:
            if self.stdin is not None:
                if data:
                    os.set_blocking(self.stdin.fileno(), False)
                    sel.register(self.stdin, selectors.EVENT_WRITE, 0)
                else:
                    self.stdin.close()
            for i, f in ((1, self.stdout), (2, self.stderr)):
                if f is not None:
                    sel.register(f, selectors.EVENT_READ, i)
            offset = 0
            while sel.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(str(self.pid), timeout or 0,
                                                    *self._output(chunks))  # fmt: skip
                for key, _ in sel.select(left):
                    if key.data == 0:
                        try:
                            offset += os.write(key.fd, data[offset : offset + 65536])
                        except BrokenPipeError:
                            offset = len(data)
                        if offset >= len(data) and self.stdin is not None:  # it is: data 0
                            sel.unregister(key.fileobj)
                            self.stdin.close()
                    else:
                        chunk = os.read(key.fd, 65536)
                        if chunk:
                            chunks[key.data].append(chunk)
                        else:
                            sel.unregister(key.fileobj)
        finally:
            sel.close()
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            self.wait(left)
        except subprocess.TimeoutExpired as e:
            e.output, e.stderr = self._output(chunks)
            raise
        return self._output(chunks)

    def _output(self, chunks: dict[int, list[bytes]]) -> tuple[Any, Any]:
        out: list[str | bytes | None] = []
        for i, f in ((1, self.stdout), (2, self.stderr)):
            if f is None:
                out.append(None)
                continue
            raw = b"".join(chunks[i])
            out.append(raw.decode(errors="replace") if "b" not in getattr(f, "mode", "b")
                       else raw)  # fmt: skip
        return out[0], out[1]

    def close(self) -> None:
        """Close our ends of the pipes."""
        for f in (self.stdin, self.stdout, self.stderr):
            if f is not None:
                f.close()


class Container(Process):
    """A handle on one container of a Runtime: its init (`pid`, `wait`, the pipes given to
    `create`) and the container operations. As a context manager it deletes the container
    (killing what is left) on exit."""

    def __init__(self, runtime: Runtime, container_id: str, pid: int,
                 stdio: _Stdio | None = None, child: bool = False) -> None:  # fmt: skip
        super().__init__(pid, stdio, child)
        self.runtime = runtime
        self.id = container_id
        #: the pty master (a binary file) when created with terminal=True
        self.terminal: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"<pyrunc.Container {self.id!r} pid={self.pid}>"

    def __enter__(self) -> Container:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.delete(force=True)

    def state(self) -> OciState:
        """The OCI state document."""
        return self.runtime.state(self.id)

    def status(self) -> str:
        """"created", "running", "paused" or "stopped"."""
        return str(self.state()["status"])

    def start(self) -> None:
        """Run the container's process (the init waits for this after create)."""
        self.runtime.start(self.id)

    def kill(self, sig: int | str = 15, all_processes: bool = False) -> None:
        """Signal the init (or, with all_processes, every process of the container)."""
        self.runtime.kill(self.id, sig, all_processes)

    def delete(self, force: bool = False) -> None:
        """Remove the container (force: kill what still runs first); reaps the init when it
        is ours and closes our pipe ends. Deleting a deleted container does nothing."""
        from pyrunc.errors import ContainerNotFound

        try:
            self.runtime.delete(self.id, force)
        except ContainerNotFound:
            pass
        if self._child and self.returncode is None and self._exited(5 if force else 0):
            self.wait()
        self.close()
        if self.terminal is not None:
            self.terminal.close()

    def exec(self, args: list[str] | ProcessSpec, **options: Any) -> Process:
        """Start one more process in the container; see Runtime.exec."""
        return self.runtime.exec(self.id, args, **options)

    def stats(self) -> StatsEvent:
        """One runc-style stats event (`{"type": "stats", "id": ..., "data": {...}}`)."""
        return self.runtime.stats(self.id)

    def pause(self) -> None:
        """Freeze every process of the container."""
        self.runtime.pause(self.id)

    def resume(self) -> None:
        """Thaw a paused container."""
        self.runtime.resume(self.id)

    def update(self, resources: dict[str, Any] | str | bytes) -> None:
        """Apply a LinuxResources document to the container's cgroups."""
        self.runtime.update(self.id, resources)

    def ps(self) -> list[int]:
        """The host pids of the container's processes."""
        return self.runtime.ps(self.id)


class Runtime:
    """pyrunc as a library: the CLI's operations on one state root (--root).

    `allow_writable_interpreter`: run create/run/exec even from an interpreter a container
    could write through /proc/<pid>/exe (S1; see the module's docstring).
    """

    def __init__(self, root: str = DEFAULT_ROOT, *, allow_writable_interpreter: bool = False
                 ) -> None:  # fmt: skip
        self.root = root
        self.store = StateStore(root)
        self.allow_writable_interpreter = allow_writable_interpreter

    def __repr__(self) -> str:
        return f"<pyrunc.Runtime root={self.root!r}>"

    # --- S1 --------------------------------------------------------------------------

    def _check_interpreter(self) -> None:
        from pyrunc import sealed

        if self.allow_writable_interpreter or sealed.running_sealed():
            return
        raise InterpreterNotProtected(
            f"{os.path.realpath('/proc/self/exe')} is not the protected interpreter: a container "
            "process with CAP_SYS_PTRACE could overwrite it through /proc/<pid>/exe (S1); call "
            "pyrunc.api.reexec_protected() first, or pass allow_writable_interpreter=True"
        )

    # --- configs ---------------------------------------------------------------------

    @staticmethod
    def _config(bundle_or_spec: BundleOrSpec, bundle: str | None,
                terminal: bool | None) -> tuple[str, bytes | None]:  # fmt: skip
        """(bundle directory, config bytes or None to read the bundle's config.json)."""
        import json

        if isinstance(bundle_or_spec, str | os.PathLike):
            if terminal is None:
                return os.fspath(bundle_or_spec), None
            path = os.path.join(os.fspath(bundle_or_spec), "config.json")
            with open(path, "rb") as f:
                document = json.loads(f.read())
            directory = os.fspath(bundle_or_spec)
        else:
            if isinstance(bundle_or_spec, dict):
                document = bundle_or_spec
            else:
                from pyrunc.spec.converter import unstructure_config

                document = unstructure_config(bundle_or_spec)
            # relative paths (root.path) are relative to `bundle`, else the current directory
            directory = bundle or os.getcwd()
        if terminal is not None:
            document = dict(document, process=dict(document.get("process") or {},
                                                    terminal=terminal))  # fmt: skip
        data = json.dumps(document).encode()
        from pyrunc.spec.loader import load_config

        load_config(data, "config.json")  # the loader's JSON-path errors, before anything runs
        return directory, data

    # --- lifecycle -------------------------------------------------------------------

    def create(
        self,
        container_id: str,
        bundle_or_spec: BundleOrSpec,
        *,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        text: bool = False,
        terminal: bool | None = None,
        bundle: str | None = None,
        pid_file: str | None = None,
        console_socket: str | None = None,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
        network: str | None = None,
        publish: list[str] | None = None,
    ) -> Container:
        """Create a container from a bundle directory or a Spec (relative paths in a Spec are
        relative to `bundle`, default the current directory); its init waits for `start`.

        network="NAME[:ip=A.B.C.D]" joins a pyrunc bridge network (pyrunc.network; the config
        needs a new network namespace), publish=["HOSTPORT:PORT[/tcp|udp]", ...] publishes
        container ports on the host's addresses.

        stdio as subprocess: None inherits ours; PIPE gives the handle's stdin/stdout/stderr.
        terminal=True (or the config's process.terminal) gives the process a pty whose master
        is the handle's `terminal`, unless console_socket names where to send it.
        """
        self._check_interpreter()
        from pyrunc.lifecycle.create import create

        directory, config = self._config(bundle_or_spec, bundle, terminal)
        stdio = _Stdio(stdin, stdout, stderr, text, preserve_fds)
        try:
            container, init = create(self.store, container_id, directory, pid_file=pid_file,
                                     console_socket=console_socket, no_pivot=no_pivot,
                                     no_new_keyring=no_new_keyring, preserve_fds=preserve_fds,
                                     relay_console=console_socket is None, config=config,
                                     stdio=stdio.given(), network=network,
                                     publish=publish)  # fmt: skip
        except BaseException:
            stdio.close_ours()
            raise
        finally:
            stdio.close_child()
        handle = Container(self, container_id, container.pid, stdio, child=True)
        if init.console is not None:
            from pyrunc.console import receive_master

            handle.terminal = open(receive_master(init.console), "r+b", buffering=0)  # noqa: SIM115
        init.close()
        return handle

    def container(self, container_id: str) -> Container:
        """A handle on an existing container (not created by this Runtime object: its exit
        status is its parent's to collect, so `wait` raises ChildProcessError)."""
        return Container(self, container_id, int(self.state(container_id)["pid"]))

    def start(self, container_id: str) -> None:
        """Start a created container's process."""
        from pyrunc.lifecycle.start import start

        start(self.store, container_id)

    def run(
        self,
        container_id: str,
        bundle_or_spec: BundleOrSpec,
        *,
        input: bytes | str | None = None,
        capture_output: bool = False,
        timeout: float | None = None,
        check: bool = False,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        text: bool = False,
        keep: bool = False,
        **create_options: Any,
    ) -> subprocess.CompletedProcess[Any]:
        """Create, start, wait and delete, as subprocess.run does for a program: returns a
        CompletedProcess (returncode 128+N for a signal). On timeout (TimeoutExpired, with the
        output so far), on any exception and on KeyboardInterrupt the container is killed
        and deleted. keep=True leaves a stopped container behind."""
        if capture_output:
            stdout = stdout if stdout is not None else PIPE
            stderr = stderr if stderr is not None else PIPE
        if input is not None:
            stdin = PIPE
        c = self.create(container_id, bundle_or_spec, stdin=stdin, stdout=stdout, stderr=stderr,
                        text=text, **create_options)  # fmt: skip
        try:
            c.start()
            out, err = c.communicate(input, timeout)
        except BaseException:
            c.delete(force=True)
            raise
        if keep:
            c.close()
        else:
            c.delete(force=True)
        result = subprocess.CompletedProcess([container_id], c.returncode or 0, out, err)
        if check:
            result.check_returncode()
        return result

    def exec(
        self,
        container_id: str,
        args: list[str] | ProcessSpec,
        *,
        stdin: StdioArg = None,
        stdout: StdioArg = None,
        stderr: StdioArg = None,
        text: bool = False,
        env: list[str] | dict[str, str] | None = None,
        cwd: str | None = None,
        user: tuple[int, int] | None = None,
        pid_file: str | None = None,
        preserve_fds: int = 0,
        ignore_paused: bool = False,
    ) -> Process:
        """Start a process in a running (or created) container: `args` (with the init's
        environment, cwd, user and capabilities, as `pyrunc exec` gives them, overridden by
        env/cwd/user) or a pyrunc.spec.model.Process. Returns its handle, not waiting."""
        self._check_interpreter()
        import copy

        from pyrunc.lifecycle.exec import container_config, exec_process

        document: object
        if isinstance(args, list | tuple):
            saved = container_config(self.store, container_id).get("process")
            process: ProcessJSON = copy.deepcopy(saved) if saved else {}
            process["args"] = list(args)
            process["terminal"] = False
            if env is not None:
                # null is absent in runtime-spec JSON: no environment to override
                base = {e.partition("=")[0]: e for e in process.get("env") or []}
                items = env.items() if isinstance(env, dict) else (e.partition("=")[::2]
                                                                   for e in env)  # fmt: skip
                base.update({k: f"{k}={v}" for k, v in items})
                process["env"] = list(base.values())
            if cwd is not None:
                process["cwd"] = cwd
            if user is not None:
                process["user"] = {**(process.get("user") or {}), "uid": user[0], "gid": user[1]}
            document = process
        else:
            from pyrunc.spec.converter import unstructure_config

            document = unstructure_config(args)
        stdio = _Stdio(stdin, stdout, stderr, text, preserve_fds)
        pids: list[int] = []
        try:
            exec_process(self.store, container_id, document, detach=True, pid_file=pid_file,
                         preserve_fds=preserve_fds, ignore_paused=ignore_paused,
                         stdio=stdio.given(), pid_out=pids)  # fmt: skip
        except BaseException:
            stdio.close_ours()
            raise
        finally:
            stdio.close_child()
        return Process(pids[0], stdio)

    def kill(self, container_id: str, signal: int | str = 15, all_processes: bool = False
             ) -> None:  # fmt: skip
        """Send a signal (number or name, e.g. "KILL") to the container's init, or to all."""
        from pyrunc.lifecycle.kill import kill
        from pyrunc.signals import parse_signal

        sig = signal if isinstance(signal, int) else parse_signal(signal)
        kill(self.store, container_id, sig, all_processes)

    def delete(self, container_id: str, force: bool = False) -> None:
        """Remove a stopped (or created) container; force: kill whatever still runs."""
        from pyrunc.lifecycle.delete import delete

        delete(self.store, container_id, force)

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container."""
        from pyrunc.lifecycle.pause import pause

        pause(self.store, container_id)

    def resume(self, container_id: str) -> None:
        """Thaw a paused container."""
        from pyrunc.lifecycle.pause import resume

        resume(self.store, container_id)

    def ps(self, container_id: str) -> list[int]:
        """The host pids of the container's processes."""
        from pyrunc.lifecycle.ps import container_pids

        return container_pids(self.store, container_id)

    def stats(self, container_id: str) -> StatsEvent:
        """One runc-style stats event: `{"type": "stats", "id": ..., "data": {...}}`."""
        from pyrunc.lifecycle.events import stats

        return stats(self.store, container_id)

    def update(self, container_id: str, resources: dict[str, Any] | str | bytes) -> None:
        """Apply a LinuxResources document (dict or JSON) to the container's cgroups."""
        from pyrunc.lifecycle.update import update

        update(self.store, container_id, resources)

    def state(self, container_id: str) -> OciState:
        """The OCI state document of one container."""
        lock, container = self.store.lock(container_id, exclusive=False)
        with lock:
            return container.oci_state()

    def list(self) -> list[OciState]:
        """The OCI state documents of every container under the root."""
        return [c.oci_state() for c in self.store.containers()]
