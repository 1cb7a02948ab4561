"""Who may import whom (issue 15, item 7): the front end calls the operations, and the operations
take shared pieces from the modules below them, never from a sibling operation; nothing below
reaches back up. Read from the sources (ast), so it holds for imports inside functions too."""

from __future__ import annotations

import ast
import os
from pathlib import Path

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# one module per operation; what they share lives below them (lifecycle.child, foreground, ...)
OPERATIONS = {f"pyrunc.lifecycle.{name}" for name in (
    "create", "start", "kill", "delete", "run", "exec", "pause", "ps", "events", "update")}
# the front ends: the CLI (and its man pages), the Python API and what is built on it
FRONT = {"pyrunc", "pyrunc.__main__", "pyrunc._launch", "pyrunc.cli", "pyrunc.manpages",
         "pyrunc.api", "pyrunc.sandbox"}
# `run` is create + start + wait + delete, as runc's run is: the one operation made of others
COMPOSED = {"pyrunc.lifecycle.run": {"pyrunc.lifecycle.create", "pyrunc.lifecycle.start",
                                     "pyrunc.lifecycle.delete"}}


def _modules() -> dict[str, str]:
    found = {}
    for top, _dirs, files in os.walk(os.path.join(REPO, "pyrunc")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(top, name)
                parts = os.path.relpath(path, REPO)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                found[".".join(parts)] = path
    return found


def _imports(path: str, known: set[str]) -> set[str]:
    """The pyrunc modules a source imports (`from pkg import mod` counts as pkg.mod, not pkg)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # a module named, or a name taken from a module
                full = f"{node.module}.{alias.name}"
                names.add(full if full in known else node.module)
    return names & known


def _layer(module: str) -> int:
    if module in FRONT or module.startswith("pyrunc.commands"):
        return 2
    return 1 if module in OPERATIONS else 0


def test_every_operation_module_exists() -> None:
    assert OPERATIONS <= set(_modules())


def test_operations_import_from_below_and_nothing_below_imports_up() -> None:
    modules = _modules()
    wrong = []
    for module, path in sorted(modules.items()):
        for imported in sorted(_imports(path, set(modules))):
            if imported == "pyrunc" or imported in COMPOSED.get(module, set()):
                continue  # the package (its constants; every submodule loads it anyway)
            if _layer(imported) > _layer(module) or (
                    _layer(module) == 1 and imported in OPERATIONS and imported != module):
                wrong.append(f"{module} -> {imported}")
    assert wrong == []


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    """The rule above is only as good as _imports: a deferred import is still an import."""
    source = str(tmp_path / "m.py")
    with open(source, "w", encoding="utf-8") as f:
        f.write("def f():\n    from pyrunc.lifecycle.run import exit_status\n"
                "    import pyrunc.cli\n    from pyrunc import api, state\n")
    known = {"pyrunc", "pyrunc.lifecycle.run", "pyrunc.cli", "pyrunc.api", "pyrunc.state"}
    assert _imports(source, known) == known - {"pyrunc"}
