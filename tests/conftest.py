"""Fixtures for the container tests: a busybox bundle, a fresh --root, and the real CLI.

Every container test runs real containers through `python -m pyrunc` in a subprocess, with its
own state root; teardown force-deletes whatever a test left behind and then asserts that nothing
is left under that root.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
MAKE_BUSYBOX = REPO / "bundles" / "make-busybox.sh"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared" / "runtime-spec" / "schema"

NOT_ROOT = os.geteuid() != 0
NOT_ROOT_REASON = (
    "container tests need root (namespaces, mounts, mknod): run the suite as root "
    f"(euid is {os.geteuid()})"
)
# the fixtures that start real containers; tests using any of them are skipped without root
CONTAINER_FIXTURES = {"root", "bundle", "pyrunc", "busybox_bundle"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    if not NOT_ROOT:
        return
    skip = pytest.mark.skip(reason=NOT_ROOT_REASON)
    for item in items:
        if CONTAINER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(skip)


# --- the bundle --------------------------------------------------------------------


@pytest.fixture(scope="session")
def busybox_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox bundle, built once per session by bundles/make-busybox.sh."""
    if NOT_ROOT:
        pytest.skip(NOT_ROOT_REASON)
    if not os.access("/bin/busybox", os.X_OK):
        pytest.skip("/bin/busybox is missing: apt-get install busybox-static")
    dest = tmp_path_factory.mktemp("busybox-template") / "bundle"
    proc = subprocess.run(
        ["bash", str(MAKE_BUSYBOX), str(dest)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"make-busybox.sh failed:\n{proc.stdout}\n{proc.stderr}"
    assert (dest / "config.json").is_file()
    assert (dest / "rootfs" / "bin" / "busybox").is_file()
    return dest


USERNS_HOST_BASE = 100000  # the container's root is this host uid
USERNS_SIZE = 65536


@pytest.fixture
def userns_bundle(busybox_bundle: Path) -> Iterator[Bundle]:
    """The busybox bundle for a user namespace mapping 0 -> 100000 (65536 ids).

    It lives in a world-searchable directory (the init, host uid 100000 without capabilities
    there, must reach the rootfs), with the rootfs chowned to the mapped range.
    """
    parent = Path(tempfile.mkdtemp(prefix="pyrunc-userns-", dir="/tmp"))
    parent.chmod(0o711)
    try:
        dest = parent / "bundle"
        subprocess.run(["cp", "-a", str(busybox_bundle), str(dest)], check=True)
        subprocess.run(["chown", "-R", "-h", f"{USERNS_HOST_BASE}:{USERNS_HOST_BASE}",
                        str(dest / "rootfs")], check=True)  # fmt: skip
        b = Bundle(dest)
        linux = b.config["linux"]
        linux["namespaces"].append({"type": "user"})
        mapping = [{"containerID": 0, "hostID": USERNS_HOST_BASE, "size": USERNS_SIZE}]
        linux["uidMappings"] = mapping
        linux["gidMappings"] = [dict(m) for m in mapping]
        b.write()
        yield b
    finally:
        shutil.rmtree(parent, ignore_errors=True)


class Bundle:
    """A private copy of the busybox bundle; edit `config` and call `write()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rootfs = path / "rootfs"
        self.config_path = path / "config.json"
        self.config: dict[str, Any] = json.loads(self.config_path.read_text())
        self.original = copy.deepcopy(self.config)

    @property
    def process(self) -> dict[str, Any]:
        return self.config["process"]

    def write(self) -> None:
        self.config_path.write_text(json.dumps(self.config, indent=2))

    def set_args(self, *args: str) -> Bundle:
        self.process["args"] = list(args)
        self.write()
        return self

    def sh(self, script: str) -> Bundle:
        """process.args = sh -c SCRIPT, written out."""
        return self.set_args("sh", "-c", script)

    def add_mount(self, destination: str, type_: str, source: str, options: list[str]) -> None:
        self.config.setdefault("mounts", []).append(
            {"destination": destination, "type": type_, "source": source, "options": options}
        )

    def __str__(self) -> str:
        return str(self.path)


@pytest.fixture
def bundle(busybox_bundle: Path, tmp_path: Path) -> Bundle:
    dest = tmp_path / "bundle"
    subprocess.run(["cp", "-a", str(busybox_bundle), str(dest)], check=True)
    return Bundle(dest)


# --- the state root and the CLI -----------------------------------------------------

_ids = itertools.count(1)


def new_id(prefix: str = "c") -> str:
    """A container id unique on this machine. Ids also name the cgroup (/pyrunc/<id>, as runc's
    /<id>), so test sessions running at the same time must never share one."""
    return f"{prefix}-{os.getpid()}-{next(_ids)}"


@pytest.fixture
def cid() -> str:
    return new_id()



@pytest.fixture
def root_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only the state root (to see that nothing escapes it)."""
    return tmp_path_factory.mktemp("state")


def _kill_leftover_inits(root: Path) -> list[str]:
    """Last resort when `delete --force` could not clean up: SIGKILL the recorded inits."""
    killed = []
    for state_file in root.glob("*/state.json"):
        try:
            if not state_file.is_file() or state_file.is_symlink():  # damaged on purpose
                continue
            data = json.loads(state_file.read_text())
            pid = int(data.get("pid") or 0)
        except (OSError, ValueError):
            continue
        if pid > 0:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(f"{state_file.parent.name}:{pid}")
            except OSError:
                pass
    return killed


@pytest.fixture
def root(root_parent: Path) -> Iterator[Path]:
    """A fresh --root; at teardown every container in it is force-deleted, then it must be empty."""
    path = root_parent / "root"
    path.mkdir(mode=0o700)
    yield path
    problems = []
    try:
        for cid in sorted(os.listdir(path)) if path.is_dir() else []:
            try:
                proc = _cli(path, "delete", "--force", cid)
            except subprocess.TimeoutExpired:
                problems.append(f"delete --force {cid} timed out")
                continue
            if proc.returncode != 0:
                problems.append(f"delete --force {cid} failed: {proc.stderr.strip()}")
        left = sorted(os.listdir(path)) if path.is_dir() else []
        if left:
            killed = _kill_leftover_inits(path)
            problems.append(f"left under --root after delete --force: {left} (killed {killed})")
    finally:
        shutil.rmtree(path, ignore_errors=True)
    assert not problems, "; ".join(problems)


INTERNAL_ERROR = "pyrunc: internal error: "


def check_no_internal_error(stderr: str, args: Any) -> None:
    """Every CLI call of the suite goes through here: pyrunc's last-resort handler (an
    exception no code path expected) or a Python traceback fails the test, whatever it
    asserted otherwise (issue 13)."""
    if INTERNAL_ERROR in stderr or "Traceback (most recent call last)" in stderr:
        raise AssertionError(f"{' '.join(map(str, args))} hit an unexpected exception:\n{stderr}")


def _read(f: Any) -> str:
    f.seek(0)
    return f.read().decode(errors="replace")


class Running:
    """A pyrunc command started in the background (output goes to files, never pipes)."""

    def __init__(self, args: list[str], **kwargs: Any) -> None:
        self.args = args
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=self._err, **kwargs)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout_so_far(self) -> str:
        """What the command has written to stdout until now (it may still be running)."""
        return os.pread(self._out.fileno(), 1 << 20, 0).decode(errors="replace")

    def wait(self, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        result = subprocess.CompletedProcess(self.args, rc, _read(self._out), _read(self._err))
        self._out.close()
        self._err.close()
        check_no_internal_error(result.stderr, self.args)
        return result


def _cli_args(root: Path, args: tuple[Any, ...]) -> list[str]:
    return [sys.executable, "-m", "pyrunc", "--root", str(root), *map(str, args)]


def _cli(
    root: Path,
    *args: Any,
    check: bool = False,
    input: str | None = None,
    timeout: float = 30,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion. stdout/stderr go to files: a created or detached container
    keeps the stdio it inherited open, so pipes would never see EOF."""
    stdin: Any = subprocess.DEVNULL
    if input is not None:
        stdin = tempfile.TemporaryFile()
        stdin.write(input.encode())
        stdin.seek(0)
    try:
        result = Running(_cli_args(root, args), stdin=stdin, **kwargs).wait(timeout)
    finally:
        if input is not None:
            stdin.close()
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


class Pyrunc:
    """`pyrunc(*args)` runs `python -m pyrunc --root ROOT *args` and returns a CompletedProcess."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(
        self,
        *args: Any,
        check: bool = False,
        input: str | None = None,
        timeout: float = 30,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        return _cli(self.root, *args, check=check, input=input, timeout=timeout, **kwargs)

    def start_background(self, *args: Any, **kwargs: Any) -> Running:
        return Running(_cli_args(self.root, args), **kwargs)

    def state(self, cid: str) -> dict[str, Any]:
        proc = self("state", cid, check=True)
        return json.loads(proc.stdout)

    def status(self, cid: str) -> str | None:
        proc = self("state", cid)
        if proc.returncode != 0:
            return None
        return json.loads(proc.stdout)["status"]

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: str | None = None
        while time.monotonic() < deadline:
            proc = self("state", cid)
            if proc.returncode == 0:
                state = json.loads(proc.stdout)
                last = state["status"]
                if last == want:
                    return state
            time.sleep(0.05)
        raise AssertionError(f"container {cid} did not become {want!r} (last status {last!r})")


@pytest.fixture
def pyrunc(root: Path) -> Pyrunc:
    return Pyrunc(root)


# --- host observations --------------------------------------------------------------


def host_mounts() -> set[str]:
    """This (the host's) mount table, without the mount ids that make each line unique."""
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            out.add(" ".join(fields[2:]))  # drop mount id and parent id
    return out


def new_mounts_under(before: set[str], *paths: Path) -> list[str]:
    """Host mounts that appeared since `before` and involve one of `paths`. Every mount pyrunc
    makes targets the bundle's rootfs, so a leak shows up there; filtering keeps the check
    immune to other test sessions mounting things on this machine at the same time."""
    return sorted(m for m in host_mounts() - before if any(str(p) in m for p in paths))


def other_pidns_processes() -> dict[tuple[int, str], dict[str, str]]:
    """Processes in a pid namespace other than ours: (pid, start time) -> cmdline and root."""
    ours = os.readlink("/proc/self/ns/pid")
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") == ours:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            rootlink = os.readlink(f"/proc/{name}/root")
        except OSError:
            continue
        start = stat[stat.rfind(b")") + 2 :].split()[19].decode()
        out[(int(name), start)] = {"cmdline": cmd, "root": rootlink}
    return out


def new_processes_of(
    before: dict[tuple[int, str], dict[str, str]], *marks: Path
) -> list[tuple[int, dict[str, str]]]:
    """Processes in other pid namespaces that appeared since `before` and belong to this test:
    their command line names one of `marks` (the --root of a pyrunc that was cloned) or their
    root directory is inside one (a container init that pivoted into our bundle). Other test
    sessions may run containers on this machine at the same time: theirs do not count."""
    found = []
    for key, info in other_pidns_processes().items():
        if key in before:
            continue
        if any(str(m) in info["cmdline"] or info["root"].startswith(str(m)) for m in marks):
            found.append((key[0], info))
    return found


_TEXT_ERROR = re.compile(r'time="[^"]*" level=error msg="((?:[^"\\]|\\.)*)"')


def error_message(stderr: str) -> str:
    """The message of the single `time=... level=error msg="..."` line pyrunc prints on stderr."""
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one error line on stderr, got {lines}"
    m = _TEXT_ERROR.fullmatch(lines[0])
    assert m, f"not a runc-style error line: {lines[0]!r}"
    return re.sub(r"\\(.)", lambda e: {"n": "\n", "t": "\t"}.get(e[1], e[1]), m[1])


def pid_alive(pid: int) -> bool:
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


@pytest.fixture(scope="session")
def state_validator() -> Any:
    """A validator for runtime-spec's state-schema.json (its $refs resolved from the dir)."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    if not (SCHEMA_DIR / "state-schema.json").is_file():
        pytest.skip(f"runtime-spec schema not found at {SCHEMA_DIR}")

    def retrieve(uri: str) -> Any:
        path = SCHEMA_DIR / uri.rsplit("/", 1)[-1].split("#", 1)[0]
        return referencing.Resource.from_contents(
            json.loads(path.read_text()), default_specification=DRAFT4
        )

    registry = referencing.Registry(retrieve=retrieve)
    schema = json.loads((SCHEMA_DIR / "state-schema.json").read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    return validator_cls(schema, registry=registry)
