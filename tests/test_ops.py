"""The operation codes have one list, pyrunc/instructions.py: the executor (`_executor`, built
from _executor.pyx with the _ops.pxi that setup.py generates from it) was compiled with the same,
and its dispatch table has one handler for each. Each operation has one typed builder there, and
no other module makes an operation any other way."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from pyrunc import _executor, _linux, instructions

REPO = Path(__file__).resolve().parent.parent


def test_the_built_executor_has_the_codes_of_ops_py() -> None:
    compiled = _executor.op_codes()
    assert compiled == instructions.codes()
    assert len(set(v for k, v in compiled.items() if k.startswith("OP_"))) == len(
        [k for k in compiled if k.startswith("OP_")]
    ), "two operations share a code"


def test_the_executor_declares_no_code_of_its_own() -> None:
    """_executor.pyx only includes the generated declarations; every OP_/TGT_ name it uses is
    one of instructions.py's."""
    source = (REPO / "pyrunc" / "_executor.pyx").read_text()
    assert 'include "_ops.pxi"' in source
    assert not re.search(r"^\s+(OP|TGT|PIVOT|CHDIR|DEVNULL|LOOKUP)_[A-Z0-9_]+ = ", source, re.M)
    used = set(re.findall(r"\b((?:OP|TGT|PIVOT|CHDIR|DEVNULL|LOOKUP)_[A-Z0-9_]+)\b", source))
    assert used <= set(instructions.codes()), used - set(instructions.codes())


def test_the_dispatch_table_has_one_handler_for_each_code() -> None:
    """child_main runs each operation through HANDLERS[code]: every code has its entry, once,
    and the table has nothing else (the elif chain it replaced is gone)."""
    codes = {k: v for k, v in instructions.codes().items() if k.startswith("OP_")}
    assert _executor.handled_codes() == sorted(codes.values())
    source = (REPO / "pyrunc" / "_executor.pyx").read_text()
    entries = re.findall(r"^HANDLERS\[(OP_[A-Z0-9_]+)\] = (\w+)$", source, re.M)
    assert sorted(name for name, _ in entries) == sorted(codes)
    assert len({handler for _, handler in entries}) == len(entries), "a handler used twice"
    assert not re.search(r"\bop\.code ==", source)


def _run_plan(plan: list) -> list[bytes]:
    """The messages a cloned init sends while it runs `plan` (no namespaces: no root needed),
    answering each sync point; its exit status last."""
    pid, sock = _executor.spawn(plan, 0)
    got = []
    try:
        while True:
            data, fd = _linux.recv_message(sock)
            if fd >= 0:
                os.close(fd)
            if not data:
                break
            got.append(data)
            if data[:1] == b"E":
                break
            os.write(sock, b"C")
    finally:
        os.close(sock)
        _, status = os.waitpid(pid, 0)
    return got + [str(os.waitstatus_to_exitcode(status)).encode()]


def test_the_init_runs_the_plan_through_the_table() -> None:
    assert _run_plan([instructions.sync("one", "first"), instructions.sync("two", "second")]) == [
        b"one\0", b"two\0", b"E\0init: the plan ended without exec", b"1"]


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def test_an_unknown_code_is_refused_before_any_clone() -> None:
    """A code without a handler (none of instructions.py's) is a plan the parent cannot copy:
    spawn refuses it, naming the operation, and makes no process."""
    bogus = (len(_executor.handled_codes()) + 7, "bogus step", (), (), None, None, None)
    before = _children()
    for code in (bogus[0], 0, 63, 64, 1000, -1):
        plan = [instructions.sync("before", "never reached"), (code,) + bogus[1:]]
        with pytest.raises(ValueError, match=f"^bogus step: unknown operation {code}$"):
            _executor.spawn(plan, 0)
    assert _children() == before  # no init was cloned


def _children() -> set[str]:
    return set(Path(f"/proc/self/task/{os.getpid()}/children").read_text().split())


def test_a_refused_plan_leaves_no_fd() -> None:
    """spawn copies the plan before it makes its socket pair: a plan it cannot copy (a NUL in
    a string, an unknown code) leaves no fd behind in a long-running embedder."""
    before = _open_fds()
    for plan in ([instructions.sync("a\0b", "NUL in the message")],
                 [(1000, "bogus", (), (), None, None, None)]):
        for join_user_fd in (-1, 0):  # spawn, and spawn through a user namespace
            with pytest.raises(ValueError):
                _executor.spawn(plan, 0, join_user_fd=join_user_fd)
    assert _open_fds() == before


def test_a_failed_spawn_leaves_no_fd_and_its_own_pid_namespace() -> None:
    """spawn enters the pid namespace to create the init in around the clone: when a later step
    fails (here joining a "time namespace" that is not one), it raises with the runtime back in
    its own pid namespace for children and nothing of the attempt left open."""
    if os.geteuid() != 0:
        pytest.skip("joining a pid namespace needs CAP_SYS_ADMIN")
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "sh", "-c",
                               "echo in; exec sleep 1000"], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"in\n"
        inner = Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text().split()[0]
        pid_fd = os.open(f"/proc/{inner}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        not_time = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        try:
            own = os.readlink("/proc/self/ns/pid")
            before = _open_fds()
            with pytest.raises(OSError, match="setns\\(time\\)"):
                _executor.spawn([instructions.sync("one")], 0, join_pid_fd=pid_fd,
                                join_time_fd=not_time)
            assert os.readlink("/proc/self/ns/pid_for_children") == own
            assert _open_fds() == before
        finally:
            os.close(pid_fd)
            os.close(not_time)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_a_handler_raising_in_spawns_wait_leaves_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """spawn through a user namespace reaps its intermediate process. A Python signal handler
    that raises (KeyboardInterrupt) runs wherever Python waits: standing in for one, a waitpid
    that raises. spawn must then either finish (its wait is not Python's) or leave no socket
    and no init waiting on it for ever; it used to do neither."""
    if os.geteuid() != 0:
        pytest.skip("joining a user namespace of another owner needs root")
    holder = subprocess.Popen(["unshare", "--user", "sh", "-c", "echo in; exec sleep 1000"],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"in\n"
        user_fd = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            before, children = _open_fds(), _children()

            def interrupted(*_: object) -> None:
                raise KeyboardInterrupt

            monkeypatch.setattr(os, "waitpid", interrupted)
            try:
                pid, sock = _executor.spawn([instructions.sync("one")], 0, join_user_fd=user_fd)
            except KeyboardInterrupt:
                monkeypatch.undo()
                assert _open_fds() == before
            else:
                monkeypatch.undo()
                data, _ = _linux.recv_message(sock)
                assert data == b"one\0"
                os.close(sock)
                os.waitpid(pid, 0)
            assert _children() == children
        finally:
            os.close(user_fd)
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_pxi_is_what_ops_py_generates() -> None:
    pxi = REPO / "pyrunc" / "_ops.pxi"
    if not pxi.exists():  # a build from the sdist's generated C has none
        return
    assert pxi.read_text() == instructions.pxi()


OP_NAMES = {k[3:] for k in instructions.codes() if k.startswith("OP_")}


def test_one_builder_per_operation() -> None:
    """Every public function of instructions.py that makes an operation returns one whole
    tuple of one code, and every code has exactly one such builder."""
    tree = ast.parse((REPO / "pyrunc" / "instructions.py").read_text())
    built: dict[str, list[str]] = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn.name.startswith("_"):
            continue
        made = [n.value for n in ast.walk(fn) if isinstance(n, ast.Return)
                and isinstance(n.value, ast.Tuple) and n.value.elts
                and isinstance(n.value.elts[0], ast.Name) and n.value.elts[0].id in OP_NAMES]
        if not made:
            continue
        assert len(made) == 1 and len(made[0].elts) == len(instructions.FIELDS), fn.name
        built.setdefault(made[0].elts[0].id, []).append(fn.name)
    assert set(built) == OP_NAMES, OP_NAMES ^ set(built)
    assert all(len(v) == 1 for v in built.values()), {k: v for k, v in built.items() if len(v) > 1}


def _raw_constructions(path: Path) -> list[str]:
    """Where `path` makes an operation without a builder: an operation code imported, or used
    other than in a comparison (`step[0] == ins.EXEC`), or a private name of the module."""
    text = path.read_text()
    if "instructions" not in text:  # no way to an operation but through that module
        return []
    tree = ast.parse(text)
    aliases = {"pyrunc.instructions"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pyrunc.instructions":
            for a in node.names:
                if a.name.startswith("_") or a.name in OP_NAMES:
                    found.append(f"line {node.lineno}: imports {a.name}")
        elif isinstance(node, ast.ImportFrom) and node.module == "pyrunc":
            aliases.update(a.asname or a.name for a in node.names if a.name == "instructions")
        elif isinstance(node, ast.Import):
            aliases.update(a.asname or a.name for a in node.names
                           if a.name == "pyrunc.instructions")
    nodes = list(ast.walk(tree))
    compared = {id(n) for c in nodes if isinstance(c, ast.Compare) for n in ast.walk(c)}
    called = {id(c.func) for c in nodes if isinstance(c, ast.Call)}
    for node in nodes:
        if isinstance(node, ast.Attribute):
            owner = ast.unparse(node.value)
            if owner in aliases and node.attr.startswith("_"):
                found.append(f"line {node.lineno}: {owner}.{node.attr}")
            elif owner in aliases and node.attr in OP_NAMES and id(node) not in compared:
                found.append(f"line {node.lineno}: {owner}.{node.attr} outside a builder")
        elif isinstance(node, ast.Name) and node.id == "Op" and id(node) in called:
            found.append(f"line {node.lineno}: Op(...)")
    return found


def test_no_module_but_instructions_makes_a_raw_operation() -> None:
    offenders = {}
    for path in sorted((REPO / "pyrunc").rglob("*.py")):
        if path.name == "instructions.py" and path.parent.name == "pyrunc":
            continue
        found = _raw_constructions(path)
        if found:
            offenders[str(path.relative_to(REPO))] = found
    assert not offenders, offenders


def test_the_guard_finds_raw_operations(tmp_path: Path) -> None:
    """The check above fails on each way around the builders."""
    cases = {
        "from pyrunc.instructions import _x\n": "imports _x",
        "from pyrunc import instructions as ins\nx = ins._x(ins.MKNOD, 'd')\n": "ins._x",
        "import pyrunc.instructions\nx = (pyrunc.instructions.SYNC, 'd', (), ('t',))\n":
            "pyrunc.instructions.SYNC outside a builder",
        "from pyrunc import instructions\nx = (instructions.MOUNT, 'd', (), ())\n":
            "instructions.MOUNT outside a builder",
        "from pyrunc.instructions import HOOK\n": "imports HOOK",
        "from pyrunc.instructions import Op\nx = Op((1, 'd', (), ()))\n": "Op(...)",
    }
    for source, expected in cases.items():
        path = tmp_path / "m.py"
        path.write_text(source)
        assert any(expected in f for f in _raw_constructions(path)), (source, expected)
    path.write_text("from pyrunc import instructions as ins\n"
                    "ok = [ins.mknod('/dev/x', 0, 1, 3, 0, 0), ins.TGT_DIR]\n"
                    "def f(step): return step[0] == ins.EXEC\n")
    assert _raw_constructions(path) == []


def test_builders_fill_the_wire_format() -> None:
    """What the executor unpacks: (code, desc, numbers, strings, argv, envp, ids)."""
    op = instructions.mount("/src", "/dst", 4096, instructions.TGT_DIR | instructions.TGT_NOT_PROC,
                            "bind", received=2)
    assert op == (instructions.MOUNT, "bind", (4096, 0x101, 3), ("/src", "/dst", None, None),
                  None, None, None)
    assert (instructions.describe(op)
            == "MOUNT('bind', (4096, 257, 3), ('/src', '/dst', None, None))")
    assert instructions.execve(["sh"], ["A=1"]) == (instructions.EXEC, "exec", (), (), ["sh"],
                                                    ["A=1"], None)
    assert instructions.seccomp(b"\x01", 8) == (instructions.SECCOMP, "load the seccomp filter",
                                               (8,), (), None, None, b"\x01")


def test_spawn_through_a_user_namespace_survives_signals() -> None:
    """spawn's join_user_fd path (exec and hooks of a rootless container) reads the init's pid
    from its intermediate process: a signal with a Python handler (no SA_RESTART) arriving
    meanwhile must not turn into "join the container's namespaces" failing. Probabilistic: a
    0.2 ms timer over 200 spawns is meant to interrupt some of those reads (one it hits
    without the retry fails the test), but `fired` only shows that the timer ran, not that a
    read was hit."""
    if os.geteuid() != 0:
        pytest.skip("joining a user namespace of another owner needs root")
    # the holder says when it is in its namespace: before that, its ns/user is ours, and
    # joining the namespace one is already in is EINVAL (a bounded poll lost that race in CI)
    holder = subprocess.Popen(["unshare", "--user", "sh", "-c", "echo in; exec sleep 1000"],
                              stdout=subprocess.PIPE)
    user_fd = -1
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"in\n"
        assert os.readlink(f"/proc/{holder.pid}/ns/user") != os.readlink("/proc/self/ns/user")
        user_fd = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
        for _ in range(200):
            pid, sock = _executor.spawn([instructions.sync("one", "first")], 0,
                                        join_user_fd=user_fd)
            try:
                data, fd = _linux.recv_message(sock)
                assert data == b"one\0"
            finally:
                os.close(sock)
                os.waitpid(pid, 0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
        if user_fd >= 0:
            os.close(user_fd)
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert fired  # the timer did interrupt
