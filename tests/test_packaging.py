"""Installable anywhere (issue 16): the sdist, the wheel built from it, and the `pyrunc` launcher
as two fresh venvs install it.

One sdist is made from a copy of this checkout and one wheel from that sdist with Cython
hidden (so the sdist must carry the generated C); the wheel goes into two venvs made now, the
first is deleted, and a container runs from the second. Everything is offline: the venvs see
this interpreter's site-packages (--system-site-packages) for attrs and cattrs, and pip runs
with --no-index.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Bundle, Pyrunc

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def sh(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 300)
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]  # fmt: skip


def need(module: str) -> None:
    if sh([sys.executable, "-c", f"import {module}"]).returncode != 0:
        pytest.skip(f"{module} is not installed: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{'sdist': ..., 'wheel': ..., 'unpacked': the sdist's tree}."""
    for module in ("Cython", "wheel", "build"):
        need(module)
    work = tmp_path_factory.mktemp("pkg-build")
    src = work / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "*.so", "_executor.c", "_linux.c", "_seccomp.c",
        "__pycache__",
        ".pytest_cache", ".ruff_cache", "busybox"))  # fmt: skip
    dist = work / "dist"
    proc = sh([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", dist, src])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = dist.glob("pyrunc-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    # the wheel from the sdist, Cython hidden (a module that fails to import stands for its
    # absence): the generated C in the sdist must be enough
    hide = work / "no-cython" / "Cython"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ImportError('Cython hidden by test_packaging')\n")
    env = dict(os.environ, PYTHONPATH=str(hide.parent))
    proc = sh([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
               "--no-index", "-w", dist, unpacked], env=env, cwd=work)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = dist.glob("pyrunc-*.whl")
    return {"sdist": sdist, "wheel": wheel, "unpacked": unpacked}


def venv(path: Path, wheel: Path) -> Path:
    proc = sh([sys.executable, "-m", "venv", "--system-site-packages", path])
    assert proc.returncode == 0, proc.stderr
    proc = sh([path / "bin" / "python", "-m", "pip", "install", "-q", "--no-index",
               "--disable-pip-version-check", wheel])  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path / "bin" / "pyrunc"


@pytest.fixture(scope="module")
def installed(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The pyrunc of the second of two venvs the wheel went into; the first is gone."""
    work = tmp_path_factory.mktemp("pkg-venvs")
    first = venv(work / "one", built["wheel"])
    second = venv(work / "two", built["wheel"])
    assert sh([first, "--version"]).returncode == 0
    shutil.rmtree(work / "one")
    yield second
    shutil.rmtree(work, ignore_errors=True)


def test_sdist_carries_what_an_offline_build_needs(built: dict[str, Path]) -> None:
    with tarfile.open(built["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("pyrunc/_executor.c", "pyrunc/_linux.c", "pyrunc/_seccomp.c",
                 "pyrunc/_executor.pyx", "pyrunc/_linux.pyx", "src/launcher.c",
                 "pyrunc/csrc/pyrunc.h", "pyrunc/csrc/pyrunc.pxi", "pyrunc/csrc/syscalls.c",
                 "pyrunc/csrc/inroot.c",
                 "pyrunc/csrc/fdpass.c", "pyrunc/csrc/init.c",
                 "buildsys/pyrunc_build.py", "LICENSE", "CHANGELOG.md", "pyrunc/py.typed",
                 "pyproject.toml", "setup.py", "pyrunc/spec/README.md"):  # fmt: skip
        assert name in names, name


def test_wheel_contents(built: dict[str, Path]) -> None:
    import zipfile

    names = set(zipfile.ZipFile(built["wheel"]).namelist())
    assert "pyrunc/py.typed" in names
    assert "pyrunc/_seccomp.pyi" in names  # a type checker sees the extensions' functions
    assert "pyrunc-0.1.0.data/scripts/pyrunc" in names
    assert not [n for n in names if n.endswith(".c")]  # the C is for the sdist only
    from pyrunc import cli

    for page in ["pyrunc.8"] + [f"pyrunc-{c}.8" for c in cli.COMMANDS]:
        assert f"pyrunc-0.1.0.data/data/share/man/man8/{page}" in names, page


def package_of(launcher: Path, **kwargs: object) -> str:
    """The pyrunc/__init__.py the launcher imports (Python's verbose log names it)."""
    env = dict(os.environ, PYTHONVERBOSE="1")
    env.pop("PYTHONPATH", None)
    proc = sh([launcher, "--version"], env=env, **kwargs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = {w for line in proc.stderr.splitlines() for w in line.replace("'", " ").split()
             if w.endswith("/pyrunc/__init__.py")}  # fmt: skip
    assert len(found) == 1, found
    return found.pop()


def test_wheel_runs_a_container_from_the_second_venv(
    installed: Path, bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """The launcher runs the venv's own interpreter (its protected overlay, S1) and package,
    without site, and needs nothing from the first venv or the build."""
    from pyrunc import sealed

    venv = installed.parent.parent
    assert package_of(installed) == f"{venv}/lib/{PY}/site-packages/pyrunc/__init__.py"
    seen = tmp_path / "cmdline"
    bundle.set_args("echo", "hello from the wheel")
    script = f"tr '\\000' ' ' < /proc/$PPID/cmdline > {seen}"
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}
    bundle.write()
    proc = sh([installed, "--root", pyrunc.root, "run", "--bundle", bundle.path, "pkg1"],
              timeout=60)  # fmt: skip
    assert (proc.returncode, proc.stdout) == (0, "hello from the wheel\n"), proc.stderr
    protected = sealed.protected_executable(os.path.realpath(venv / "bin" / "python3"))
    site = f"{venv}/lib/{PY}/site-packages"
    assert seen.read_text().startswith(
        f"{protected} -s -S -P {site}/pyrunc/_launch.py {site} --root {pyrunc.root} run "
    ), seen.read_text()


def test_launcher_works_with_four_fds(installed: Path, bundle: Bundle, pyrunc: Pyrunc) -> None:
    """`ulimit -n 4` (runc works from 4): the launcher itself opens no fd. (What each command
    then needs is the runtime's business: `state` of a live container holds its lock and
    reads state.json, fds 3 and 4.)"""
    bundle.set_args("sleep", "100")
    pyrunc("create", "--bundle", bundle.path, "pkg4", check=True)

    def four() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (4, 4))

    for args in (["--version"], ["list", "-q"]):
        proc = sh([installed, "--root", pyrunc.root, *args], preexec_fn=four)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout, args


def test_a_broken_install_fails_with_one_line(built: dict[str, Path], tmp_path: Path) -> None:
    launcher = venv(tmp_path / "v", built["wheel"])
    package = tmp_path / "v" / "lib" / PY / "site-packages" / "pyrunc"
    for damage, expect in (("package", "no pyrunc package under"), ("cli", "cannot import"),
                           ("python", f"no interpreter {PY}")):  # fmt: skip
        backup = tmp_path / "backup"
        target = {"package": package, "cli": package / "cli.py",
                  "python": tmp_path / "v" / "bin" / PY}[damage]  # fmt: skip
        if damage == "cli":
            shutil.rmtree(package / "__pycache__", ignore_errors=True)
        target.rename(backup)
        try:
            env = dict(os.environ, PATH="/nonexistent")
            proc = sh([launcher, "list"], env=env)
        finally:
            backup.rename(target)
        assert proc.returncode == 1, (damage, proc)
        assert proc.stdout == "" and len(proc.stderr.splitlines()) == 1, (damage, proc.stderr)
        assert proc.stderr.startswith("pyrunc: broken installation") and expect in proc.stderr
    assert sh([launcher, "list"]).returncode == 0  # all restored


def test_man_pages_installed_and_generated_from_the_parsers(installed: Path) -> None:
    from pyrunc import cli

    man8 = installed.parent.parent / "share" / "man" / "man8"
    for name in cli.COMMANDS:
        parser = cli.command_parser(name)
        page = (man8 / f"pyrunc-{name}.8").read_text()
        assert page.startswith(f".TH PYRUNC-{name.upper()} 8 ")
        for action in parser._actions:
            if action.help == "==SUPPRESS==":  # hidden from --help, so from the page too
                continue
            for flag in action.option_strings:
                assert f"\\fB{flag.replace('-', chr(92) + '-')}\\fR" in page, (name, flag)
    if shutil.which("man"):
        proc = sh(["man", "-l", "-P", "cat", man8 / "pyrunc-run.8"], env=dict(os.environ,
                  MANWIDTH="100"))  # fmt: skip
        assert proc.returncode == 0 and "--detach" in proc.stdout.replace("‐", "-"), proc.stderr


def test_missing_build_tools_give_one_line(built: dict[str, Path], tmp_path: Path) -> None:
    """A missing compiler, or a seccomp.h that does not compile (a header of that name that
    #errors stands for its absence: the real one cannot be removed from this machine)."""
    shadow = tmp_path / "include"
    shadow.mkdir()
    (shadow / "seccomp.h").write_text("#error no libseccomp headers here\n")
    for env, expect in (({"CC": "/nonexistent/cc"}, "needs a C compiler"),
                        ({"CFLAGS": f"-I{shadow}"}, "needs libseccomp's headers")):  # fmt: skip
        tree = tmp_path / f"tree-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(built["unpacked"], tree)
        proc = sh([sys.executable, "setup.py", "-q", "build_ext"], cwd=tree,
                  env=dict(os.environ, **env))  # fmt: skip
        assert proc.returncode == 1, proc
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, proc.stderr
        assert expect in errors[0] and "apt-get install" in errors[0], proc.stderr
        assert "gcc" not in proc.stderr.replace(errors[0], ""), proc.stderr  # no compiler noise


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is not installed (tests/setup.sh)")
def test_pipx_install_of_the_source_tree(tmp_path: Path, bundle: Bundle, pyrunc: Pyrunc) -> None:
    """What a user does with a checkout: `pipx install .` (its own venv). Offline: the venv
    sees this interpreter's packages (attrs, cattrs; setuptools, wheel and Cython to build
    with, no build isolation), pip gets no index."""
    env = dict(os.environ, PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"),
               PIPX_MAN_DIR=str(tmp_path / "man"))  # fmt: skip
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "*.so", "__pycache__", ".pytest_cache", "busybox"))
    for module in ("Cython", "wheel"):
        need(module)
    proc = sh(["pipx", "install", "--python", sys.executable, "--system-site-packages",
               "--pip-args=--no-build-isolation --no-index", src], env=env,
              timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    launcher = tmp_path / "bin" / "pyrunc"
    assert package_of(launcher).startswith(str(tmp_path / "pipx" / "venvs" / "pyrunc"))
    bundle.set_args("echo", "hello from pipx")
    proc = sh([launcher, "--root", pyrunc.root, "run", "--bundle", bundle.path, "pkgx"])
    assert (proc.returncode, proc.stdout) == (0, "hello from pipx\n"), proc.stderr


def test_overlay_debug_show_and_remove(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    """The first create/run from an interpreter mounts the read-only overlay of its directory
    (S1): --debug says so, `pyrunc overlay show` lists it, `overlay remove DIR` unmounts it.
    A private interpreter (a venv with --copies) so that the machine's overlay is left alone."""
    from pyrunc import sealed

    venv = tmp_path / "venv"
    made = sh([sys.executable, "-m", "venv", "--copies", "--without-pip",
               "--system-site-packages", venv])  # fmt: skip
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    bindir = os.path.dirname(os.path.realpath(python))
    mountpoint = os.path.dirname(sealed.protected_executable(os.path.realpath(python)))

    def cli(*args: object) -> subprocess.CompletedProcess[str]:
        return sh([python, "-m", "pyrunc", *args], cwd=REPO, timeout=60)

    bundle.set_args("true")
    try:
        proc = cli("--debug", "--root", pyrunc.root, "run", "--bundle", bundle.path, "pkgo1")
        assert proc.returncode == 0, proc.stderr
        assert (f"mounted a read-only overlay of the interpreter's directory {bindir} at "
                f"{mountpoint}; it stays until reboot (pyrunc overlay show|remove)"
                in proc.stderr), proc.stderr  # fmt: skip
        assert f"running from the protected interpreter {mountpoint}/" in proc.stderr
        assert f"{mountpoint}\t{bindir}\n" in cli("overlay", "show").stdout
        proc = cli("--debug", "--root", pyrunc.root, "run", "--bundle", bundle.path, "pkgo2")
        assert proc.returncode == 0 and "mounted a read-only" not in proc.stderr, proc.stderr
        proc = cli("overlay", "remove", bindir)
        assert proc.stdout == f"removed {mountpoint}\n", proc.stderr
        assert not os.path.ismount(mountpoint)
        assert mountpoint not in cli("overlay", "show").stdout
    finally:
        if os.path.ismount(mountpoint):
            subprocess.run(["umount", "--lazy", mountpoint], check=False)
        if os.path.isdir(mountpoint):
            os.rmdir(mountpoint)
