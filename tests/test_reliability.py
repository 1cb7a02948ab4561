"""Issue 13: nothing lost and nothing leaked under full disks, crashes, damaged state, signals,
odd input and closed stdio. Real containers throughout; the fault injection is scaled down
(20 trials, not 200) to keep this module within a couple of minutes.

"Nothing left on the host" is checked the same way everywhere (`Leftovers`): no entry under the
state root, no cgroup of the container's id in any hierarchy, no process of this test in another
pid namespace, no mount under the root or the bundle.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO,
    Bundle,
    Pyrunc,
    _cli_args,
    error_message,
    host_mounts,
    new_id,
    new_mounts_under,
    new_processes_of,
    other_pidns_processes,
    pid_alive,
)

from pyrunc.cgroups import layout as layout_mod
from pyrunc.cgroups import paths
from pyrunc.procfs import process_alive, read_proc_stat

PAGE = os.sysconf("SC_PAGE_SIZE")


def cgroup_dirs(root: Path, cid: str) -> list[str]:
    """The container's cgroup (pyrunc's own naming for this root and id) wherever it exists."""
    path = paths.resolve(None, cid, str(root))
    return [h.dir(path) for h in layout_mod.detect().hierarchies if os.path.isdir(h.dir(path))]


class Leftovers:
    """What a test made on the host, seen from before it started."""

    def __init__(self, root: Path, bundle: Bundle | Path) -> None:
        self.root = root
        self.bundle = Path(str(bundle))
        self.mounts = host_mounts()
        self.procs = other_pidns_processes()

    def check(self, *ids: str) -> None:
        left = sorted(os.listdir(self.root)) if self.root.is_dir() else []
        assert not left, f"left under --root: {left}"
        for cid in ids:
            assert not cgroup_dirs(self.root, cid), f"cgroups left: {cgroup_dirs(self.root, cid)}"
        deadline = time.monotonic() + 5
        while (procs := new_processes_of(self.procs, self.root, self.bundle)) and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs, f"processes left: {procs}"
        assert not new_mounts_under(self.mounts, self.root, self.bundle)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    return error_message(proc.stderr)


def sleeper(bundle: Bundle) -> Bundle:
    return bundle.set_args("sleep", "1000")


# --- 1. a full disk -------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs of our own, unmounted (after a force-delete of anything in it) at the
    end."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mnt)],
                   check=True)
    try:
        yield mnt
    finally:
        root = mnt / "root"
        for cid in os.listdir(root) if root.is_dir() else []:
            subprocess.run(_cli_args(root, ("delete", "--force", cid)), capture_output=True,
                           timeout=30)
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path, leave_pages: int) -> None:
    """Fill the filesystem, then free exactly `leave_pages` pages."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        chunk = b"\0" * PAGE
        while True:
            try:
                if os.write(fd, chunk) < len(chunk):
                    break
            except OSError as e:
                assert e.errno == errno.ENOSPC
                break
        size = os.fstat(fd).st_size
        os.ftruncate(fd, max(0, size - size % PAGE - leave_pages * PAGE))
    finally:
        os.close(fd)
    assert os.statvfs(mnt).f_bavail == leave_pages


def test_full_disk_create_fails_whole_or_succeeds_whole(
    small_tmpfs: Path, bundle: Bundle
) -> None:
    """State bigger than a page (long annotations), a long id, and 0.. free pages: every
    create either works end to end (state, list, delete) or fails with one line naming the
    file that did not fit and leaves nothing at all, never a truncated state."""
    root = small_tmpfs / "root"
    root.mkdir(mode=0o700)
    cli = Pyrunc(root)
    sleeper(bundle)
    bundle.config["annotations"] = {"org.example.big": "x" * 5000}
    bundle.write()
    outcomes = []
    for free in (0, 1, 2, 3, 4, 5, 6, 8, 12):
        (small_tmpfs / "filler").unlink(missing_ok=True)
        fill(small_tmpfs, free)
        cid = new_id("relfull") + "-" + "l" * 150
        leftovers = Leftovers(root, bundle)
        proc = cli("create", "-b", bundle, cid)
        if proc.returncode == 0:
            outcomes.append("ok")
            state = cli.state(cid)
            assert state["status"] == "created"
            assert state["annotations"]["org.example.big"] == "x" * 5000
            listed = json.loads(cli("list", "-f", "json", check=True).stdout)
            assert [c["id"] for c in listed] == [cid]
            cli("delete", "--force", cid, check=True)
        else:
            outcomes.append("fail")
            assert proc.returncode == 1
            msg = one_line_error(proc)
            assert "no space left on device" in msg, msg
            assert str(root / cid) in msg, msg  # names the file
        leftovers.check(cid)
    assert "ok" in outcomes and "fail" in outcomes, outcomes


# --- 2. signals to a foreground run ------------------------------------------------------


def test_signals_right_after_start_reach_the_container(pyrunc: Pyrunc, bundle: Bundle) -> None:
    """TERM, INT and HUP sent to `pyrunc run` at random moments once it began to create the
    container (its state directory appeared): run never dies of them, each reaches the
    container (whose trap exits 42; before the shell set its trap, the init exits 128+sig or
    ignores it, so the signal is sent again), run returns the container's status and nothing
    stays behind. (Before the interpreter runs pyrunc's first line, a signal ends it, as one
    ends runc before its Go runtime is up.)"""
    bundle.sh("trap 'exit 42' TERM INT HUP; while :; do sleep 0.02; done")
    rnd = random.Random(13)
    sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for trial in range(20):
        sig = sigs[trial % 3]
        cid = new_id("relsig")
        leftovers = Leftovers(pyrunc.root, bundle)
        run = pyrunc.start_background("run", "-b", bundle, cid)
        deadline = time.monotonic() + 20
        while not (pyrunc.root / cid).exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rnd.uniform(0, 0.15))
        while run.proc.poll() is None and time.monotonic() < deadline:
            run.proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.proc.wait(0.3)
        result = run.wait(5)
        assert result.returncode in (42, 128 + sig), (trial, sig, result)
        assert "Traceback" not in result.stderr and not result.stderr.strip(), result.stderr
        leftovers.check(cid)


# --- 3. crashes: intent, derivable cgroups, stale cgroups ------------------------------------


def test_create_killed_after_making_cgroups_is_cleaned_by_delete_force(
    pyrunc: Pyrunc, bundle: Bundle, tmp_path: Path
) -> None:
    """A create SIGKILLed while its createRuntime hook runs (the cgroups exist by then, the
    state file does not): `delete --force` removes exactly what it made."""
    marker = tmp_path / "hook-ran"
    bundle.config["hooks"] = {"createRuntime": [{
        "path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {marker}; exec sleep 5"]}]}
    sleeper(bundle)
    cid = new_id("relkill")
    leftovers = Leftovers(pyrunc.root, bundle)
    create = pyrunc.start_background("create", "-b", bundle, cid)
    deadline = time.monotonic() + 15
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), create.wait(1)
    assert cgroup_dirs(pyrunc.root, cid), "the create had not made its cgroups"
    hook = int(marker.read_text())
    hook_start = read_proc_stat(hook)
    assert hook_start is not None
    create.proc.kill()
    create.wait(5)
    try:
        proc = pyrunc("delete", "--force", cid)
        assert proc.returncode == 0, proc.stderr
        leftovers.check(cid)
        # the hook the killed create was waiting for is killed too (its pid is in the intent)
        assert not process_alive(hook, hook_start[1]), "the hook outlived delete --force"
    finally:
        if process_alive(hook, hook_start[1]):
            os.kill(hook, signal.SIGKILL)


def test_create_takes_over_a_stale_empty_cgroup_of_its_own(
    pyrunc: Pyrunc, bundle: Bundle
) -> None:
    """An empty cgroup at the container's derived path (a crashed create left it) is reused
    and removed by the next create + delete of that id."""
    cid = new_id("relstale")
    path = paths.resolve(None, cid, str(pyrunc.root))
    hierarchies = layout_mod.detect().hierarchies
    made = []
    for h in hierarchies:
        d = h.dir(path)
        os.makedirs(d, exist_ok=True)
        made.append(d)
    try:
        leftovers = Leftovers(pyrunc.root, bundle)
        sleeper(bundle)
        pyrunc("create", "-b", bundle, cid, check=True)
        pyrunc("delete", "--force", cid, check=True)
        leftovers.check(cid)
    finally:
        for d in made:
            with contextlib.suppress(OSError):
                os.rmdir(d)


@pytest.mark.parametrize("damage", ["truncate", "remove-state", "remove-state-and-intent"])
def test_delete_force_without_readable_state_kills_and_removes(
    pyrunc: Pyrunc, bundle: Bundle, damage: str
) -> None:
    """Running container, then its state half-written or gone (and its intent too: the
    cgroup path is derived from root and id): delete --force still kills it, removes its
    cgroups and its directory."""
    sleeper(bundle)
    cid = new_id("reldmg")
    leftovers = Leftovers(pyrunc.root, bundle)
    pyrunc("run", "-d", "-b", bundle, cid, check=True)
    pid = pyrunc.state(cid)["pid"]
    state_file = pyrunc.root / cid / "state.json"
    if damage == "truncate":
        data = state_file.read_bytes()
        state_file.write_bytes(data[: len(data) // 2])
    else:
        state_file.unlink()
        if damage == "remove-state-and-intent":
            (pyrunc.root / cid / "intent.json").unlink()
    proc = pyrunc("delete", "--force", cid)
    assert proc.returncode == 0, proc.stderr
    assert not pid_alive(pid)
    leftovers.check(cid)


# --- 4. damaged state files -----------------------------------------------------------------


def _damage(state_file: Path, kind: str) -> None:
    good = state_file.read_bytes()
    state_file.unlink()
    if kind == "fifo":
        os.mkfifo(state_file)
    elif kind == "symlink":
        copy = state_file.parent.parent.parent / f"copy-{state_file.parent.name}.json"
        copy.write_bytes(good)
        state_file.symlink_to(copy)
    elif kind == "missing":
        pass
    elif kind == "truncated":
        state_file.write_bytes(good[:100])
    elif kind == "directory":
        state_file.mkdir()
    else:
        state_file.write_text(kind)


DAMAGE = ["null", "[]", "{}", '{"id": 5}', '"x"', "truncated", "fifo", "missing", "symlink",
          "directory"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_state(pyrunc: Pyrunc, bundle: Bundle, kind: str) -> None:
    """One container's state damaged: `state` says so in one line naming the file, `list`
    shows it `unknown` and the healthy one normally, and `delete --force` cleans it up
    (process, cgroups, directory)."""
    sleeper(bundle)
    bad, good = new_id("relbad"), new_id("relgood")
    leftovers = Leftovers(pyrunc.root, bundle)
    pyrunc("run", "-d", "-b", bundle, bad, check=True)
    pyrunc("create", "-b", bundle, good, check=True)
    pid = pyrunc.state(bad)["pid"]
    state_file = pyrunc.root / bad / "state.json"
    _damage(state_file, kind)

    proc = pyrunc("state", bad, timeout=10)
    assert proc.returncode == 1
    msg = one_line_error(proc)
    if kind == "missing":
        assert "does not exist" in msg
    else:
        assert str(state_file) in msg, msg

    proc = pyrunc("list", "-f", "json", timeout=10)
    assert proc.returncode == 0, proc.stderr
    listed = {c["id"]: c["status"] for c in json.loads(proc.stdout)}
    assert listed == {bad: "unknown", good: "created"}
    table = pyrunc("list", timeout=10, check=True).stdout
    assert any(line.split()[:3] == [bad, "0", "unknown"] for line in table.splitlines()), table

    proc = pyrunc("delete", "--force", bad, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert not pid_alive(pid)
    assert not cgroup_dirs(pyrunc.root, bad)
    assert pyrunc.status(good) == "created"
    pyrunc("delete", "--force", good, check=True)
    for f in pyrunc.root.parent.glob("copy-*.json"):
        f.unlink()
    leftovers.check(bad, good)


@pytest.mark.parametrize("kind", ["fifo", "list", "symlink"])
def test_damaged_network_record(pyrunc: Pyrunc, bundle: Bundle, tmp_path: Path,
                                kind: str) -> None:
    """A damaged network.json (the network's record beside state.json) is read as a state file
    is: never blocking on a FIFO, never through a symlink, validated. `delete --force` kills
    the container, says what it could not remove in one line naming the file (exit 1); once the
    file is gone, the next one finishes."""
    sleeper(bundle)
    cid = new_id("relnet")
    leftovers = Leftovers(pyrunc.root, bundle)
    pyrunc("create", "-b", bundle, cid, check=True)
    record = pyrunc.root / cid / "network.json"
    if kind == "fifo":
        os.mkfifo(record, 0o600)
    elif kind == "list":
        record.write_text("[]")
    else:
        (tmp_path / "elsewhere.json").write_text("{}")
        record.symlink_to(tmp_path / "elsewhere.json")
    proc = pyrunc("delete", "--force", cid, timeout=20)
    assert proc.returncode == 1, proc.stderr
    assert "network.json" in one_line_error(proc), proc.stderr
    record.unlink()
    proc = pyrunc("delete", "--force", cid, timeout=20)
    assert proc.returncode == 0, proc.stderr
    leftovers.check(cid)


def test_delete_force_says_what_it_could_not_remove(pyrunc: Pyrunc, bundle: Bundle) -> None:
    """A damaged container whose cgroup cannot be removed (a mount on a sub-cgroup keeps it
    busy): exit 1 naming what is left; the directory stays, and a later delete --force
    finishes the job."""
    sleeper(bundle)
    cid = new_id("relstuck")
    pyrunc("run", "-d", "-b", bundle, cid, check=True)
    (pyrunc.root / cid / "state.json").write_text("null")
    unified = next((d for d in cgroup_dirs(pyrunc.root, cid) if "unified" in d), None)
    if unified is None:
        pytest.skip("no cgroup2 hierarchy")
    busy = Path(unified) / "busy"
    busy.mkdir()
    mnt_target = busy
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mnt_target)], check=False)
    try:
        mounted = any(str(mnt_target) in m for m in host_mounts())
        if not mounted:
            pytest.skip("cannot mount over a cgroup directory here")
        proc = pyrunc("delete", "--force", cid, timeout=20)
        assert proc.returncode == 1
        msg = one_line_error(proc)
        assert "could not remove" in msg and str(busy) in msg, msg
        assert (pyrunc.root / cid).is_dir()
    finally:
        subprocess.run(["umount", "-l", str(mnt_target)], check=False)
    pyrunc("delete", "--force", cid, check=True)
    assert not cgroup_dirs(pyrunc.root, cid)


# --- 5. odd input, closed stdio, the last resort ---------------------------------------------


@pytest.mark.parametrize(
    ("where", "value", "path"),
    [
        (("process", "args", 0), "sl\0eep", "process.args[0]"),
        (("process", "env", 0), "A=\udc80", "process.env[0]"),
        (("process", "cwd"), "/t\0mp", "process.cwd"),
        (("hostname",), "h\ud800", "hostname"),
        (("mounts", 0, "destination"), "/pr\0oc", "mounts[0].destination"),
        (("mounts", 0, "options"), ["nosuid\0"], "mounts[0].options[0]"),
        (("linux", "sysctl"), {"kernel.domainname": "a\0b"}, "linux.sysctl"),
        (("annotations",), {"k\ud800": "v"}, "annotations"),
    ],
)
def test_nul_and_surrogates_in_config_strings(
    pyrunc: Pyrunc, bundle: Bundle, where: tuple, value: Any, path: str
) -> None:
    target: Any = bundle.config
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    bundle.config_path.write_text(json.dumps(bundle.config))  # ensure_ascii: \u0000, \ud800
    cid = new_id("relnul")
    leftovers = Leftovers(pyrunc.root, bundle)
    proc = pyrunc("create", "-b", bundle, cid)
    assert proc.returncode == 1
    msg = one_line_error(proc)
    assert msg.startswith(f"config.json: {path}"), msg
    assert "NUL byte" in msg or "lone surrogate" in msg, msg
    leftovers.check(cid)


def _fds_script() -> str:
    return ('x=""; for f in 0 1 2; do x="$x $f=$(readlink /proc/$$/fd/$f)"; done; '
            'echo "fds:$x" > /report/fds; echo out; echo err >&2; exit 3')


@pytest.mark.parametrize("closed", [(0,), (1,), (2,), (0, 1), (1, 2), (0, 1, 2)])
def test_closed_stdio_becomes_dev_null(
    pyrunc: Pyrunc, bundle: Bundle, tmp_path: Path, closed: tuple[int, ...]
) -> None:
    """The caller closed some of fds 0-2: the container gets /dev/null for each (as with
    runc), never the runtime's other files, and run's status is still the container's."""
    report = tmp_path / "report"
    report.mkdir()
    bundle.add_mount("/report", "bind", str(report), ["rbind", "rw"])
    bundle.sh(_fds_script())
    cid = new_id("relstdio")
    out, err = tmp_path / "out", tmp_path / "err"
    args = _cli_args(pyrunc.root, ("run", "-b", bundle, cid))
    with open(out, "wb") as fo, open(err, "wb") as fe, open(os.devnull, "rb") as fi:
        wanted = {0: fi.fileno(), 1: fo.fileno(), 2: fe.fileno()}

        def child() -> None:  # runs in the forked child: put 0-2 in place, then close some
            for target, fd in wanted.items():
                os.dup2(fd, target)
            for fd in closed:
                os.close(fd)

        proc = subprocess.run(args, preexec_fn=child, close_fds=True, timeout=30)
    assert proc.returncode == 3
    names = {0: os.devnull, 1: str(out), 2: str(err)}
    line = (report / "fds").read_text()
    fds = dict(item.split("=", 1) for item in line.split(":", 1)[1].split())
    for fd in (0, 1, 2):
        want = "/dev/null" if fd in closed else names[fd]
        assert fds[str(fd)] == want, (closed, fds)
    assert out.read_text() == ("" if 1 in closed else "out\n")
    assert err.read_text() == ("" if 2 in closed else "err\n")  # the container's, nothing else
    assert not os.listdir(pyrunc.root)


def test_last_resort_handler(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
                             tmp_path: Path) -> None:
    """An exception no code path expected (here: one injected into the state command, the
    only way to have a bug on purpose) is one runc-style line, exit 1 (255 for exec), on
    stderr and in --log; never a traceback."""
    from pyrunc import cli
    from pyrunc.commands import exec as exec_cmd
    from pyrunc.commands import state as state_cmd

    def boom(args: Any) -> int:
        raise KeyError("surprise\nsecond line")

    monkeypatch.setattr(state_cmd, "run", boom)
    monkeypatch.setattr(exec_cmd, "run", boom)
    log = tmp_path / "log.json"
    assert cli.dispatch(["--root", str(tmp_path), "--log", str(log), "--log-format", "json",
                         "state", "x"]) == 1
    assert cli.dispatch(["--root", str(tmp_path), "state", "x"]) == 1
    assert cli.dispatch(["--root", str(tmp_path), "exec", "x", "true"]) == 255
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[0] == "pyrunc: internal error: KeyError: 'surprise\\nsecond line'"
    assert error_message(lines[1] + "\n").startswith("pyrunc: internal error: KeyError")
    record = json.loads(log.read_text())
    assert record["level"] == "error" and record["msg"].startswith("pyrunc: internal error")


# --- fuzz: configs and state files ------------------------------------------------------------

JUNK_VALUES: list[Any] = [None, True, 0, -1, 2**64, 1.5, "", "x\0y", "\ud800", "../..", [],
                          {}, ["a"], {"a": 1}, "/" * 300, "\u00e9", "-1"]


def _mutate_config(rnd: random.Random, config: dict[str, Any]) -> None:
    """Replace, delete or add 1-3 values anywhere in the document."""
    for _ in range(rnd.randint(1, 3)):
        node: Any = config
        for _depth in range(rnd.randint(1, 5)):
            if isinstance(node, dict) and node:
                key = rnd.choice(list(node))
                if not isinstance(node[key], (dict, list)) or rnd.random() < 0.3:
                    break
                node = node[key]
            elif isinstance(node, list) and node:
                key = rnd.randrange(len(node))
                if not isinstance(node[key], (dict, list)) or rnd.random() < 0.3:
                    break
                node = node[key]
            else:
                break
        else:
            pass
        if isinstance(node, dict):
            key = rnd.choice(list(node)) if node and rnd.random() < 0.8 else "extra"
            if rnd.random() < 0.15:
                node.pop(key, None)
            else:
                node[key] = rnd.choice(JUNK_VALUES)
        elif isinstance(node, list) and node:
            node[rnd.randrange(len(node))] = rnd.choice(JUNK_VALUES)


def _random_state(rnd: random.Random, good: bytes) -> bytes:
    doc = json.loads(good)
    choice = rnd.randrange(6)
    if choice == 0:
        return good[: rnd.randrange(len(good))]
    if choice == 1:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(64)))
    if choice == 2:
        return json.dumps(rnd.choice(JUNK_VALUES)).encode()
    # a well-formed document with one field wrong
    target = doc if choice < 4 else doc["pyrunc"]
    key = rnd.choice(list(target) + ["cgroup"])
    target[key] = rnd.choice(JUNK_VALUES)
    if choice == 5 and isinstance(doc["pyrunc"].get("cgroup"), dict):
        doc["pyrunc"]["cgroup"]["dirs"] = rnd.choice([[{"key": 1}], "x", [None], [{}]])
    return json.dumps(doc).encode()


def _assert_clean_result(proc: subprocess.CompletedProcess[str], allowed: tuple[int, ...],
                         what: str) -> None:
    assert proc.returncode in allowed, (what, proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, \
        (what, proc.stderr)
    if proc.returncode != 0:
        error_message(proc.stderr)  # exactly one runc-style line


def test_fuzz_configs_and_state_files(pyrunc: Pyrunc, bundle: Bundle) -> None:
    """Seeded: 30 mutated configs through create/delete, 12 damaged state files through
    state/list/kill/exec/delete -f. Exit 0 or 1 (255 for exec), one-line errors, no traceback,
    nothing left on the host."""
    rnd = random.Random(1313)
    sleeper(bundle)
    original = json.loads(json.dumps(bundle.config))
    leftovers = Leftovers(pyrunc.root, bundle)
    ids = []
    for i in range(30):
        config = json.loads(json.dumps(original))
        _mutate_config(rnd, config)
        config["root"] = {"path": str(bundle.rootfs), "readonly": True}  # keep it bootable
        bundle.config_path.write_text(json.dumps(config))
        cid = new_id("relfz")
        ids.append(cid)
        proc = pyrunc("create", "-b", bundle, cid)
        _assert_clean_result(proc, (0, 1), f"create #{i} {json.dumps(config)[:2000]}")
        if proc.returncode == 0:
            _assert_clean_result(pyrunc("delete", "--force", cid), (0,), "delete")
    bundle.config = original
    bundle.write()
    good = new_id("relfzgood")
    pyrunc("create", "-b", bundle, good, check=True)
    ids.append(good)
    for i in range(12):
        cid = new_id("relfzst")
        ids.append(cid)
        pyrunc("create", "-b", bundle, cid, check=True)
        state_file = pyrunc.root / cid / "state.json"
        state_file.write_bytes(_random_state(rnd, state_file.read_bytes()))
        for args, allowed in ((("state", cid), (0, 1)), (("list", "-f", "json"), (0,)),
                              (("kill", cid, "KILL"), (0, 1)), (("exec", cid, "true"), (0, 255))):
            _assert_clean_result(pyrunc(*args, timeout=10), allowed, f"{args} #{i}")
        _assert_clean_result(pyrunc("delete", "--force", cid, timeout=20), (0,), f"delete #{i}")
    pyrunc("delete", "--force", good, check=True)
    leftovers.check(*ids)


# --- crash injection -------------------------------------------------------------------------


def test_crash_injection(pyrunc: Pyrunc, bundle: Bundle) -> None:
    """20 trials: SIGKILL create, run or delete at a random moment, then `delete --force`:
    exit 0 and nothing left on the host."""
    rnd = random.Random(2013)
    sleeper(bundle)
    # the kills land anywhere from the interpreter's start to past the command's end
    durations = {}
    for what in ("create", "delete"):
        began = time.monotonic()
        pyrunc(what, *(("-b", bundle) if what == "create" else ("--force",)), "relcrash-t",
               check=True)
        durations[what] = time.monotonic() - began
    durations["run"] = durations["create"]
    for trial in range(20):
        what = ("create", "run", "delete")[trial % 3]
        cid = new_id("relcrash")
        leftovers = Leftovers(pyrunc.root, bundle)
        if what == "delete":
            pyrunc("run", "-d", "-b", bundle, cid, check=True)
            victim = pyrunc.start_background("delete", "--force", cid)
        else:
            victim = pyrunc.start_background(what, "-b", bundle, cid)
        time.sleep(rnd.uniform(0, 1.2 * durations[what]))
        victim.proc.kill()
        victim.wait(10)
        proc = pyrunc("delete", "--force", cid)
        assert proc.returncode == 0, (trial, what, proc.stderr)
        leftovers.check(cid)


def test_state_file_is_regular_and_private(pyrunc: Pyrunc, bundle: Bundle) -> None:
    """The written state: a regular 0600 file, no temporary file left beside it."""
    cid = new_id("relmode")
    sleeper(bundle)
    pyrunc("create", "-b", bundle, cid, check=True)
    st = os.lstat(pyrunc.root / cid / "state.json")
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert not [n for n in os.listdir(pyrunc.root / cid) if n.startswith(".")]


# --- few file descriptors -------------------------------------------------------------------


def _works_with(nofile: int, args: list[str],
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # `ulimit -Sn`: the config's
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))  # rlimits may raise it

    with tempfile.TemporaryFile() as err:  # a file: a created container keeps its stdio open
        proc = subprocess.run(args, preexec_fn=limit, stdout=subprocess.DEVNULL, stderr=err,
                              timeout=30, stdin=subprocess.DEVNULL, env=env)
        err.seek(0)
        return subprocess.CompletedProcess(args, proc.returncode, "", err.read().decode())


def _least_fds(args: list[str], upto: int = 16) -> int | None:
    for n in range(3, upto + 1):
        if _works_with(n, args).returncode == 0:
            return n
    return None


def test_hot_commands_work_with_as_few_fds_as_runc(pyrunc: Pyrunc, bundle: Bundle,
                                                   tmp_path: Path) -> None:
    """`ulimit -n N`: state, list, kill, pause, resume of `python -m pyrunc` work with the
    fewest fds runc needs for the same command (or the fewest this interpreter needs to start
    at all, when that is more), create too, delete with one more (the installed launcher
    raises the limit first: test_launcher_and_run_with_as_few_fds_as_runc)."""
    import shutil

    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    floor = _least_fds([sys.executable, "-c", "pass"])
    assert floor is not None
    sleeper(bundle)
    bundle.config["root"]["path"] = str(bundle.rootfs)  # runc wants it absolute here
    bundle.write()
    runc_root = tmp_path / "runc-root"
    rid, pid_ = new_id("relfdr"), new_id("relfdp")
    subprocess.run([runc, "--root", str(runc_root), "run", "-d", "-b", str(bundle), rid],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL, timeout=30)
    try:
        pyrunc("run", "-d", "-b", bundle, pid_, check=True)
        for command in (["state"], ["list"], ["kill", "-", "WINCH"], ["pause"], ["resume"]):
            def words(cid: str, command: list[str] = command) -> list[str]:
                if command == ["list"]:
                    return ["list"]
                if command[0] == "kill":
                    return ["kill", cid, "WINCH"]
                return [*command, cid]

            need = _least_fds([runc, "--root", str(runc_root), *words(rid)])
            assert need is not None
            limit = max(need, floor)
            proc = _works_with(limit, _cli_args(pyrunc.root, tuple(words(pid_))))
            assert proc.returncode == 0, (command, limit, need, floor, proc.stderr)
        # create raises its soft fd limit to the hard one first (pyrunc.fdlimit), as Go does
        # for runc: the interpreter's own start is the floor
        need = _least_fds([runc, "--root", str(runc_root), "create", "-b", str(bundle),
                           new_id("relfdrc")])  # fmt: skip
        assert need is not None
        proc = _works_with(max(need, floor), _cli_args(pyrunc.root,
                                                       ("create", "-b", bundle, new_id("relfdc"))))
        assert proc.returncode == 0, proc.stderr
        # delete pins each process with a pidfd and checks its start time (S8) while it holds
        # the container's lock: one fd more than runc 1.1.5's unpinned kill(2)
        need = _least_fds([runc, "--root", str(runc_root), "delete", "--force", rid])
        assert need is not None
        proc = _works_with(max(need, floor) + 1,
                           _cli_args(pyrunc.root, ("delete", "--force", pid_)))
        assert proc.returncode == 0, proc.stderr
    finally:
        subprocess.run([runc, "--root", str(runc_root), "delete", "--force", rid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)


def test_launcher_and_run_with_as_few_fds_as_runc(pyrunc: Pyrunc, bundle: Bundle,
                                                   tmp_path: Path) -> None:
    """The installed `pyrunc` (src/launcher.c) raises the soft fd limit to the hard one before
    the interpreter starts, as the Go runtime does for runc: `create`, `start`, `state`, `list`,
    `delete` and `run` work from the fewest fds runc needs for `run`; and the container, whose
    config sets no RLIMIT_NOFILE, gets the same limit with both (runc 1.1.5: the raised one)."""
    import shutil

    runc = shutil.which("runc")
    launcher = Path(sys.executable).parent / "pyrunc"
    if runc is None or not launcher.is_file():
        pytest.skip("needs runc and the pip-installed pyrunc launcher")
    if f"{REPO}\0".encode() not in launcher.read_bytes():
        pytest.skip(f"the installed launcher {launcher} was built from another checkout")
    bundle.config["root"]["path"] = str(bundle.rootfs)
    bundle.config["process"].pop("rlimits", None)
    # written aside and renamed: `start` returns before the container writes it
    bundle.sh("grep 'open files' /proc/self/limits > /limits.tmp && mv /limits.tmp /limits")
    bundle.config["root"]["readonly"] = False
    bundle.write()
    runc_root = tmp_path / "runc-root"

    def runc_run(n: int) -> int:
        return _works_with(n, [runc, "--root", str(runc_root), "run", "-b", str(bundle),
                               new_id("relfdr")]).returncode  # fmt: skip

    need = next((n for n in range(3, 17) if runc_run(n) == 0), None)
    assert need is not None
    runc_limits = (bundle.rootfs / "limits").read_text()
    (bundle.rootfs / "limits").unlink()
    cid = new_id("relfdl")
    env = dict(os.environ, PYTHONPATH=str(REPO))  # this checkout, whichever one is installed
    for args in (("create", "-b", str(bundle), cid), ("start", cid), ("state", cid), ("list",),
                 ("delete", "--force", cid), ("run", "-b", str(bundle), new_id("relfdl"))):
        proc = _works_with(need, [str(launcher), "--root", str(pyrunc.root), *args], env)
        assert proc.returncode == 0, (args, need, proc.stderr)
        if args[0] == "start":
            deadline = time.monotonic() + 10
            while not (bundle.rootfs / "limits").exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert (bundle.rootfs / "limits").read_text() == runc_limits
