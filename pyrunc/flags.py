"""The command line declared once: each command's flags and arguments as data, and the two
parsers built from that declaration.

Each module in ``pyrunc/commands/`` declares ``ARGUMENTS = Command(...)``; `cli` declares the
global flags. `add_to` turns a declaration into argparse arguments (help, usage errors, man pages,
every unusual spelling); `quick_tables` turns it into the lookup tables of `cli.quick_parse`,
which parses the hot commands' usual spellings without importing argparse (re, enum, gettext:
milliseconds on every `state`). This module imports nothing.

Semantics are argparse's as pyrunc has always used them (runc 1.1.5's flags, spellings and
defaults): `--flag value` and `--flag=value`, combined short flags (`-td`), unique prefixes of long
flags, flags before or after the positionals.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

# how many words a positional takes (argparse's nargs)
ONE = None
OPTIONAL = "?"
ONE_OR_MORE = "+"
REST = "..."  # argparse.REMAINDER: every word after it, verbatim (exec's COMMAND, ps's options)


class Flag:
    """One option: its spellings (`"-f", "--force"`), whether it takes a value (else it is a
    boolean, False unless given), whether it may repeat (each value appended), its default,
    the values it accepts, how a value converts (`int`, or any callable for the slow path only),
    help text (None: listed without one; `hidden`: not listed at all)."""

    __slots__ = ("names", "dest", "value", "repeat", "default", "choices", "type", "help",
                 "metavar", "hidden")  # fmt: skip

    def __init__(
        self,
        *names: str,
        value: bool = False,
        repeat: bool = False,
        default: object = None,
        choices: tuple[str, ...] | None = None,
        type: Callable[[str], object] | None = None,  # noqa: A002 - argparse's name
        dest: str | None = None,
        help: str | None = None,  # noqa: A002 - argparse's name
        metavar: str | None = None,
        hidden: bool = False,
    ) -> None:
        self.names = names
        # argparse's rule: the first long spelling, dashes as underscores
        long = [n for n in names if n.startswith("--")]
        self.dest = dest or (long[0] if long else names[0]).lstrip("-").replace("-", "_")
        self.value = value or repeat or choices is not None or type is not None
        self.repeat = repeat
        if not self.value:
            default = False
        elif repeat and default is None:
            default = []
        self.default = default
        self.choices = choices
        self.type = type
        self.help = help
        self.metavar = metavar
        self.hidden = hidden


class Arg:
    """One positional: its name, how many words it takes (ONE, OPTIONAL, ONE_OR_MORE, REST),
    the default of an OPTIONAL one, the values it accepts, help text."""

    __slots__ = ("dest", "nargs", "default", "choices", "help", "metavar")

    def __init__(
        self,
        dest: str,
        nargs: str | None = ONE,
        *,
        default: object = None,
        choices: tuple[str, ...] | None = None,
        help: str | None = None,  # noqa: A002 - argparse's name
        metavar: str | None = None,
    ) -> None:
        self.dest = dest
        self.nargs = nargs
        self.default = [] if nargs == REST else default
        self.choices = choices
        self.help = help
        self.metavar = metavar


class Command:
    """A command's flags (in help order) and positionals; or, for a command with actions
    (`network create|ls|...`), its actions: (name, aliases, help, Command) under `action_dest`.
    `quick`: cli.quick_parse may parse it (the hot commands)."""

    __slots__ = ("flags", "args", "actions", "action_dest", "quick", "_tables")

    def __init__(
        self,
        *flags: Flag,
        args: tuple[Arg, ...] = (),
        actions: tuple[tuple[str, tuple[str, ...], str, Command], ...] = (),
        action_dest: str = "action",
        quick: bool = False,
    ) -> None:
        self.flags = flags
        self.args = args
        self.actions = actions
        self.action_dest = action_dest
        self.quick = quick
        self._tables: Tables | None = None

    def extended(self, *flags: Flag, quick: bool | None = None) -> Command:
        """This command with more flags after its own (run: create's flags, then run's)."""
        return Command(*self.flags, *flags, args=self.args, actions=self.actions,
                       action_dest=self.action_dest,
                       quick=self.quick if quick is None else quick)  # fmt: skip


# --- argparse -------------------------------------------------------------------------------


def add_to(parser: argparse.ArgumentParser, command: Command) -> None:
    """Declare `command`'s flags and positionals (or actions) on an argparse parser."""
    import argparse

    for f in command.flags:
        helptext = argparse.SUPPRESS if f.hidden else f.help
        if not f.value:
            parser.add_argument(*f.names, dest=f.dest, action="store_true", help=helptext)
            continue
        kwargs: dict[str, object] = {"dest": f.dest, "default": f.default, "help": helptext}
        if f.repeat:
            kwargs["action"] = "append"
        if f.type is not None:
            kwargs["type"] = f.type
        if f.choices is not None:
            kwargs["choices"] = f.choices
        if f.metavar is not None:
            kwargs["metavar"] = f.metavar
        parser.add_argument(*f.names, **kwargs)  # type: ignore[arg-type]
    for a in command.args:
        kwargs = {"help": a.help}
        if a.nargs is not ONE:
            kwargs["nargs"] = a.nargs
        if a.nargs == OPTIONAL:
            kwargs["default"] = a.default
        if a.choices is not None:
            kwargs["choices"] = a.choices
        if a.metavar is not None:
            kwargs["metavar"] = a.metavar
        parser.add_argument(a.dest, **kwargs)  # type: ignore[arg-type]
    if command.actions:
        sub = parser.add_subparsers(dest=command.action_dest, metavar=command.action_dest.upper(),
                                    required=True)  # fmt: skip
        for name, aliases, helptext, action in command.actions:
            add_to(sub.add_parser(name, aliases=list(aliases), help=helptext), action)


# --- the quick parser's tables ----------------------------------------------------------------


class Tables:
    """What cli.quick_parse looks up: booleans (spelling -> dest), flags with a value (spelling
    -> (dest, choices or None, int-typed, repeatable)), every default, the positionals' names,
    how many of them are required, and the REST positional's name (or None)."""

    __slots__ = ("booleans", "valued", "defaults", "names", "required", "rest")

    def __init__(self, command: Command) -> None:
        self.booleans: dict[str, str] = {}
        self.valued: dict[str, tuple[str, tuple[str, ...] | None, bool, bool]] = {}
        self.defaults: dict[str, object] = {}
        for f in command.flags:
            self.defaults[f.dest] = f.default
            if not f.value:
                for name in f.names:
                    self.booleans[name] = f.dest
            elif f.type in (None, int):
                entry = (f.dest, f.choices, f.type is int, f.repeat)
                for name in f.names:
                    self.valued[name] = entry
            # a flag with any other conversion is left to argparse (quick_parse declines it)
        names: list[str] = []
        self.required = 0
        self.rest: str | None = None
        for a in command.args:
            if a.nargs == REST:
                self.rest = a.dest
                self.defaults[a.dest] = []
                continue
            if a.nargs not in (ONE, OPTIONAL) or a.choices is not None:
                raise ValueError(f"quick_parse cannot parse the positional {a.dest}")
            names.append(a.dest)
            if a.nargs == ONE:
                self.required += 1
            else:
                self.defaults[a.dest] = a.default
        self.names = tuple(names)


def quick_tables(command: Command) -> Tables:
    """The quick parser's tables of `command` (made once)."""
    if command._tables is None:
        command._tables = Tables(command)
    return command._tables


# the positional almost every command takes
ID = Arg("id", metavar="ID")
