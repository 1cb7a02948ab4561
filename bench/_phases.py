"""Phase timer for one pyrunc command, used by bench/breakdown.py (no change to pyrunc itself).

    python3 bench/_phases.py MARKS.json PYRUNC-ARGS...

Stands in for the `pyrunc` console script (same interpreter flags, same `from pyrunc.cli import
main`) and records time.perf_counter() marks (CLOCK_MONOTONIC: comparable between processes)
into MARKS.json. For create/run/exec it replaces `sealed.reexec_sealed` by an identical re-exec
(same sealed memfd copy, same `-I -S`, same sys.path) whose -c code first imports this module,
so the sealed interpreter records its own marks too, and times the steps of the command by
wrapping pyrunc's functions. The wrappers cost a few microseconds each.
"""

import time

_T0 = time.perf_counter()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

_HERE = os.path.dirname(os.path.abspath(__file__))
MARKS: list = []  # ("mark", label, t) or ("span", label, t0, t1)


def mark(label: str) -> None:
    MARKS.append(("mark", label, time.perf_counter()))


def dump(path: str) -> None:
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = []
    with open(path, "w") as f:
        json.dump(old + MARKS, f)
    MARKS.clear()


def wrap(owner: object, name: str, label: str) -> None:
    """Time every call of owner.name (skipped when this version of pyrunc has no such name)."""
    fn = getattr(owner, name, None)
    if fn is None:
        return

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            MARKS.append(("span", label, t0, time.perf_counter()))

    setattr(owner, name, timed)


def _command(argv: list[str]) -> str:
    takes_value = {"--root", "--log", "--log-format", "--rootless", "--criu"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in takes_value:
            i += 2
            continue
        if a.startswith("-"):
            i += 1
            continue
        return a
    return ""


def _wrap_lifecycle(command: str) -> None:
    import pyrunc.cgroups.manager as manager
    import pyrunc.cgroups.setup as cg_setup
    import pyrunc.lifecycle.create as lc
    import pyrunc.state as state
    from pyrunc import _fast, hooks

    wrap(lc, "load_config_file", "create: load config.json (json, cattrs structure, checks)")
    wrap(lc, "read_config", "create: read config.json")
    wrap(lc, "load_config", "create: load config (json, cattrs structure, checks)")
    wrap(lc, "idmap_trees", "create: idmap_trees")
    wrap(lc, "compile_plan", "create: compile_plan (spec -> init plan)")
    wrap(lc, "check_host_features", "create: check_host_features")
    wrap(_fast, "spawn", "create: _fast.spawn (socketpair, build ops, clone)")
    wrap(lc, "_drive", "create: _drive (sync with the init until ready)")
    wrap(cg_setup, "setup", "create: _drive: cgroups setup (mkdir, resources, add pid)")
    wrap(lc, "read_proc_stat", "create: read /proc/PID/stat")
    wrap(hooks, "spec_hooks", "create: spec_hooks")
    wrap(lc, "save_config", "create: save_config (the config copy for exec)")
    wrap(state.Container, "save", "create: write state.json")
    wrap(state.StateStore, "claim", "create: claim the id (mkdir, lock)")
    wrap(manager.Cgroups, "destroy", "delete: cgroups destroy (rmdir)")
    if command == "run":
        import pyrunc.lifecycle.run as lr

        wrap(lr, "create", "create (total)")
        wrap(lr, "start", "start (release the fifo, wait for the exec)")
        wrap(lr, "wait_forwarding", "wait for the container process to exit")
        wrap(lr, "delete", "delete --force (total)")


def _wrap_main(phase: str, marks_path: str) -> None:
    """Mark (and save the marks) when pyrunc.cli.main returns: an entry point may end with
    os._exit, which runs no atexit handler."""
    import pyrunc.cli as cli

    orig = cli.main

    def main(argv=None):
        try:
            return orig(argv)
        finally:
            mark(f"{phase}: main() returned")
            dump(marks_path)

    cli.main = main


def phase_b(t_start: float, marks_path: str) -> None:
    """The sealed interpreter: attribute its imports, time its steps, run the command."""
    MARKS.append(("mark", "B: interpreter 2 (sealed, -I -S) running", t_start))
    import atexit

    atexit.register(dump, marks_path)
    import pyrunc.cli as cli

    mark("B: import pyrunc.cli (argparse, ...)")
    command = _command(sys.argv[1:])
    if command in ("create", "run", "exec"):
        import attrs  # noqa: F401

        mark("B: import attrs")
        import cattrs  # noqa: F401

        mark("B: import cattrs")
        import pyrunc.spec.model  # noqa: F401

        mark("B: import pyrunc.spec.model (class creation)")
        import pyrunc.spec.converter as conv

        mark("B: import pyrunc.spec.converter")
        conv._converter()
        mark("B: build the cattrs converter (_converter())")
        import pyrunc.lifecycle.create  # noqa: F401
        import pyrunc.lifecycle.run  # noqa: F401

        if command == "exec":
            import pyrunc.lifecycle.exec  # noqa: F401
        mark("B: import the rest (lifecycle, plan, _fast, cgroups, hooks, ...)")
        _wrap_lifecycle(command)
    _wrap_main("B", marks_path)
    # what sealed.reexec_sealed's -c code calls (bench/breakdown.py reads it from sealed.py)
    entry = os.environ.get("B7_SEALED_ENTRY", "main")
    if entry == "main":
        sys.exit(cli.main(sys.argv[1:]))
    getattr(cli, entry)()


def phase_a(marks_path: str, argv: list[str]) -> None:
    """The console script's interpreter (with site)."""
    MARKS.append(("mark", "A: interpreter 1 (with site) running", _T0))
    import re  # noqa: F401  (the console script imports it)

    # the console script's target, pyproject's [project.scripts] (bench/breakdown.py passes it)
    module, func = os.environ.get("B7_ENTRY", "pyrunc.cli:main").split(":")
    __import__(module)
    mark("A: import pyrunc.cli (argparse, ...)")
    from pyrunc import sealed

    command = _command(argv)
    if command and command not in sealed.SEALED_COMMANDS:
        __import__(f"pyrunc.commands.{command}")
        mark(f"A: import pyrunc.commands.{command}")
        if command in ("state", "list", "start", "kill", "delete"):
            import pyrunc.state  # noqa: F401

            mark("A: import pyrunc.state")
        if command in ("start", "kill", "delete"):
            __import__(f"pyrunc.lifecycle.{command}")
            mark(f"A: import pyrunc.lifecycle.{command} (+ cgroups for delete/kill)")

    def reexec(argv2: list[str]) -> None:
        mark("A: main() up to reexec_sealed (global argparse, if before)")
        import pyrunc

        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))
        path = [package_parent] + [p for p in sys.path if p and p != package_parent] + [_HERE]
        code = (
            "import time; _T = time.perf_counter(); import sys; "
            f"sys.path[:0] = {path!r}; import _phases; _phases.phase_b(_T, {marks_path!r})"
        )
        fd = sealed.sealed_copy()
        mark("A: sealed memfd copy of the interpreter made")
        dump(marks_path)
        os.execve(fd, [sys.executable, "-I", "-S", "-c", code, *argv2], dict(os.environ))

    sealed.reexec_sealed = reexec
    _wrap_main("A", marks_path)
    sys.argv = [sys.argv[0], *argv]
    sys.exit(getattr(sys.modules[module], func)())


if __name__ == "__main__":
    phase_a(sys.argv[1], sys.argv[2:])
