"""The Python API (issue 16), through its public names only: pyrunc.Runtime, the Container and
Process handles, pyrunc.spec.model objects, pyrunc.sandbox. No pyrunc.lifecycle imports.

Real containers on the busybox bundle, each test with its own --root (the `root` fixture
checks that nothing is left under it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Bundle

import pyrunc
from pyrunc import Runtime, sandbox
from pyrunc.spec import model as m


@pytest.fixture
def rt(root: Path) -> Runtime:
    # this test process is not the protected interpreter; the bundles grant no CAP_SYS_PTRACE
    return Runtime(str(root), allow_writable_interpreter=True)


def test_create_start_exec_wait_kill_delete_with_captured_output(rt: Runtime, bundle: Bundle
                                                                 ) -> None:  # fmt: skip
    bundle.sh("echo out; echo err >&2; read line; echo got $line; exec sleep 100")
    with rt.create("api1", bundle.path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE) as c:  # fmt: skip
        assert c.status() == "created" and c.pid > 0
        assert c.stdin and c.stdout and c.stderr
        c.start()
        c.stdin.write(b"hello\n")
        c.stdin.close()
        assert c.stdout.readline() == b"out\n"
        assert c.stdout.readline() == b"got hello\n"
        assert c.status() == "running"
        p = c.exec(["sh", "-c", "echo from exec; cat; exit 7"], stdin=subprocess.PIPE,
                   stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert p.communicate("piped in\n", timeout=20) == ("from exec\npiped in\n", None)
        assert p.returncode == 7
        with pytest.raises(subprocess.TimeoutExpired):
            c.wait(0.2)
        c.kill("KILL")
        assert c.wait(20) == 137
        assert c.stderr.read() == b"err\n"
        assert c.status() == "stopped"
        c.delete()
    assert rt.list() == []


def test_exec_env_over_a_config_whose_env_is_null(rt: Runtime, bundle: Bundle) -> None:
    """runtime-spec's JSON takes null for absent: process.env null in the saved config is no
    environment to override, not an internal error."""
    bundle.set_args("/bin/sleep", "100")
    bundle.process["env"] = None
    bundle.write()
    with rt.create("api-nullenv", bundle.path) as c:
        c.start()
        p = c.exec(["/bin/sh", "-c", "echo A=$A"], env={"A": "1"}, stdout=subprocess.PIPE,
                   text=True)
        assert p.communicate(timeout=20) == ("A=1\n", None)
        assert p.returncode == 0


def test_context_manager_deletes_on_exception(rt: Runtime, bundle: Bundle) -> None:
    bundle.set_args("sleep", "100")
    with pytest.raises(RuntimeError), rt.create("api2", bundle.path) as c:
        c.start()
        raise RuntimeError("boom")
    assert rt.list() == [] and c.returncode == 137


def test_run_like_subprocess(rt: Runtime, bundle: Bundle) -> None:
    bundle.sh("cat; echo to-err >&2; exit 3")
    r = rt.run("api3", bundle.path, input="abc\n", capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, "abc\n", "to-err\n")
    with pytest.raises(subprocess.CalledProcessError):
        rt.run("api3", bundle.path, input=b"", stdout=subprocess.DEVNULL, check=True)
    bundle.sh("echo both; echo ways >&2")
    r = rt.run("api3", bundle.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert r.stdout == b"both\nways\n" and r.stderr is None
    with tempfile.TemporaryFile() as f:
        assert rt.run("api3", bundle.path, stdout=f).returncode == 0
        f.seek(0)
        assert f.read() == b"both\n"
    bundle.set_args("sleep", "100")
    with pytest.raises(subprocess.TimeoutExpired):
        rt.run("api3", bundle.path, timeout=0.5)
    assert rt.list() == []


def spec_in_code(rootfs: Path, *args: str) -> m.Spec:
    ns = tuple(m.LinuxNamespace(type=t) for t in ("pid", "mount", "ipc", "uts", "network"))
    return m.Spec(
        oci_version="1.3.0",
        root=m.Root(path=str(rootfs), readonly=True),
        hostname="in-code",
        process=m.Process(cwd="/", args=args, user=m.User(uid=0, gid=0),
                          env=("PATH=/bin:/usr/bin",)),  # fmt: skip
        mounts=(m.Mount(destination="/proc", type="proc", source="proc"),
                m.Mount(destination="/tmp", type="tmpfs", source="tmpfs")),  # fmt: skip
        linux=m.Linux(namespaces=ns, resources=m.LinuxResources(pids=m.LinuxPids(limit=20))),
    )


def test_a_spec_built_in_code(rt: Runtime, bundle: Bundle) -> None:
    spec = spec_in_code(bundle.rootfs, "sh", "-c", "hostname; echo x > /tmp/f && cat /tmp/f")
    r = rt.run("api4", spec, capture_output=True)
    assert (r.returncode, r.stdout) == (0, b"in-code\nx\n"), r.stderr
    # validated as config.json is, with the loader's JSON-path message
    bad = spec_in_code(bundle.rootfs, "true")
    bad = m.Spec(oci_version="1.3.0", root=bad.root, linux=bad.linux,
                 process=m.Process(cwd="relative", args=("true",)))  # fmt: skip
    with pytest.raises(pyrunc.api.PyruncError, match=r"config\.json: process\.cwd"):
        rt.create("api4", bad)
    assert rt.list() == []


def test_a_spec_built_in_code_is_written_as_config_json(rt: Runtime, bundle: Bundle,
                                                         root: Path) -> None:  # fmt: skip
    """The three forms held together on a real container: the attrs model built in Python, the
    converter's JSON of it saved as the container's config.json, and both loaders (the
    converter's and the generated one create uses) reading that file back to the same Spec."""
    import json

    from test_spec_compiled import plain

    from pyrunc.spec import converter, loader

    spec = spec_in_code(bundle.rootfs, "sleep", "100")
    with rt.create("api4c", spec) as c:
        saved = (root / "api4c" / "config.json").read_bytes()
        assert json.loads(saved) == converter.unstructure_config(spec)
        assert converter.load_config(saved) == spec
        assert plain(loader.load_config(saved)) == plain(spec)
        c.start()
        # the spec's hostname, its tmpfs at /tmp, its read-only root
        p = c.exec(["sh", "-c", "hostname; grep ' /tmp ' /proc/mounts | cut -d' ' -f3; "
                    "touch /x 2>/dev/null || echo ro"], stdout=subprocess.PIPE)  # fmt: skip
        out, _ = p.communicate(timeout=20)
        assert (p.returncode, out) == (0, b"in-code\ntmpfs\nro\n")
        c.kill(9)
        c.wait(20)
    assert rt.list() == []


def test_s1_refuses_a_writable_interpreter(root: Path, bundle: Bundle) -> None:
    from pyrunc import sealed

    assert not sealed.running_sealed()
    with pytest.raises(pyrunc.InterpreterNotProtected, match="reexec_protected"):
        Runtime(str(root)).create("api5", bundle.path)
    assert Runtime(str(root)).list() == []


def test_s1_reexec_protected_in_one_call(root: Path, bundle: Bundle, tmp_path: Path) -> None:
    """A program calling pyrunc.reexec_protected() first runs from the protected interpreter,
    where Runtime() needs no opt-out."""
    bundle.set_args("echo", "protected")
    script = tmp_path / "prog.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "import pyrunc\n"
        "pyrunc.reexec_protected()\n"
        "print(os.readlink('/proc/self/exe'), sys.argv[1:], flush=True)\n"
        f"r = pyrunc.Runtime({str(root)!r}).run('api6', {str(bundle.path)!r}, "
        "capture_output=True)\n"
        "print(r.stdout.decode(), end='')\n"
    )
    proc = subprocess.run([sys.executable, str(script), "an-arg"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    exe, rest = proc.stdout.split(" ", 1)
    assert exe.startswith(("/run/pyrunc-exe/", "/memfd:pyrunc-python")), exe
    assert rest == "['an-arg']\nprotected\n"


def _leftovers(marker: str) -> list[str]:
    """Cgroup directories, and processes in a cgroup, named with `marker` (sandbox ids carry
    the creating process's pid: other test sessions' sandboxes do not count)."""
    found = []
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(base, d) for d in dirs if marker in d]
        dirs[:] = [d for d in dirs if marker not in d]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker in Path(f"/proc/{pid}/cgroup").read_text():
                found.append(f"process {pid}")
        except OSError:
            continue
    return found


@pytest.fixture
def rootfs(busybox_bundle: Path) -> Iterator[str]:
    """A copy of the busybox rootfs that others may read: the sandbox's root is an
    unprivileged host uid, which cannot traverse pytest's 0700 temporary directories."""
    parent = tempfile.mkdtemp(prefix="pkg-sandbox-")
    os.chmod(parent, 0o755)
    subprocess.run(["cp", "-a", str(busybox_bundle / "rootfs"), parent], check=True)
    yield os.path.join(parent, "rootfs")
    shutil.rmtree(parent)


def test_sandbox_default_deny(rootfs: str, root: Path) -> None:
    probe = ("id -u; hostname; grep Cap /proc/self/status | sort -u -k2 | wc -l; "
             "touch /x 2>/dev/null || echo ro; echo t > /tmp/t && cat /tmp/t; "
             "ls /sys | wc -l; ip link 2>/dev/null | grep -c '^[0-9]'; "
             "mount -t tmpfs x /mnt 2>/dev/null || echo no-mount; "
             "awk '{print $2}' /proc/self/uid_map")  # fmt: skip
    r = sandbox.run(["sh", "-c", probe], rootfs=rootfs, capture_output=True, text=True,
                    timeout=30, root=str(root))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:-1] == [
        "0", "sandbox", "1", "ro", "t", "0", "1", "no-mount", str(sandbox.HOST_ID_BASE)
    ]  # fmt: skip
    # network=True: tests/test_network.py (test_sandbox_network)


def test_sandbox_timeout_kills_a_fork_bomb_and_leaves_nothing(rootfs: str, root: Path) -> None:
    bomb = "echo started; b() { b | b & }; b; sleep 1000"
    with pytest.raises(subprocess.TimeoutExpired) as info:
        sandbox.run(["sh", "-c", bomb], rootfs=rootfs, pids=50, memory=128 << 20, cpus=0.5,
                    timeout=2, capture_output=True, root=str(root))  # fmt: skip
    assert info.value.output == b"started\n"
    assert info.value.cmd == ["sh", "-c", bomb]
    assert os.listdir(root) == []
    assert _leftovers(f"sandbox-{os.getpid()}-") == []


def test_sandbox_memory_hog_is_killed_and_leaves_nothing(rootfs: str, root: Path) -> None:
    hog = "echo started; x=a; while :; do x=$x$x; done"
    r = sandbox.run(["sh", "-c", hog], rootfs=rootfs, memory=32 << 20, timeout=60,
                    capture_output=True, root=str(root))  # fmt: skip
    assert (r.returncode, r.stdout) == (137, b"started\n")  # the OOM killer's SIGKILL
    assert os.listdir(root) == []
    assert _leftovers(f"sandbox-{os.getpid()}-") == []


def test_every_public_name_is_documented() -> None:
    import inspect

    from pyrunc import api

    for module in (api, sandbox, pyrunc):
        assert module.__doc__
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert obj.__doc__, f"{module.__name__}.{name}"
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    if not attr.startswith("_") and callable(value):
                        assert value.__doc__, f"{module.__name__}.{name}.{attr}"


def test_terminal(rt: Runtime, bundle: Bundle) -> None:
    """terminal=True: the process gets a pty of its own; the handle holds the master."""
    bundle.sh("tty; echo ok")
    with rt.create("api7", bundle.path, terminal=True) as c:
        assert c.terminal is not None
        c.start()
        out = b""
        while True:
            try:
                chunk = os.read(c.terminal.fileno(), 1024)
            except OSError:  # EIO: the container side hung up
                break
            if not chunk:
                break
            out += chunk
        assert c.wait(20) == 0
    assert out == b"/dev/pts/0\r\nok\r\n"
