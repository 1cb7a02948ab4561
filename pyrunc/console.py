"""The foreground terminal of `run`: receive the pty master, relay it to our own stdio."""

from __future__ import annotations

import array
import fcntl
import os
import select
import socket
import struct
import termios

TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414


def receive_master(sock: socket.socket) -> int:
    """The one fd the init sends with SCM_RIGHTS."""
    fds = array.array("i")
    _, ancillary, _, _ = sock.recvmsg(1, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: fds.itemsize])
    sock.close()
    if not fds:
        raise OSError("the container sent no pty master")
    return fds[0]


def copy_window_size(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, TIOCGWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
        fcntl.ioctl(dst, TIOCSWINSZ, size)
    except OSError:
        pass


def relay(master: int) -> None:
    """Copy stdin to the pty and the pty to stdout until the container side hangs up."""
    stdin_tty = os.isatty(0)
    saved = None
    if stdin_tty:
        saved = termios.tcgetattr(0)
        copy_window_size(0, master)
        mode = termios.tcgetattr(0)
        mode[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
        mode[1] &= ~termios.OPOST
        mode[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
        termios.tcsetattr(0, termios.TCSANOW, mode)
    watch = [master, 0]
    try:
        while True:
            ready, _, _ = select.select(watch, [], [])
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every process holding the pty is gone
                    return
                if not data:
                    return
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if not data:
                    watch.remove(0)
                    continue
                os.write(master, data)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
