"""pyrunc/_bundle.py: the launcher loads pyrunc's modules from one file, never a stale one.

Each case runs a fresh interpreter (as the launcher does: no site) on a copy of the package, so
the bundle and the bytecode it is built from are this test's own.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# which loader each module came from, and whether the bundle was there to install
PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
from pyrunc import _bundle
finder = _bundle.install()
import pyrunc.errors, pyrunc.jsonlite
for name in ("pyrunc.errors", "pyrunc.jsonlite"):
    m = sys.modules[name]
    print(name, type(m.__spec__.loader).__name__, m.__file__)
print("marker", getattr(pyrunc.errors, "MARKER", None))
print("installed", finder is not None)
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    """A small copy of the package: the bundle module and two modules to load through it."""
    top = tmp_path / "src"
    (top / "pyrunc").mkdir(parents=True)
    for name in ("__init__.py", "_bundle.py", "errors.py", "jsonlite.py"):
        shutil.copy(REPO / "pyrunc" / name, top / "pyrunc" / name)
    return top


def probe(top: Path, cache: Path, write: bool = True) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    if not write:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run([sys.executable, "-s", "-S", "-P", "-c", PROBE, str(top)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}


def bundle_file(cache: Path, top: Path) -> Path:
    del top
    found = list(cache.glob("**/bundle.*.bin"))
    assert len(found) <= 1, found
    return found[0] if found else cache / "none"


def test_first_command_writes_it_next_ones_load_from_it(package: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = probe(package, cache)
    assert first["installed"] == ["False"]  # none yet: imported as usual, then written
    assert first["pyrunc.errors"][0] == "SourceFileLoader"
    assert bundle_file(cache, package).is_file()
    second = probe(package, cache)
    assert second["installed"] == ["True"]
    for name in ("pyrunc.errors", "pyrunc.jsonlite"):
        loader, path = second[name]
        assert loader == "BundleFinder"
        # tracebacks and __file__ name the source, as for a normal import
        assert path == str(package / name.replace(".", "/")) + ".py"


def test_a_changed_source_is_never_taken_from_it(package: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    probe(package, cache)
    assert probe(package, cache)["pyrunc.errors"][0] == "BundleFinder"
    with open(package / "pyrunc" / "errors.py", "a") as f:
        f.write("\nMARKER = 'changed'\n")
    third = probe(package, cache)
    assert third["marker"] == ["changed"]
    assert third["pyrunc.errors"][0] == "SourceFileLoader"  # the source, as edited
    assert third["pyrunc.jsonlite"][0] == "BundleFinder"  # unchanged: still bundled
    # ... and the bundle was rewritten: the next command takes the new code from it
    fourth = probe(package, cache)
    assert fourth["marker"] == ["changed"]
    assert fourth["pyrunc.errors"][0] == "BundleFinder"


def test_nothing_written_when_bytecode_writing_is_off(package: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    out = probe(package, cache, write=False)
    assert out["installed"] == ["False"] and out["pyrunc.errors"][0] == "SourceFileLoader"
    assert not bundle_file(cache, package).exists()


def test_a_corrupt_bundle_is_replaced(package: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    probe(package, cache)
    path = bundle_file(cache, package)
    path.write_bytes(b"not a bundle")
    out = probe(package, cache)
    assert out["installed"] == ["False"] and out["pyrunc.errors"][0] == "SourceFileLoader"
    assert probe(package, cache)["pyrunc.errors"][0] == "BundleFinder"


def test_the_launcher_script_runs_from_it(tmp_path: Path) -> None:
    """pyrunc/_launch.py (what the installed launcher runs) with this checkout: a command
    works the first time (writing the bundle) and the second (from it)."""
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-s", "-S", "-P", str(REPO / "pyrunc" / "_launch.py"), str(REPO),
             "--version"], capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("pyrunc version")
    assert list(cache.glob("**/bundle.*.bin"))
    # loading from it holds no fd: a command still works with runc's 4
    root = tmp_path / "root"
    root.mkdir()

    def four() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4, 4))

    proc = subprocess.run(
        [sys.executable, "-s", "-S", "-P", str(REPO / "pyrunc" / "_launch.py"), str(REPO),
         "--root", str(root), "list"], capture_output=True, text=True, env=env, timeout=60,
        preexec_fn=four)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ID"), proc.stdout
