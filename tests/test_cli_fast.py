"""The hot commands' fast path: `quick_parse` instead of argparse, `jsonlite` instead of json.

The quick parser must agree with the argparse parsers wherever it answers (it may always decline
with None); jsonlite must agree with json byte for byte, errors included; and a real `state` must
import none of argparse, re, enum, gettext, json.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Bundle, Pyrunc

from pyrunc import cli, flags, jsonlite
from pyrunc.errors import PyruncError
from pyrunc.state import StateStore

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # hypothesis is in the test extras; the table tests run without it
    given = None


# --- quick_parse against argparse ------------------------------------------------------------


def argparse_result(argv: list[str]) -> tuple[dict, dict | None] | None:
    """What dispatch's argparse path makes of argv: (global options, command arguments), or None
    when it reports an error or prints help."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            opts = cli.global_parser().parse_args(argv)
            if opts.version or opts.command is None:
                return vars(opts), None
            args = cli.command_parser(opts.command).parse_args(opts.args)
    except (PyruncError, SystemExit):
        return None
    return vars(opts), vars(args)


def check_agrees(argv: list[str]) -> bool:
    """quick_parse declines or gives exactly argparse's result; True when it answered."""
    quick = cli.quick_parse(list(argv))
    if quick is None:
        return False
    expected = (vars(quick[0]), None if quick[0].version else vars(quick[1]))
    assert argparse_result(list(argv)) == expected, argv
    return True


# invocations the fast path must take (the spellings runc's clients use)
COMMON = [
    ["--version"],
    ["-v"],
    ["--root", "/r", "--version"],
    ["state", "c1"],
    ["--root", "/run/x", "state", "c1"],
    ["--root=/run/x", "state", "c1"],
    ["--root", "", "state", "c1"],
    ["--root", "/r", "--log", "/l.json", "--log-format", "json", "start", "c1"],
    ["--log=/l", "--log-format=text", "--debug", "pause", "c1"],
    ["--rootless", "false", "--criu", "/bin/criu", "resume", "c1"],
    ["--root", "/a", "--root", "/b", "state", "c1"],
    ["--debug", "--debug", "state", "c1"],
    ["kill", "c1"],
    ["kill", "c1", "KILL"],
    ["kill", "c1", "9"],
    ["kill", "-a", "c1"],
    ["kill", "--all", "c1", "SIGKILL"],
    ["kill", "c1", "TERM", "--all"],
    ["kill", "c1", "-a"],
    ["delete", "c1"],
    ["delete", "-f", "c1"],
    ["delete", "c1", "--force"],
    ["delete", "--force", "--force", "c1"],
    ["list"],
    ["list", "-q"],
    ["list", "--quiet"],
    ["list", "-f", "json"],
    ["list", "--format", "table"],
    ["list", "--format=json", "-q"],
    ["list", "-f", "json", "-f", "table"],
    ["state", ""],
    ["state", "a b"],
    ["state", "x=y"],
    ["--root", "state", "state", "c1"],
    # create, run, exec as conmon (podman) and the containerd shim send them
    ["--log-format=json", "--log", "/run/c/oci-log", "create", "--bundle", "/b", "--pid-file",
     "/run/c/pidfile", "c1"],
    ["--log-format=json", "--log", "/run/c/oci-log", "create", "--bundle", "/b", "--pid-file",
     "/run/c/pidfile", "--console-socket", "/run/c/sock", "--preserve-fds", "2", "c1"],
    ["--log-format=json", "--log", "/e/oci-log", "exec", "--pid-file", "/e/exec_pid", "--process",
     "/e/exec-process-123", "--detach", "c1"],
    ["--log-format=json", "--log", "/e/oci-log", "exec", "--pid-file", "/e/exec_pid", "--process",
     "/e/exec-process-123", "--detach", "--tty", "--console-socket", "/e/s", "--preserve-fds",
     "1", "c1"],
    ["--root", "/run/ctd/default", "--log", "/b/log.json", "--log-format", "json", "create",
     "--bundle", "/b", "--pid-file", "/b/init.pid", "c1"],
    ["--root", "/run/ctd/default", "--log", "/b/log.json", "--log-format", "json", "create",
     "--bundle", "/b", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/s.sock", "c1"],
    ["--root", "/run/ctd/default", "--log", "/b/log.json", "--log-format", "json", "exec",
     "--process", "/tmp/p.json", "--console-socket", "/tmp/s", "--detach", "--pid-file",
     "/b/e.pid", "c1"],
    ["create", "c1"],
    ["create", "-b", "/b", "--no-pivot", "--no-new-keyring", "c1"],
    ["create", "c1", "--bundle=/b", "--pid-file=/p", "--preserve-fds=0"],
    ["create", "--preserve-fds", "007", "c1"],
    ["run", "c1"],
    ["run", "-d", "--keep", "--bundle", "/b", "c1"],
    ["run", "--detach", "c1", "--preserve-fds", "3", "--no-pivot"],
    ["exec", "-p", "/p.json", "c1"],
    ["exec", "c1", "ls"],
    ["exec", "c1", "ls", "-la", "/"],
    ["exec", "-t", "-u", "1000:1000", "--cwd", "/tmp", "c1", "sh", "-c", "echo hi"],
    ["exec", "c1", "-d", "x"],
    ["exec", "c1", "--process", "/p", "--detach"],
    ["exec", "--no-new-privs", "--ignore-paused", "--apparmor", "a", "--process-label", "l", "c1",
     "true"],
    ["exec", "c1", "sh", "-e", "x", "-h", "--help", ""],
]  # fmt: skip

# invocations it must decline (or agree on); most are errors, help or unusual spellings
TRICKY = [
    [],
    ["--root", "/r"],
    ["-v"],
    ["--version", "state", "c1"],
    ["-h"],
    ["state", "-h"],
    ["state", "--help"],
    ["state"],
    ["state", "a", "b"],
    ["state", "--", "c1"],
    ["--", "state", "c1"],
    ["state", "-"],
    ["state", "-c1"],
    ["--ro", "/r", "state", "c1"],
    ["--root"],
    ["--root", "--debug", "state", "c1"],
    ["--root", "-x", "state", "c1"],
    ["--root=-x", "state", "c1"],
    ["--debug=1", "state", "c1"],
    ["--debug=", "state", "c1"],
    ["--log-format", "xml", "state", "c1"],
    ["--log-format=", "state", "c1"],
    ["--systemd-cgroup", "state", "c1"],
    ["--root=", "state", "c1"],
    ["state", "--root", "/r", "c1"],
    ["state", "c1", "--debug"],
    ["create"],
    ["create", "c1", "c2"],
    ["create", "--bundle", "c1"],
    ["create", "--bundle", "-x", "c1"],
    ["create", "-b/b", "c1"],
    ["create", "--bund", "/b", "c1"],
    ["create", "--no-pivot=1", "c1"],
    ["create", "--preserve-fds", "x", "c1"],
    ["create", "--preserve-fds", "-1", "c1"],
    ["create", "--preserve-fds", " 1", "c1"],
    ["create", "--preserve-fds", "+1", "c1"],
    ["create", "--preserve-fds", "1_0", "c1"],
    ["create", "--preserve-fds", "\u0661", "c1"],
    ["create", "--preserve-fds", "", "c1"],
    ["create", "--preserve-fds=", "c1"],
    ["create", "c1", "--", "c2"],
    ["create", "-d", "c1"],
    ["create", "--keep", "c1"],
    ["run", "-dk", "c1"],
    ["run", "c1", "c2"],
    ["run", "-h"],
    ["exec"],
    ["exec", "-p"],
    ["exec", "-p", "f"],
    ["exec", "c1", "--", "ls"],
    ["exec", "--", "c1", "ls"],
    ["exec", "c1", "ls", "--"],
    ["exec", "-e", "A=1", "c1", "ls"],
    ["exec", "--env", "A=1", "c1", "ls"],
    ["exec", "-g", "10", "c1", "ls"],
    ["exec", "-c", "CAP_KILL", "c1", "ls"],
    ["exec", "--cap=CAP_KILL", "c1", "ls"],
    ["exec", "--cgroup", "x", "c1", "ls"],
    ["exec", "-td", "c1", "ls"],
    ["exec", "-uroot", "c1", "ls"],
    ["exec", "--preserve-fds", "x", "c1"],
    ["exec", "-h"],
    ["exec", "c1", "-h"],
    ["exec", "-d", "c1", "-d"],
    ["exec", "--keep", "c1"],
    ["ps", "c1"],
    ["events", "c1"],
    ["spec"],
    ["bogus", "c1"],
    ["State", "c1"],
    ["kill"],
    ["kill", "c1", "KILL", "extra"],
    ["kill", "c1", "-9"],
    ["kill", "c1", "-a", "KILL"],
    ["kill", "-a", "c1", "-a", "KILL"],
    ["kill", "-aa", "c1"],
    ["kill", "--all=1", "c1"],
    ["kill", "--al", "c1"],
    ["kill", "-f", "c1"],
    ["delete"],
    ["delete", "-fq", "c1"],
    ["delete", "-f"],
    ["delete", "--forc", "c1"],
    ["delete", "-f", "c1", "c2"],
    ["list", "c1"],
    ["list", "-f"],
    ["list", "-f", "yaml"],
    ["list", "-fjson"],
    ["list", "-f=json"],
    ["list", "--format="],
    ["list", "--format", "-q"],
    ["list", "-qf", "json"],
    ["list", "--quiet=yes"],
    ["list", "--form", "json"],
    ["list", "-q", "--", "x"],
    ["pause", "c1", "-f"],
    ["resume"],
    ["start", "c1", "c1"],
]


@pytest.mark.parametrize("argv", COMMON, ids=" ".join)
def test_quick_parse_takes_and_agrees_on_common_invocations(argv: list[str]) -> None:
    assert check_agrees(argv), f"the fast path declined {argv}"


@pytest.mark.parametrize("argv", TRICKY, ids=lambda a: " ".join(a) or "(none)")
def test_quick_parse_declines_or_agrees_on_tricky_invocations(argv: list[str]) -> None:
    check_agrees(argv)


def test_quick_parse_declines_every_error_and_help() -> None:
    for argv in TRICKY:
        result = argparse_result(argv)
        if result is None or (result[1] is None and not result[0]["version"]):
            assert cli.quick_parse(argv) is None, argv
        elif result[1] is None:  # --version: declined, or exactly argparse's
            check_agrees(argv)


WORDS = [
    "state", "kill", "delete", "list", "start", "pause", "resume", "create", "ps",
    "c1", "c2", "", "KILL", "9", "-9", "json", "table", "yaml", "/r",
    "--root", "--root=/x", "--root=", "--log", "--log=/l", "--log-format", "--log-format=json",
    "--debug", "--debug=1", "--systemd-cgroup", "--rootless", "--criu", "--ro",
    "-a", "--all", "-f", "--force", "--format", "--format=json", "-q", "--quiet", "-fjson",
    "-h", "--help", "-v", "--", "-", "-aq",
]  # fmt: skip
# a flag's values (the first ones valid for any flag), positionals, and noise
VALUES = ["x", "", "007", "A=1", "c1", "1", "-1", "-x", "\u0661"]
POSITIONALS = ["c1", "c2", "ls", "KILL", "-9", "-la"]
NOISE = [["--"], ["-"], ["-h"], ["-td"], ["-aq"], ["--bogus"], ["-v"], ["--root"]]


def spellings(declared: flags.Command) -> tuple[list[list[str]], list[list[str]]]:
    """The ways of writing each declared flag (alone, with a value, as --flag=value), and near
    misses (a bad value, a value on a boolean, a prefix of the name)."""
    good, bad = [], []
    for f in declared.flags:
        for name in f.names:
            bad.append([name[:-1]] if len(name) > 3 else [name + "x"])
            if not f.value:
                good.append([name])
                bad.append([name + "=1"])
                continue
            values = [*(f.choices or ()), *VALUES]
            for i, value in enumerate(values):
                valid = (f.choices is None or value in f.choices) and (
                    value.isdigit() if f.type is int else i < len(values) - 3)
                for words in ([name, value], [f"{name}={value}"] if name[1] == "-" else []):
                    (good if valid else bad).append(words)
    return good, bad


FUZZ_EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "500"))

if given is not None:

    @st.composite
    def invocations(draw: Any) -> list[str]:
        """Valid global flags, a hot command, a few of its flags (each possibly more than once)
        and about the right number of positionals in any order; sometimes one near miss or
        noise word somewhere."""
        command = draw(st.sampled_from(HOT))
        declared = cli.arguments(command)
        good, bad = spellings(declared)
        global_good, global_bad = spellings(cli.GLOBAL)
        pool = draw(st.lists(st.sampled_from(good), max_size=3)) if good else []
        used = draw(st.lists(st.sampled_from(pool), max_size=5)) if pool else []
        tables = flags.quick_tables(declared)
        count = draw(st.sampled_from([tables.required, tables.required, len(tables.names),
                                      len(tables.names) + 1 + bool(tables.rest),
                                      max(tables.required - 1, 0)]))  # fmt: skip
        words = draw(st.lists(st.sampled_from(POSITIONALS), min_size=count, max_size=count))
        body = draw(st.permutations([*used, *([w] for w in words)]))
        before = draw(st.lists(st.sampled_from(global_good), max_size=3))
        argv = [*sum(before, []), command, *sum(body, [])]
        noise = draw(st.one_of(st.none(), st.sampled_from(NOISE + bad + global_bad)))
        if noise is not None:
            argv[draw(st.integers(0, len(argv))):0] = noise
        return argv

    # The two parsers share their declarations (test_quick_tables_match_the_argparse_parser):
    # these check quick_parse's reading of a command line against argparse's, in a few seconds.
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None)
    @given(invocations())
    def test_quick_parse_agrees_on_generated_invocations(argv: list[str]) -> None:
        check_agrees(argv)

    @settings(max_examples=FUZZ_EXAMPLES // 2, deadline=None)
    @given(st.lists(st.sampled_from(WORDS), max_size=7))
    def test_quick_parse_agrees_on_generated_word_salad(argv: list[str]) -> None:
        check_agrees(argv)


HOT = ["create", "delete", "exec", "kill", "list", "pause", "resume", "run", "start", "state"]


def test_the_hot_commands_are_the_quick_ones() -> None:
    assert [name for name in sorted(cli.COMMANDS) if cli.arguments(name).quick] == HOT


def _parser_actions(parser: Any) -> list[Any]:
    import argparse

    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("command", [None, *HOT])
def test_quick_tables_match_the_argparse_parser(command: str | None) -> None:
    """Both parsers come from one declaration (pyrunc.flags): the quick parser's tables hold
    every option of the argparse parser built from it, as argparse stores it, and no other."""
    import argparse

    if command is None:  # the global flags; `command` and `args` are quick_parse's own
        parser = cli.global_parser()
        tables = flags.quick_tables(cli.GLOBAL)
    else:
        parser = cli.command_parser(command)
        tables = flags.quick_tables(cli.arguments(command))
    seen_flags: dict[str, str] = {}
    seen_valued: dict[str, tuple[str, tuple[str, ...] | None, bool, bool]] = {}
    expected_defaults: dict[str, object] = {}
    positionals = []
    for action in _parser_actions(parser):
        if not action.option_strings:
            if command is None:
                continue
            positionals.append(action.dest)
            if action.nargs == argparse.REMAINDER:
                assert tables.rest == action.dest
                expected_defaults[action.dest] = []
            elif action.nargs == "?":
                expected_defaults[action.dest] = action.default
            else:
                assert action.nargs is None, action
            continue
        expected_defaults[action.dest] = action.default
        if isinstance(action, argparse._StoreTrueAction):
            seen_flags.update(dict.fromkeys(action.option_strings, action.dest))
            continue
        assert isinstance(action, (argparse._StoreAction, argparse._AppendAction)), action
        assert action.nargs is None and action.type in (None, int), action
        repeat = isinstance(action, argparse._AppendAction)
        if repeat:
            assert action.default == [], action
        choices = tuple(action.choices) if action.choices is not None else None
        entry = (action.dest, choices, action.type is int, repeat)
        seen_valued.update(dict.fromkeys(action.option_strings, entry))
    assert tables.booleans == seen_flags
    assert tables.valued == seen_valued
    assert tables.defaults == expected_defaults
    assert tables.names == tuple(p for p in positionals if p != tables.rest)
    assert tables.required == sum(
        1 for a in _parser_actions(parser) if not a.option_strings and a.nargs is None
    )


def test_every_declaration_builds_an_argparse_parser() -> None:
    """Every command's declaration (and each action's, for network) makes a parser whose
    options are the declared spellings, in the declared order."""
    for name in cli.COMMANDS:
        declared = cli.arguments(name)
        parser = cli.command_parser(name)
        spellings = [a.option_strings for a in _parser_actions(parser) if a.option_strings]
        assert spellings == [list(f.names) for f in declared.flags], name
    assert [a.option_strings for a in _parser_actions(cli.global_parser()) if a.option_strings] \
        == [list(f.names) for f in cli.GLOBAL.flags]


def test_dispatch_takes_the_quick_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same outcome with and without quick_parse (here: an unknown container)."""
    argv = ["--root", str(tmp_path), "state", "nope"]
    assert cli.dispatch(argv) == 1
    quick_err = capsys.readouterr().err
    monkeypatch.setattr(cli, "quick_parse", lambda argv: None)
    assert cli.dispatch(argv) == 1
    slow_err = capsys.readouterr().err
    assert "container does not exist" in quick_err
    assert quick_err.split(" level=")[1] == slow_err.split(" level=")[1]


# --- jsonlite against json ---------------------------------------------------------------------

STATE_DOCS: list[Any] = [
    {
        "ociVersion": "1.3.0",
        "id": "c-1",
        "pid": 4242,
        "bundle": "/tmp/bundle dir/é",
        "rootfs": "/tmp/bundle/rootfs",
        "created": "2026-01-01T00:00:00.123456789Z",
        "owner": "",
        "annotations": {"org.example/key": "välue ☃ \U0001f600", "empty": ""},
        "pyrunc": {
            "init_start_time": "123456",
            "freezer_state": "/sys/fs/cgroup/c-1/cgroup.freeze",
            "hooks": {"poststop": [{"path": "/bin/sh", "args": ["sh", "-c", 'echo "x"\n\t']}]},
            "namespaces": [],
            "cgroup": {"dir": "/sys/fs/cgroup/pyrunc/c-1", "v2": True, "owned": False},
            "nothing": None,
            "empty": {},
            "numbers": [0, -1, 1 << 70, 1.5, -2.25e-10, 1e300],
            "control": "\x00\x1f\x7f\u2028\\/",
        },
    },
    [],
    {},
    "just a string",
    0,
    None,
    True,
    [[[]], {"a": [{}]}],
    ("a", ("b",)),
]


@pytest.mark.parametrize("doc", STATE_DOCS)
def test_jsonlite_matches_json(doc: Any) -> None:
    for kwargs in ({}, {"indent": 2}, {"indent": "\t"}, {"indent": 0}, {"separators": (",", ":")},
                   {"indent": 4, "separators": (", ", " = ")}):  # fmt: skip
        # (the last is not JSON: both loads must fail alike)
        text = jsonlite.dumps(doc, **kwargs)
        assert text == json.dumps(doc, **kwargs), kwargs
        assert outcome(jsonlite.loads, text) == outcome(json.loads, text)
        assert outcome(jsonlite.loads, text.encode()) == outcome(json.loads, text.encode())
    assert jsonlite.loads(" \n\t" + json.dumps(doc) + "\r\n ") == json.loads(json.dumps(doc))


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as e:
        return type(e).__name__, str(e)


CORRUPT = [
    b"", b" ", b"{", b'{"pid": }', b'{"a" 1}', b"[1,]", b'{"a": 1} x', b"nul", b'"abc',
    b'"\x01"', b'"\\x"', b"\xff\xfe", b"\xff{}", b"\xef\xbb\xbf{}", "\ufeff{}",
    "{}".encode("utf-16"), '{"a": "é"}'.encode("utf-16-le"), b"NaN", b"-Infinity", b"1e999",
    b"\x00", b"01", b"[" * 5000,
    bytearray(b'{"a": [1]}'),
]  # fmt: skip


@pytest.mark.parametrize("doc", CORRUPT)
def test_jsonlite_loads_errors_are_json_s(doc: Any) -> None:
    expected = outcome(json.loads, doc)
    got = outcome(jsonlite.loads, doc)
    if expected[0] == "ok" and isinstance(expected[1], float) and math.isnan(expected[1]):
        assert got[0] == "ok" and math.isnan(got[1])
    else:
        assert got == expected


def test_jsonlite_dumps_unsupported_is_json_s() -> None:
    circular: list = []
    circular.append(circular)
    for obj in ({1, 2}, {"a": object()}, circular, {(1,): 2}, {1: "a", None: 2, 1.5: True},
                [float("nan"), float("inf")], b"bytes", [1] * 3):  # fmt: skip
        for kwargs in ({}, {"indent": 2}, {"separators": (",", ":")}):
            assert outcome(jsonlite.dumps, obj, **kwargs) == outcome(json.dumps, obj, **kwargs)


def test_corrupt_state_file_error(tmp_path: Path) -> None:
    (tmp_path / "c1").mkdir()
    (tmp_path / "c1" / "state.json").write_bytes(b'{"pid": ')
    with pytest.raises(PyruncError) as err:
        StateStore(str(tmp_path)).load("c1")
    try:
        json.loads(b'{"pid": ')
    except ValueError as e:
        state_file = tmp_path / "c1" / "state.json"
        assert str(err.value) == f"state of container c1 is corrupt: {state_file}: {e}"


if given is not None:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
        ),
        max_leaves=20,
    )

    @settings(max_examples=500, deadline=None)
    @given(json_values, st.sampled_from([None, 0, 2, "\t"]), st.sampled_from([None, (",", ":")]))
    def test_jsonlite_matches_json_generated(value: Any, indent: Any, separators: Any) -> None:
        text = json.dumps(value, indent=indent, separators=separators)
        assert jsonlite.dumps(value, indent=indent, separators=separators) == text
        # compare as text: NaN != NaN
        assert json.dumps(jsonlite.loads(text)) == json.dumps(json.loads(text))
        assert json.dumps(jsonlite.loads(text.encode())) == json.dumps(json.loads(text))

    @settings(max_examples=500, deadline=None)
    @given(st.text(max_size=30) | st.binary(max_size=30))
    def test_jsonlite_loads_arbitrary_input(doc: str | bytes) -> None:
        assert repr(outcome(jsonlite.loads, doc)) == repr(outcome(json.loads, doc))


# --- end to end ---------------------------------------------------------------------------------

HEAVY = {"argparse", "re", "enum", "gettext", "json", "json.decoder", "json.encoder"}
# and what none of the hot commands (state, start, kill, delete, list) needs either
NOT_HOT = HEAVY | {"typing", "collections", "attrs", "cattrs", "pyrunc.sealed", "pyrunc.spec"}


def modules_in(importtime: str) -> set[str]:
    """The module names in -X importtime output."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in importtime.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def imported_modules(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI as the hot path runs it (no site, isolated) with -X importtime."""
    code = f"import sys; sys.path[:0] = [{str(REPO)!r}]; from pyrunc.cli import run; run()"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", code, "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    return proc, modules_in(proc.stderr)


def test_hot_commands_import_neither_argparse_nor_re(
    cid: str, bundle: Bundle, pyrunc: Pyrunc
) -> None:
    bundle.set_args("sleep", "100")
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    proc, modules = imported_modules(pyrunc.root, "state", cid)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "created"
    assert "pyrunc.commands.state" in modules
    assert not NOT_HOT & modules, sorted(NOT_HOT & modules)
    for args in (["list"], ["list", "--format", "json"], ["start", cid], ["kill", cid, "KILL"],
                 ["delete", "--force", cid]):  # fmt: skip
        proc, modules = imported_modules(pyrunc.root, *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert not NOT_HOT & modules, (args, sorted(NOT_HOT & modules))


def test_run_imports_nothing_heavy(cid: str, bundle: Bundle, pyrunc: Pyrunc) -> None:
    """run (create, start, wait, delete) loads config.json with the generated loader and needs
    none of typing, re, enum, collections, json, argparse, attrs or cattrs (each costs ms on
    every container)."""
    heavy = NOT_HOT - {"pyrunc.spec", "pyrunc.sealed"}
    bundle.set_args("true")
    proc, modules = imported_modules_sealed(pyrunc.root, "run", "--bundle", str(bundle.path),
                                            cid)
    assert proc.returncode == 0, proc.stderr
    assert "pyrunc.lifecycle.create" in modules
    assert not heavy & modules, sorted(heavy & modules)


def test_exec_imports_nothing_heavy(cid: str, bundle: Bundle, pyrunc: Pyrunc,
                                    tmp_path: Path) -> None:
    """exec reads the saved config with jsonlite (json imports re, enum, collections) and needs
    run's signal forwarding, not create, start, delete or the hooks."""
    heavy = NOT_HOT - {"pyrunc.spec", "pyrunc.sealed"}
    bundle.set_args("sleep", "100")
    pyrunc("run", "-d", "--bundle", bundle.path, cid, check=True)
    try:
        process = dict(bundle.process, args=["true"], terminal=False)
        (tmp_path / "process.json").write_text(json.dumps(process))
        for args in (["exec", cid, "true"], ["exec", "--process", str(tmp_path / "process.json"),
                                              cid]):  # fmt: skip
            proc, modules = imported_modules_sealed(pyrunc.root, *args)
            assert proc.returncode == 0, (args, proc.stderr)
            assert "pyrunc.lifecycle.exec" in modules
            unneeded = heavy | {"pyrunc.lifecycle.create", "pyrunc.lifecycle.delete",
                                "pyrunc.hooks"}
            assert not unneeded & modules, (args, sorted(unneeded & modules))
    finally:
        pyrunc("delete", "--force", cid)


def test_the_installed_command_state_imports_nothing_heavy(cid: str, bundle: Bundle,
                                                            pyrunc: Pyrunc) -> None:  # fmt: skip
    """`pyrunc state` as users run it: the launcher pip installed (setup.py), whose interpreter
    runs without site's work, so neither site's .pth files nor anything pyrunc does not need."""
    launcher = Path(sys.executable).parent / "pyrunc"
    if not launcher.is_file():
        pytest.skip(f"no pyrunc launcher next to {sys.executable} (not pip-installed here)")
    bundle.set_args("sleep", "100")
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([str(launcher), "--root", str(pyrunc.root), "state", cid], env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    modules = modules_in(proc.stderr)
    assert "pyrunc.state" in modules
    # `site` itself is imported (frozen, for getsitepackages) but never run: no .pth file's
    # imports, no sitecustomize
    pth_work = {"sitecustomize", "usercustomize", "_distutils_hack", "pathlib", "re"}
    assert not (NOT_HOT | pth_work) & modules, sorted((NOT_HOT | pth_work) & modules)


def imported_modules_sealed(
    root: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """As imported_modules, for create, run and exec: measured in the interpreter they re-execute
    (the sealed copy, whose -I ignores PYTHONPROFILEIMPORTTIME: -X importtime is handed over)."""
    code = f"import sys; sys.path[:0] = [{str(REPO)!r}]; from pyrunc.cli import run; run()"
    launcher = (
        f"import os, sys; sys.path[:0] = [{str(REPO)!r}]; from pyrunc import sealed; "
        "os.execve(sealed.sealed_copy(), [sys.executable, '-I', '-S', '-X', 'importtime', '-c', "
        f"{code!r}, *sys.argv[1:]], dict(os.environ))"
    )
    with tempfile.TemporaryFile("w+") as err:  # not a pipe: a created init keeps its stdio
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", launcher, "--root", str(root), *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        err.seek(0)
        proc.stderr = err.read()
    return proc, modules_in(proc.stderr)


def test_create_run_exec_do_not_import_argparse(
    cid: str, bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    bundle.set_args("true")
    proc, modules = imported_modules_sealed(
        pyrunc.root, "run", "--bundle", str(bundle.path), cid + "r"
    )
    assert proc.returncode == 0, proc.stderr
    assert "pyrunc.commands.run" in modules
    assert "argparse" not in modules and "gettext" not in modules, sorted(modules)
    bundle.set_args("sleep", "100")
    proc, modules = imported_modules_sealed(
        pyrunc.root, "create", "--bundle", str(bundle.path), "--pid-file", str(tmp_path / "p"), cid
    )
    assert proc.returncode == 0, proc.stderr
    assert "pyrunc.commands.create" in modules and "argparse" not in modules
    pyrunc("start", cid, check=True)
    process = dict(bundle.process, args=["true"], terminal=False)
    (tmp_path / "process.json").write_text(json.dumps(process))
    proc, modules = imported_modules_sealed(
        pyrunc.root, "exec", "--process", str(tmp_path / "process.json"), cid
    )
    assert proc.returncode == 0, proc.stderr
    assert "pyrunc.commands.exec" in modules and "argparse" not in modules
    pyrunc("delete", "--force", cid, check=True)
