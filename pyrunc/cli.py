"""The command line, runc-compatible: global flags, then one command and its own flags.

Only the invoked command's module is imported (each lives in ``pyrunc/commands/``), so `state`
costs a JSON read, not the spec model; the hot commands' usual spellings are parsed without
argparse at all (`quick_parse`).
"""

from __future__ import annotations

import os
import sys

from pyrunc import SPEC_VERSION, __version__, flags
from pyrunc.errors import PyruncError
from pyrunc.flags import Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is imported only once a parser is needed
    import argparse
    from typing import Any

    from pyrunc import log

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
    "network": "create, list, inspect and remove bridge networks (pyrunc's own)",
    "overlay": "show or remove the read-only interpreter overlays that create, run and exec "
    "mount (S1)",
}
# `help [COMMAND]` (runc's) is the CLI's own, no module
HELP = "shows a list of commands or help for one command"


def _parser_class() -> type:
    """argparse, but usage errors are one line and exit 1, like every other pyrunc error.

    Made on first use: the usual command lines never build a parser (`quick_parse`), and
    create/run/exec decide whether they must re-execute (pyrunc.sealed) before any parsing.
    """
    import argparse

    class ArgumentParser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise PyruncError(f"{self.prog}: {message}")

    return ArgumentParser


# The global flags (each command declares its own: ARGUMENTS in pyrunc/commands/NAME.py)
GLOBAL = Command(
    Flag("--root", value=True, help="root directory for storage of container state"),
    Flag("--log", value=True, help="set the log file to write pyrunc logs to"),
    Flag("--log-format", default="text", choices=("text", "json")),
    Flag("--debug", help="enable debug logging"),
    Flag("--systemd-cgroup", help="use systemd to manage cgroups"),
    Flag("--rootless", value=True, default="auto",
         help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
    Flag("--criu", value=True, default="criu", hidden=True),
    Flag("-v", "--version", help="print the version"),
)


def global_parser() -> argparse.ArgumentParser:
    import argparse

    p = _parser_class()(
        prog="pyrunc",
        description="pyrunc: an OCI container runtime in Python",
        epilog="commands:\n"
        + "\n".join(f"  {k:<10} {v}" for k, v in {**COMMANDS, "help": HELP}.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    flags.add_to(p, GLOBAL)
    p.add_argument("command", nargs="?", choices=(*COMMANDS, "help"), metavar="COMMAND")
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def arguments(name: str) -> Command:
    """The declaration of command `name`'s flags and positionals (imports its module)."""
    declared: Command = __import__(f"pyrunc.commands.{name}", fromlist=["ARGUMENTS"]).ARGUMENTS
    return declared


def command_parser(name: str) -> argparse.ArgumentParser:
    """The argparse parser of command `name`, built from its declaration."""
    p = _parser_class()(prog=f"pyrunc {name}", description=COMMANDS[name])
    flags.add_to(p, arguments(name))
    return p


# the commands that put processes into a container: they run from a protected interpreter (S1,
# pyrunc.sealed), which the hot commands need not even import
SEALED_COMMANDS = frozenset(("create", "run", "exec"))


def command_of(argv: list[str]) -> str | None:
    """The command word, found without argparse (used to re-exec before any heavy import)."""
    valued = flags.quick_tables(GLOBAL).valued  # global flags that take a value
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in valued:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


class Namespace:
    """argparse.Namespace's shape (plain attributes), for the quick parser: no argparse import."""

    def __init__(self, **kwargs: object) -> None:
        self.__dict__.update(kwargs)

    if TYPE_CHECKING:  # what argparse.Namespace declares: any attribute, of any type

        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


def _take_option(argv: list[str], i: int, tables: flags.Tables, out: dict[str, object]) -> int:
    """Store the option at argv[i] in `out`; the index after it, or -1 when not sure of it."""
    word = argv[i]
    if word in tables.booleans:
        out[tables.booleans[word]] = True
        return i + 1
    name, eq, value = word.partition("=")
    if eq:  # --flag=value; a short -f=v or a --bool=v is left to argparse
        if not name.startswith("--") or name not in tables.valued:
            return -1
        i += 1
    elif word in tables.valued and i + 1 < len(argv):
        name, value = word, argv[i + 1]
        i += 2
    else:
        return -1
    dest, choices, is_int, repeat = tables.valued[name]
    if value.startswith("-") or (choices is not None and value not in choices):
        return -1  # a value argparse might read as an option, or an error to report
    converted: object = value
    if is_int:
        if not (value.isascii() and value.isdigit()):
            return -1  # int() takes " 1", "1_0", "+1", ...: argparse's business
        converted = int(value)
    if repeat:
        previous = out[dest]
        out[dest] = [*previous, converted] if isinstance(previous, list) else [converted]
    else:
        out[dest] = converted
    return i


def quick_parse(argv: list[str]) -> tuple[Namespace, Namespace] | None:
    """(global options, command arguments) as global_parser() and the command's parser would
    give them, for the common spellings of the hot commands (declared `quick`) only; None for
    anything else.

    Building argparse parsers costs milliseconds (argparse imports re, enum, gettext), most of
    what `state` would spend; when this returns None, dispatch uses argparse, so help, errors and
    every unusual spelling (abbreviations, -fjson, combined short flags, --, ...) behave exactly
    as before. Both parsers are built from the same declarations (pyrunc.flags).
    """
    tables = flags.quick_tables(GLOBAL)
    opts = dict(tables.defaults)
    i, n = 0, len(argv)
    while i < n and argv[i].startswith("-"):
        i = _take_option(argv, i, tables, opts)
        if i < 0:
            return None
    if opts["version"]:  # `pyrunc --version` (podman info asks): nothing else may follow
        return (Namespace(**opts, command=None, args=[]), Namespace()) if i >= n else None
    if i >= n or argv[i] not in COMMANDS:
        return None
    command, rest = argv[i], argv[i + 1 :]
    declared = arguments(command)
    if not declared.quick:
        return None
    tables = flags.quick_tables(declared)
    args = {k: list(v) if isinstance(v, list) else v for k, v in tables.defaults.items()}
    names, remainder = tables.names, tables.rest
    positionals: list[str] = []
    ended = False  # argparse fills positionals from one run of words: a second run is an error
    j = 0
    while j < len(rest):
        if rest[j].startswith("-"):
            j = _take_option(rest, j, tables, args)
            if j < 0:
                return None
            ended = bool(positionals)
        elif ended:
            return None
        else:
            positionals.append(rest[j])
            j += 1
            if remainder is not None and len(positionals) == len(names):
                if "--" in rest[j:]:
                    return None  # argparse's handling of "--" varies between versions
                args[remainder] = rest[j:]
                break
    if not tables.required <= len(positionals) <= len(names):
        return None
    args.update(zip(names, positionals, strict=False))
    opts.update(command=command, args=rest)
    return Namespace(**opts), Namespace(**args)


def fill_stdio() -> None:
    """A caller may start us with fd 0, 1 or 2 closed. Each closed one becomes /dev/null, as
    runc does: otherwise the next file we open takes its number and the container gets it as
    its stdin, stdout or stderr (the runtime's log or lock as the container's fd 1). Python
    leaves sys.stdout (...) None for a closed fd: they get objects over /dev/null too, so that
    nothing the caller closed changes our exit status."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open("/dev/null", os.O_RDWR)  # the lowest free number: `fd` itself
            if null != fd:  # cannot happen when 0..fd-1 are open; never leave a stray fd
                os.dup2(null, fd)
                os.close(null)
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False, errors="backslashreplace"))


def run() -> None:
    """The program's entry point: `main`, then a plain exit. Interpreter teardown is skipped
    (it costs milliseconds on every command and nothing needs it: logs are written with
    os.write, stdio is flushed here). A caller who closed our stdout or stderr (or whose pipe
    went away) gets nothing from us there, and our exit status is still the command's."""
    fill_stdio()
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """The CLI, callable in-process; returns the exit status."""
    import gc

    gc.disable()  # a short-lived process: the collector only costs time here
    argv = sys.argv[1:] if argv is None else argv
    if command_of(argv) in SEALED_COMMANDS:
        from pyrunc import sealed

        try:
            if not sealed.running_sealed():
                if command_of(argv) == "run":
                    # the signals a foreground run forwards stay pending across the re-exec,
                    # until its forwarding is in place (pyrunc.lifecycle.foreground.Forwarder)
                    from pyrunc.lifecycle.foreground import block

                    block()
                sealed.reexec_sealed(argv)
        except Exception as e:  # noqa: BLE001 - reported as one line, like any other failure
            from pyrunc import log

            if isinstance(e, OSError):
                log.get_logger().error(
                    f"re-execute from a protected interpreter: {(e.strerror or str(e)).lower()}"
                )
                return 255 if command_of(argv) == "exec" else 1
            return internal_error(log.get_logger(), e, argv)
    return dispatch(argv)


def commit() -> str:
    """The git commit this pyrunc was built from, when it runs from a checkout (runc prints the
    one it was built from); else its version."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    git = os.path.join(here, ".git")
    try:
        if os.path.isfile(git):  # a worktree: "gitdir: PATH"
            with open(git) as f:
                git = f.read().split(":", 1)[1].strip()
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            ref = head[5:]
            for base in (git, _common_dir(git)):
                try:
                    with open(os.path.join(base, ref)) as f:
                        return f.read().strip()
                except OSError:
                    continue
            return ref
        return head
    except (OSError, IndexError):
        return f"v{__version__}"


def _common_dir(git: str) -> str:
    try:
        with open(os.path.join(git, "commondir")) as f:
            return os.path.join(git, f.read().strip())
    except OSError:
        return git


def check_rootless(value: str) -> None:
    """--rootless is true, false or auto (Go's ParseBool spellings, as runc)."""
    if value.lower() == "auto" or value == "":
        return
    if value not in ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false",
                     "False"):
        raise PyruncError(f"invalid --rootless value {value!r}: expected true, false or auto")


def print_help(words: list[str]) -> int:
    """`pyrunc help` (the global help) or `pyrunc help COMMAND` (that command's)."""
    if not words or words[0] == "help":
        global_parser().print_help()
        return 0
    name = words[0]
    if name not in COMMANDS:
        raise PyruncError(f"No help topic for '{name}'")
    command_parser(name).print_help()
    return 0


def _debug_overlay(logger: log.Logger) -> None:
    """--debug says where create/run/exec run from (S1), and when they mounted the overlay."""
    from pyrunc import sealed

    mounted = os.environ.pop(sealed.MOUNTED_ENV, None)
    if mounted:
        logger.debug(f"mounted a read-only overlay of the interpreter's directory {mounted}; it "
                     "stays until reboot (pyrunc overlay show|remove)")  # fmt: skip
    logger.debug(f"running from the protected interpreter {os.readlink('/proc/self/exe')}")


def dispatch(argv: list[str]) -> int:
    from pyrunc import log

    logger = log.get_logger()
    try:
        quick = quick_parse(argv)
        opts = global_parser().parse_args(argv) if quick is None else quick[0]
        logger = log.configure(opts.log, opts.log_format, opts.debug)
        if opts.debug and opts.command in SEALED_COMMANDS:
            _debug_overlay(logger)
        if opts.version:
            sys.stdout.write(
                f"pyrunc version {__version__}\ncommit: {commit()}\nspec: {SPEC_VERSION}\n"
            )
            return 0
        if opts.command is None:
            global_parser().print_help()
            return 0
        if opts.command == "help":  # runc's `help [COMMAND]`
            return print_help(opts.args)
        if opts.command in ("create", "run"):
            check_rootless(opts.rootless)
        if opts.systemd_cgroup:
            raise PyruncError("--systemd-cgroup is not supported: this host has no systemd")
        module = __import__(f"pyrunc.commands.{opts.command}", fromlist=["run"])
        args: argparse.Namespace | Namespace = (
            command_parser(opts.command).parse_args(opts.args) if quick is None else quick[1]
        )
        from pyrunc.rootless import default_root

        args.root = opts.root or default_root()
        args.rootless_cgroups = opts.rootless  # the global --rootless (spec has its own)
        return int(module.run(args) or 0)
    except PyruncError as e:
        logger.error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        logger.error(f"{e.filename + ': ' if e.filename else ''}{(e.strerror or str(e)).lower()}")
        return 1
    except Exception as e:  # noqa: BLE001 - the last resort: never a traceback for a user
        return internal_error(logger, e, argv)


INTERNAL_ERROR = "pyrunc: internal error: "


def internal_error(logger: log.Logger, e: BaseException, argv: list[str]) -> int:
    """An exception no code path expected (a bug): one line in runc's log format on stderr
    and in --log (the traceback too with --debug), exit 1 (255 for exec, as runc's exec
    failures). The test suite fails any test whose command printed this."""
    detail = str(e).replace("\n", " ")
    try:
        if getattr(logger, "min_level", 2) == 0:
            import traceback

            logger.debug("".join(traceback.format_exception(e)))
        logger.error(f"{INTERNAL_ERROR}{type(e).__name__}: {detail}")
    except Exception:  # noqa: BLE001 - the logger itself failed: stderr as a last resort
        try:
            os.write(2, f"{INTERNAL_ERROR}{type(e).__name__}: {detail}\n".encode(
                errors="backslashreplace"))
        except OSError:
            pass
    return 255 if command_of(argv) == "exec" else 1
