"""Support for the client integration tests (podman, containerd): running a client on a pty,
the pyrunc executable a client is given, an OCI image built with umoci, and the clean-up of
what the clients leave on the host (mounts, processes, netavark rules, directories, cgroups).

Everything here is plain host plumbing; the scenarios are in test_podman.py and
test_containerd.py.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from conftest import REPO

from pyrunc import mountinfo

RUNTIMES = ("pyrunc", "runc")
ROWS, COLS = 33, 111  # the terminal size the pty tests ask for


# --- commands ----------------------------------------------------------------------


def run_cmd(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    check: bool = False,
    stdin: Any = subprocess.DEVNULL,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run a client to completion, stdout and stderr into files: a detached container (or a
    daemon such as conmon or a shim) may keep an inherited pipe open for ever."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdin=stdin, stdout=out, stderr=err, env=env, **kwargs)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(
            argv, rc, out.read().decode(errors="replace"), err.read().decode(errors="replace")
        )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def _become_session_leader_with_ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_in_pty(
    argv: list[str],
    *,
    env: dict[str, str] | None = None,
    rows: int = ROWS,
    cols: int = COLS,
    timeout: float = 60,
) -> tuple[int, str]:
    """Run a client with a new pty (of rows x cols) as its controlling terminal and stdio, as a
    person at a terminal would; returns its exit status and everything it wrote ("\\r" gone)."""
    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=_become_session_leader_with_ctty,
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError(
                    f"{' '.join(argv)} did not finish in {timeout}s on a pty; output: "
                    + b"".join(chunks).decode(errors="replace")
                )
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every holder of the peer closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # exited and nothing more to read right now: drain what is left, then stop
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                    break
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        os.close(master)
    return rc, b"".join(chunks).decode(errors="replace").replace("\r", "")


# --- the pyrunc a client runs --------------------------------------------------------


def launcher_package(script: Path) -> Path | None:
    """The pyrunc/__init__.py that the `pyrunc` launcher `script` runs (its Python's verbose
    import log names it), or None when it does not run."""
    if not os.access(script, os.X_OK):
        return None
    env = dict(os.environ, PYTHONVERBOSE="1")
    env.pop("PYTHONPATH", None)
    probe = run_cmd([str(script), "--version"], env=env, cwd="/", timeout=30)
    for line in probe.stderr.splitlines():
        # "# .../pyrunc/__pycache__/__init__...pyc matches .../pyrunc/__init__.py", or
        # "# code object from '.../pyrunc/__init__.py'"
        words = line.replace("'", " ").split()
        if probe.returncode == 0 and words and words[-1].endswith("/pyrunc/__init__.py"):
            return Path(words[-1])
    return None


def pyrunc_executable(tmp: Path) -> Path:
    """The absolute path of a `pyrunc` executable for podman and containerd's shim, which run
    it without PATH: the launcher installed beside this interpreter, as a user would
    configure it, when it runs this checkout; else (another checkout installed in editable
    mode) a script in `tmp` that imports pyrunc from this checkout."""
    script = Path(sys.executable).parent / "pyrunc"
    if launcher_package(script) == REPO / "pyrunc/__init__.py":
        return script
    wrapper = tmp / "pyrunc"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from pyrunc.cli import main\n"
        "sys.exit(main())\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def runtime_binary(runtime: str, pyrunc: Path) -> str:
    if runtime == "pyrunc":
        return str(pyrunc)
    path = shutil.which(runtime)
    assert path, f"{runtime} is not installed: bash tests/setup.sh"
    return path


# --- images --------------------------------------------------------------------------


def build_oci_archive(rootfs: Path, work: Path, *, cmd: str = "sh") -> Path:
    """An OCI image archive (a tar of an OCI image layout, ref name `latest`) holding `rootfs`
    as its one layer, made with umoci; for `ctr images import --base-name NAME`."""
    layout = work / "oci-layout"
    image = f"{layout}:latest"
    for argv in (
        ["umoci", "init", "--layout", str(layout)],
        ["umoci", "new", "--image", image],
        ["umoci", "insert", "--image", image, str(rootfs), "/"],
        [
            "umoci", "config", "--image", image,
            "--config.cmd", cmd,
            "--config.env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--config.workingdir", "/",
        ],
        ["umoci", "gc", "--layout", str(layout)],
    ):
        run_cmd(argv, check=True, timeout=120)
    archive = work / "busybox-oci.tar"
    run_cmd(["tar", "-C", str(layout), "-cf", str(archive), "."], check=True, timeout=120)
    shutil.rmtree(layout)
    return archive


def rootfs_tarball(rootfs: Path, dest: Path) -> Path:
    """A plain tar of `rootfs`, for `podman import`."""
    run_cmd(["tar", "-C", str(rootfs), "-cf", str(dest), "."], check=True, timeout=120)
    return dest


# --- cleaning up the host ------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
MNT_DETACH = 2


def mount_points() -> list[str]:
    return [m.mount_point for m in mountinfo.read()]


def unmount_under(path: Path) -> list[str]:
    """Detach every mount at or below `path`, deepest first; returns what was unmounted."""
    prefix = str(path).rstrip("/") + "/"
    done = []
    for _ in range(5):  # stacked mounts come back one layer at a time
        targets = sorted(
            {m for m in mount_points() if m == str(path) or m.startswith(prefix)},
            key=lambda m: m.count("/"),
            reverse=True,
        )
        if not targets:
            break
        for target in targets:
            if _libc.umount2(target.encode(), MNT_DETACH) == 0:
                done.append(target)
    return done


def is_mount_point(path: str) -> bool:
    return path in mount_points()


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (never this process)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(name))
    return found


def kill_processes_mentioning(text: str) -> list[int]:
    pids = processes_mentioning(text)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return pids


def delete_runtime_leftovers(binary: str, root: Path, mentioning: str | None = None) -> list[str]:
    """`delete --force` every container of a runtime's state root (only those whose state names
    `mentioning`, when given: the default roots are shared with other users)."""
    deleted = []
    if not root.is_dir():
        return deleted
    for entry in sorted(root.iterdir()):
        state = entry / "state.json"
        if mentioning is not None:
            try:
                if mentioning not in state.read_text(errors="replace"):
                    continue
            except OSError:
                continue
        try:
            run_cmd([binary, "--root", str(root), "delete", "--force", entry.name], timeout=30)
        except subprocess.TimeoutExpired:
            pass
        deleted.append(entry.name)
    return deleted


def cgroup_mounts() -> list[str]:
    return [m.mount_point for m in mountinfo.read() if m.fstype in ("cgroup", "cgroup2")]


def _iptables_rules(cmd: str) -> dict[str, list[str]]:
    """table -> its chain declarations (":NAME") and rules ("-A ...") as iptables-save shows."""
    if not shutil.which(cmd):
        return {}
    proc = run_cmd([cmd], timeout=30)
    tables: dict[str, list[str]] = {}
    table = None
    for line in proc.stdout.splitlines():
        if line.startswith("*"):
            table = line[1:]
            tables[table] = []
        elif table and (line.startswith(":") or line.startswith("-A ")):
            tables[table].append(line.split(" [", 1)[0] if line.startswith(":") else line)
    return tables


class HostState:
    """What a client may leave behind outside its temporary directory, seen before a test
    session, so that teardown can remove what appeared (and only that):
    - directories it creates in fixed places (`paths`), removed when they did not exist before
      (with their content for `purge_paths`, else only when empty);
    - cgroup directories named in `cgroups` (relative to every hierarchy), removed when empty;
    - a mount that podman puts on /run/netns, netavark's iptables chains and rules, its
      net.ipv4.ip_forward setting and its IPAM database (/run/containers/networks: podman
      keeps it there whatever its storage), undone once no netavark bridge is left
      (`bridges`), so that a podman running elsewhere on the machine keeps them."""

    def __init__(
        self,
        *,
        paths: tuple[str, ...] = (),
        purge_paths: tuple[str, ...] = (),
        cgroups: tuple[str, ...] = (),
        netavark: bool = False,
        bridges: tuple[str, ...] = ("podman0",),
    ) -> None:
        self.netavark_run_dir = os.path.lexists("/run/containers/networks")
        self.paths = {p: os.path.lexists(p) for p in (*paths, *purge_paths)}
        self.purge = set(purge_paths)
        self.cgroups = {
            os.path.join(m, c): os.path.isdir(os.path.join(m, c))
            for m in cgroup_mounts()
            for c in cgroups
        }
        self.netavark = netavark
        self.bridges = bridges
        self.netns_mounted = is_mount_point("/run/netns")
        self.iptables = {cmd: _iptables_rules(cmd) for cmd in ("iptables-save", "ip6tables-save")}
        self.ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()

    def _bridge_in_use(self) -> bool:
        return any(os.path.exists(f"/sys/class/net/{b}") for b in self.bridges)

    def restore(self) -> list[str]:
        """Undo what appeared; returns what it did (for a failure message)."""
        done = []
        if self.netavark and not self._bridge_in_use():
            done += self._restore_netavark()
        for path, existed in sorted(self.cgroups.items(), key=lambda kv: -len(kv[0])):
            if not existed and os.path.isdir(path):
                # leaf first: a container cgroup the runtime left, then the parent
                for sub, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(sub)
                        done.append(f"rmdir {sub}")
                    except OSError:
                        pass
        for path, existed in sorted(self.paths.items(), key=lambda kv: -len(kv[0])):
            if existed or not os.path.lexists(path):
                continue
            if path in self.purge:
                unmount_under(Path(path))
                shutil.rmtree(path, ignore_errors=True)
                done.append(f"removed {path}")
            else:
                for sub, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(sub)
                        done.append(f"rmdir {sub}")
                    except OSError:
                        pass
        return done

    def _restore_netavark(self) -> list[str]:
        done = []
        if (
            not self.netns_mounted
            and is_mount_point("/run/netns")
            and not os.listdir("/run/netns")
            and _libc.umount2(b"/run/netns", MNT_DETACH) == 0
        ):
            done.append("umount /run/netns")
        for save, before in self.iptables.items():
            cmd = save.replace("-save", "")
            after = _iptables_rules(save)
            for table, lines in after.items():
                old = set(before.get(table, ()))
                new_rules = [x for x in lines if x.startswith("-A ") and x not in old]
                new_chains = [x[1:].split()[0] for x in lines if x.startswith(":") and x not in old]
                for rule in reversed(new_rules):
                    args = ["-t", table, "-D", *_split_rule(rule[3:])]
                    if run_cmd([cmd, *args], timeout=30).returncode == 0:
                        done.append(f"{cmd} {' '.join(args)}")
                for chain in new_chains:
                    run_cmd([cmd, "-t", table, "-F", chain], timeout=30)
                for chain in new_chains:
                    if run_cmd([cmd, "-t", table, "-X", chain], timeout=30).returncode == 0:
                        done.append(f"{cmd} -t {table} -X {chain}")
        if not self.netavark_run_dir and os.path.isdir("/run/containers/networks"):
            shutil.rmtree("/run/containers/networks", ignore_errors=True)
            done.append("removed /run/containers/networks")
        forward = Path("/proc/sys/net/ipv4/ip_forward")
        if forward.read_text().strip() != self.ip_forward:
            forward.write_text(self.ip_forward)
            done.append(f"net.ipv4.ip_forward = {self.ip_forward}")
        return done


def _split_rule(rule: str) -> list[str]:
    """An iptables-save rule as arguments (quoted strings, e.g. comments, kept whole)."""
    return shlex.split(rule)


def wait_until(predicate: Any, timeout: float = 10, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something true; returns it (or the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def state_of(binary: str, cid: str, root: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [binary] + (["--root", root] if root else []) + ["state", cid]
    return run_cmd(argv, timeout=30)


def json_or_fail(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise AssertionError(f"not JSON ({e}): {text!r}") from e
