"""The command line, runc-compatible: global flags, then one command and its own flags.

Only the invoked command's module is imported (each lives in ``pyrunc/commands/``), so `state`
costs an argparse parser and a JSON read, not the spec model.
"""

from __future__ import annotations

import os
import sys

from pyrunc import SPEC_VERSION, __version__
from pyrunc.errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is imported only once a parser is needed
    import argparse

# name -> one-line help; the module pyrunc.commands.<name> implements it
COMMANDS: dict[str, str] = {
    "create": "create a container",
    "start": "execute the user defined process in a created container",
    "run": "create and run a container",
    "state": "output the state of a container",
    "kill": "kill sends the specified signal (default: SIGTERM) to the container's init process",
    "delete": "delete any resources held by the container",
    "list": "lists containers started by pyrunc with the given root",
    "exec": "execute new process inside the container",
    "spec": "create a new specification file",
    "features": "show the enabled features",
    "pause": "pause suspends all processes inside the container",
    "resume": "resumes all processes that have been previously paused",
    "ps": "ps displays the processes running inside a container",
    "events": "display container events such as OOM notifications, cpu, memory, and IO usage "
    "statistics",
    "update": "update container resource constraints",
}


def _parser_class() -> type:
    """argparse, but usage errors are one line and exit 1, like every other pyrunc error.

    Made on first use: the commands that re-execute themselves (create, run, exec) decide
    that before paying for argparse.
    """
    import argparse

    class ArgumentParser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise PyruncError(f"{self.prog}: {message}")

    return ArgumentParser


def global_parser() -> argparse.ArgumentParser:
    import argparse

    p = _parser_class()(
        prog="pyrunc",
        description="pyrunc: an OCI container runtime in Python",
        epilog="commands:\n" + "\n".join(f"  {k:<10} {v}" for k, v in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--root", default=None, help="root directory for storage of container state")
    p.add_argument("--log", default=None, help="set the log file to write pyrunc logs to")
    p.add_argument("--log-format", default="text", choices=("text", "json"))
    p.add_argument("--debug", action="store_true", help="enable debug logging")
    p.add_argument("--systemd-cgroup", action="store_true", help="use systemd to manage cgroups")
    p.add_argument("--rootless", default="auto", help="ignore cgroup permission errors")
    p.add_argument("--criu", default="criu", help=argparse.SUPPRESS)
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    p.add_argument("command", nargs="?", choices=tuple(COMMANDS), metavar="COMMAND")
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def command_parser(name: str) -> argparse.ArgumentParser:
    return _parser_class()(prog=f"pyrunc {name}", description=COMMANDS[name])


# global flags that take a value (the command is the first word that is not one of them)
_VALUE_FLAGS = ("--root", "--log", "--log-format", "--criu", "--rootless")


def command_of(argv: list[str]) -> str | None:
    """The command word, found without argparse (used to re-exec before any heavy import)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _VALUE_FLAGS:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def run() -> None:
    """The program's entry point: `main`, then a plain exit. Interpreter teardown is skipped
    (it costs milliseconds on every command and nothing needs it: logs are written with
    os.write, stdio is flushed here)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """The CLI, callable in-process; returns the exit status."""
    import gc

    gc.disable()  # a short-lived process: the collector only costs time here
    argv = sys.argv[1:] if argv is None else argv
    from pyrunc import sealed

    if command_of(argv) in sealed.SEALED_COMMANDS and not sealed.running_sealed():
        sealed.reexec_sealed(argv)
    return dispatch(argv)


def dispatch(argv: list[str]) -> int:
    from pyrunc import log

    logger = log.get_logger()
    try:
        opts = global_parser().parse_args(argv)
        logger = log.configure(opts.log, opts.log_format, opts.debug)
        if opts.version:
            sys.stdout.write(f"pyrunc version {__version__}\nspec: {SPEC_VERSION}\n")
            return 0
        if opts.command is None:
            global_parser().print_help()
            return 0
        if opts.systemd_cgroup:
            raise PyruncError("--systemd-cgroup is not supported: this host has no systemd")
        module = __import__(f"pyrunc.commands.{opts.command}", fromlist=["run"])
        parser = command_parser(opts.command)
        module.add_arguments(parser)
        args = parser.parse_args(opts.args)
        from pyrunc.state import DEFAULT_ROOT

        args.root = opts.root or DEFAULT_ROOT
        return int(module.run(args) or 0)
    except PyruncError as e:
        logger.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        logger.error(f"{e.filename + ': ' if e.filename else ''}{(e.strerror or str(e)).lower()}")
        return 1
