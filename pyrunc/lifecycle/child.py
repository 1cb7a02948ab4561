"""The runtime's end of a process it cloned into a container (the init, an exec'd process):
the sync socket, the console socket, the pid file. Shared by create and exec, below both."""

from __future__ import annotations

import os

from pyrunc import _linux
from pyrunc.errors import PyruncError
from pyrunc.state import write_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

CONTINUE = b"C"
SECCOMP_FD = "seccomp-fd"
CONFIG_COPY = "config.json"  # the config as create read it, in the state directory


def write_pid_file(path: str, pid: int) -> None:
    """Digits only, no newline (the containerd shim parses it whole); atomic."""
    write_file(os.path.abspath(path), str(pid).encode(), 0o644)


class InitProcess:
    """The parent's end of the init: its pid and the sync socket."""

    def __init__(self, pid: int, sock: int) -> None:
        self.pid = pid
        self.sock = sock
        self.console: socket.socket | None = None  # our end of the console socket, for `run`
        self.received_fd = -1

    def next_message(self) -> str:
        """The next sync tag; an error message from the child becomes a PyruncError.

        A message carrying an fd (the seccomp notify fd) comes back as the tag "seccomp-fd",
        the fd in `self.received_fd`.
        """
        data, fd = _linux.recv_message(self.sock)
        if fd >= 0:
            self.received_fd = fd
            return SECCOMP_FD
        if not data:
            status = self._reap()
            raise PyruncError(f"container init exited before it was ready ({status})")
        if data[:1] == b"E":
            raise PyruncError(
                "unable to start container process: " + data[2:].decode(errors="replace")
            )
        return data.rstrip(b"\0").decode()

    def proceed(self) -> None:
        os.write(self.sock, CONTINUE)

    def _reap(self) -> str:
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return "already reaped"
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.WEXITSTATUS(status)}"

    def abort(self) -> None:
        """Kill the init and reap it: nothing of a failed create may stay behind."""
        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        self.close()

    def close(self) -> None:
        if self.sock >= 0:
            os.close(self.sock)
            self.sock = -1


def connect_console(path: str) -> int:
    """A connected stream socket to --console-socket; the init sends the pty master on it."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        reason = (e.strerror or str(e)).lower()
        raise PyruncError(f"connect to console socket {path}: {reason}") from None
    return sock.detach()
