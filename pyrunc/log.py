"""runc-compatible logging: `--log FILE` with `--log-format text|json`, errors also on stderr.

Clients parse this: conmon reads the whole file as one JSON object on failure, the containerd
shim takes the last `"level":"error"` line. So nothing below the error level is written unless
`--debug` asks for it.
"""

from __future__ import annotations

import os
import sys
import time

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Logger:
    """Writes log records in runc's (logrus') text or JSON form."""

    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.min_level = 0 if debug else 2
        self.debugging = debug  # callers test it before formatting a debug line

    def format(self, level: str, msg: str) -> str:
        if self.fmt == "json":
            from pyrunc import jsonlite

            record = {"level": level, "msg": msg, "time": _now()}
            return jsonlite.dumps(record, separators=(",", ":")) + "\n"
        return f"time={_quote(_now())} level={level} msg={_quote(msg)}\n"

    def log(self, level: str, msg: str) -> None:
        if _LEVELS[level] < self.min_level:
            return
        line = self.format(level, msg)
        if self.path:
            try:
                fd = os.open(
                    self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
                )
            except OSError:
                # the log cannot be opened (its directory gone, say): the record goes to stderr
                # (error() writes errors there anyway) rather than a traceback that hides it
                if level != "error":
                    sys.stderr.write(line)
                return
            try:
                os.write(fd, line.encode(errors="backslashreplace"))
            finally:
                os.close(fd)
        elif level != "error":
            sys.stderr.write(line)

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def error(self, msg: str) -> None:
        """An error goes to the log and, as one line, to stderr (runc's behaviour)."""
        self.log("error", msg)
        if self.path:
            sys.stderr.write(msg + "\n")
        else:
            sys.stderr.write(self.format("error", msg))
        sys.stderr.flush()


_logger = Logger()


def get_logger() -> Logger:
    return _logger


def configure(path: str | None, fmt: str, debug: bool) -> Logger:
    global _logger
    _logger = Logger(path, fmt, debug)
    return _logger
