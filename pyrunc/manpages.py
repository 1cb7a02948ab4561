"""Man pages for `pyrunc` and each command, made from the parsers the CLI builds from its
declarations (pyrunc.flags).

setup.py writes them at build time (`pyrunc(8)`, `pyrunc-create(8)`, ...; runc and crun ship
section 8 pages too) and installs them under share/man/man8; `python -m pyrunc.manpages DIR`
writes them anywhere. Generated, so a flag cannot be documented differently from how it is
parsed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from pyrunc import __version__

SECTION = "8"


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(default)" in text:
        text = text % {"default": action.default}
    return text


def _option_synopsis(action: argparse.Action) -> str:
    flags = ", ".join(f"\\fB{_roff(s)}\\fR" for s in action.option_strings)
    if action.nargs == 0:
        return flags
    metavar = action.metavar or (action.dest.upper() if not action.choices else None)
    if metavar is None:
        metavar = "{" + ",".join(map(str, action.choices or ())) + "}"
    return f"{flags} \\fI{_roff(str(metavar))}\\fR"


def render(parser: argparse.ArgumentParser, name: str, summary: str,
           extra: str = "") -> str:  # fmt: skip
    """One man page (roff) for `parser`, whose program is `name`."""
    date = datetime.date.fromtimestamp(
        int(os.environ.get("SOURCE_DATE_EPOCH", "0")) or datetime.datetime.now().timestamp()
    ).isoformat()
    title = name.replace(" ", "-")
    usage = " ".join(parser.format_usage().split())[len("usage: " + name) :].strip()
    out = [
        f'.TH {title.upper()} {SECTION} "{date}" "pyrunc {__version__}" "pyrunc manual"',
        ".SH NAME",
        f"{_roff(title)} \\- {_roff(summary)}",
        ".SH SYNOPSIS",
        f"\\fB{_roff(name)}\\fR " + _roff(usage),
    ]
    if parser.description:
        out += [".SH DESCRIPTION", _roff(parser.description)]
    positionals = [a for a in parser._actions if not a.option_strings and a.help != "==SUPPRESS=="]
    options = [a for a in parser._actions if a.option_strings and a.help != "==SUPPRESS=="]
    if positionals:
        out.append(".SH ARGUMENTS")
        for action in positionals:
            out += [".TP", f"\\fI{_roff(str(action.metavar or action.dest))}\\fR",
                    _roff(_help(action)) or "."]  # fmt: skip
    if options:
        out.append(".SH OPTIONS")
        for action in options:
            out += [".TP", _option_synopsis(action), _roff(_help(action)) or "."]
    if extra:
        out.append(extra)
    out += [".SH SEE ALSO", "\\fBpyrunc\\fR(8), \\fBrunc\\fR(8)"]
    return "\n".join(out) + "\n"


def pages() -> dict[str, str]:
    """File name -> man page, for pyrunc and each of its commands."""
    from pyrunc import cli

    commands = ".SH COMMANDS\n" + "\n".join(
        f".TP\n\\fB{k}\\fR\n{_roff(v)} (see \\fBpyrunc\\-{k}\\fR(8))"
        for k, v in cli.COMMANDS.items()
    )
    top = cli.global_parser()
    result = {f"pyrunc.{SECTION}": render(top, "pyrunc", top.description or "", commands)}
    for name, summary in cli.COMMANDS.items():
        parser = cli.command_parser(name)
        result[f"pyrunc-{name}.{SECTION}"] = render(parser, f"pyrunc {name}", summary)
    return result


def write(directory: str) -> list[str]:
    """Write every page into `directory`; their paths."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for filename, text in pages().items():
        path = os.path.join(directory, filename)
        with open(path, "w") as f:
            f.write(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(sys.argv[1] if len(sys.argv) > 1 else "."):
        print(path)
