"""The security invariants S1-S14 of shared/notes/security.md, each attacked through the real CLI
(docs/security.md maps each invariant to the code that enforces it and these tests).

Every test mounts the attack the invariant is about against pyrunc and checks that it fails
and that the host is untouched. Tests that would, if pyrunc were wrong, hurt the host itself
(signalling every process of a pid namespace, S8) run inside a throw-away pid namespace.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, Bundle, Pyrunc, Running, host_mounts, pid_alive
from helpers_security import (
    NOBODY,
    as_nobody,
    cap_mask,
    create_only,
    one_line,
    proc_status,
    start_sleeper,
    wait_for,
)
from unit.renamer import renaming


def no_dev_mount(bundle: Bundle) -> None:
    """Use the image's own /dev (no tmpfs on /dev, so no default device nodes)."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]


def sha256(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tree(path: Path) -> dict[str, Any]:
    """Names, modes and contents of everything under path (to see that nothing changed)."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            entry: Any = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777, st.st_uid)
            if stat.S_ISREG(st.st_mode):
                entry += (Path(full).read_bytes(),)
            out[os.path.relpath(full, path)] = entry
    return out


def mounts_under(path: Path) -> list[str]:
    """The host's mounts at or below `path` (the whole table is not compared: other test
    sessions on the machine may mount things meanwhile)."""
    return sorted(line for line in host_mounts() if str(path) in line)


# --- S1: the host binary (the Python interpreter) can never be overwritten --------------


def test_s1_proc_self_exe_as_process_args_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.set_args("/proc/self/exe", "-c", "print('host python ran in the container')")
    proc = pyrunc("create", "--bundle", bundle.path, "sec1")
    assert proc.returncode == 1, proc.stdout
    line = one_line(proc.stderr)
    assert "/proc/self/exe" in line and "magic link" in line
    assert os.listdir(pyrunc.root) == []


@pytest.mark.parametrize("target", ["/proc/self/exe", "/proc/1/exe", "/proc/self/fd/7"])
def test_s1_rootfs_symlink_to_a_magic_link_is_refused(
    bundle: Bundle, pyrunc: Pyrunc, target: str
) -> None:
    (bundle.rootfs / "bin" / "evil").symlink_to(target)
    for args in (("evil",), ("/bin/evil",)):
        bundle.set_args(*args)
        proc = pyrunc("create", "--bundle", bundle.path, "sec1")
        assert proc.returncode == 1, (args, proc.stdout)
        line = one_line(proc.stderr)
        if target.endswith("/exe"):
            assert "magic link" in line or "permission denied" in line, line
        assert os.listdir(pyrunc.root) == []


def test_s1_exec_of_proc_exe_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """In a created container, pid 1 is a clone of the interpreter (run from the protected,
    read-only copy): executing it through a magic link is refused."""
    (bundle.rootfs / "bin" / "evil").symlink_to("/proc/1/exe")
    init = create_only(pyrunc, bundle, "sec1")
    exe = os.readlink(f"/proc/{init}/exe")
    assert exe.startswith(("/memfd:pyrunc-python", "/run/pyrunc-exe/")), exe
    for args in (["/proc/self/exe"], ["/proc/1/exe"], ["evil"], ["/proc/self/root/proc/1/exe"]):
        proc = pyrunc("exec", "sec1", *args)
        assert proc.returncode == 255, args
        assert "host python" not in proc.stdout
        one_line(proc.stderr)
    assert pyrunc.status("sec1") == "created"


def test_s1_memfd_fallback_without_the_overlay(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """Where the read-only overlay cannot be mounted (no overlayfs, no privilege), create
    re-executes itself from a sealed memfd copy of the interpreter instead. The failure of the
    mount is simulated: pyrunc.sealed.protect raises, as it does when mount(2) fails."""
    code = (
        f"import sys; sys.path[:0] = [{str(REPO)!r}]\n"
        "from pyrunc import sealed\n"
        "def refuse(executable): raise OSError('overlayfs unavailable (simulated)')\n"
        "sealed.protect = refuse\n"
        "from pyrunc.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    bundle.set_args("sleep", "1000")
    errors = tmp_path / "stderr"
    with errors.open("w") as err:  # the waiting init keeps the runtime's stdio: never a pipe
        proc = subprocess.run(
            [os.path.realpath(sys.executable), "-I", "-S", "-c", code, "--root", str(pyrunc.root),
             "create", "--bundle", str(bundle.path), "sec1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, errors.read_text()
    init = pyrunc.state("sec1")["pid"]
    assert os.readlink(f"/proc/{init}/exe").startswith("/memfd:pyrunc-python")


def test_s1_waiting_init_is_not_dumpable(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """The init waits between create and start as uid 65534 (the process user): a host
    process with that very uid may read /proc/PID/exe of a dumpable process, but not of ours."""
    bundle.process["user"] = {"uid": NOBODY, "gid": NOBODY}
    init = create_only(pyrunc, bundle, "sec1")
    assert proc_status(init)["Uid"].split()[0] == str(NOBODY)
    for argv in (("readlink", "-v", f"/proc/{init}/exe"), ("cat", f"/proc/{init}/environ"),
                 ("ls", f"/proc/{init}/fd/")):  # fmt: skip
        denied = as_nobody(*argv)
        assert denied.returncode != 0, (argv, denied.stdout)
        assert "Permission denied" in denied.stderr, denied.stderr
    # the control: once the container process runs (a plain execve), the same read works
    pyrunc("start", "sec1", check=True)
    wait_for(lambda: as_nobody("readlink", f"/proc/{init}/exe").returncode == 0,
             what="the started process to be dumpable")  # fmt: skip


def test_s1_init_runs_from_the_read_only_interpreter(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """The protected interpreter (pyrunc.sealed): after a create its overlay is mounted
    read-only, the init's /proc/PID/exe names it, and writing through that link fails with
    EROFS even for host root (the container cannot get that far: the init is not dumpable)."""
    from pyrunc import sealed

    if "\toverlay\n" not in Path("/proc/filesystems").read_text():
        pytest.skip("no overlayfs in this kernel: pyrunc falls back to the sealed memfd copy")
    init = create_only(pyrunc, bundle, "sec1")
    exe = os.readlink(f"/proc/{init}/exe")
    target = sealed.protected_executable(os.path.realpath(sys.executable))
    assert exe == target
    assert os.statvfs(target).f_flag & os.ST_RDONLY
    fstype = [line.split(" - ")[1].split()[0] for line in Path("/proc/self/mountinfo").open()
              if line.split()[4] == os.path.dirname(target)]  # fmt: skip
    assert fstype == ["overlay"]
    for path in (f"/proc/{init}/exe", target):
        with pytest.raises(OSError) as info:
            os.open(path, os.O_WRONLY)
        assert info.value.errno == errno.EROFS
    # the same file as the host's interpreter, byte for byte, but not the same inode
    assert sha256(target) == sha256(os.path.realpath(sys.executable))
    assert os.stat(target).st_dev != os.stat(os.path.realpath(sys.executable)).st_dev


def test_s1_launcher_execs_the_protected_interpreter(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """The installed `pyrunc` launcher and pyrunc.sealed agree on the protected path, so once it
    is mounted `run` starts one interpreter: a createRuntime hook (spawned by the runtime) sees
    its parent's command line as the launcher's, not the re-exec's (`-I -S -c ...`)."""
    from pyrunc import sealed

    launcher = Path(sys.executable).parent / "pyrunc"
    if not launcher.is_file():
        pytest.skip(f"no pyrunc launcher next to {sys.executable} (not pip-installed here)")
    target = sealed.protected_executable(os.path.realpath(sys.executable))
    create_only(pyrunc, bundle, "sec0")  # mounts the protected interpreter if it is not yet
    seen = tmp_path / "cmdline"
    bundle.set_args("true")
    script = f"tr '\\000' ' ' < /proc/$PPID/cmdline > {seen}"
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]}
    bundle.write()
    argv = [str(launcher), "--root", str(pyrunc.root), "run", "--bundle", str(bundle.path), "sec1"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # the launcher (src/launcher.c) execs `PROTECTED -s -S -P .../pyrunc/_launch.py SITE ARGS`
    assert seen.read_text().startswith(f"{target} -s -S -P "), seen.read_text()
    assert " -c " not in seen.read_text() and f" --root {pyrunc.root} run " in seen.read_text()


def test_s1_host_interpreter_unchanged_by_a_container_attack(
    bundle: Bundle, pyrunc: Pyrunc
) -> None:
    python = os.path.realpath(sys.executable)
    before = sha256(python), os.stat(python).st_mtime_ns
    init = create_only(pyrunc, bundle, "sec1")
    attack = (
        "readlink /proc/1/exe && echo READLINK-OK; "
        "cat /proc/1/exe > /dev/null && echo READ-OK; "
        "echo pwned >> /proc/1/exe && echo APPEND-OK; "
        "true > /proc/1/exe && echo TRUNCATE-OK; "
        "for f in /proc/1/fd/*; do echo pwned >> $f/../exe && echo FD-OK; done; "
        "cp /bin/busybox /proc/1/exe && echo COPY-OK; true"
    )
    proc = pyrunc("exec", "sec1", "sh", "-c", attack)
    assert proc.returncode == 0, proc.stderr
    assert "OK" not in proc.stdout, proc.stdout
    assert "Permission denied" in proc.stderr
    pyrunc("start", "sec1", check=True)
    proc = pyrunc("exec", "sec1", "sh", "-c", "echo pwned >> /proc/1/exe && echo APPEND-OK; true")
    assert "APPEND-OK" not in proc.stdout
    assert (sha256(python), os.stat(python).st_mtime_ns) == before
    assert pid_alive(init)


ATTACK_5736 = (
    # hold the waiting init's executable (the interpreter that ran pyrunc), then reopen it for
    # writing as soon as no process executes it any more (ETXTBSY until then)
    'exec 3</proc/1/exe || exit 1; i=0; while [ $i -lt 120 ]; do '
    'if (printf "#!/bin/sh\\necho PWNED\\n" > /proc/self/fd/3) 2>/dev/null; then exit 0; fi; '
    'usleep 20000; i=$((i+1)); done'
)


def test_s1_container_with_cap_sys_ptrace_cannot_overwrite_the_interpreter(
    bundle: Bundle, root: Path, tmp_path: Path
) -> None:
    """CVE-2019-5736, end to end. CAP_SYS_PTRACE (often granted for debugging) lets a container
    process open /proc/1/exe of the init waiting between create and start, non-dumpable or
    not. pyrunc runs from a private copy of the interpreter here (a venv with --copies), so
    that the real one is never at risk; that copy must come out unchanged."""
    venv = tmp_path / "venv"
    made = subprocess.run([sys.executable, "-m", "venv", "--copies", "--without-pip",
                           "--system-site-packages", str(venv)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot make a venv: {made.stderr.strip()[-200:]}")
    python = venv / "bin" / "python"
    real = os.stat(os.path.realpath(sys.executable))
    copy_st = os.stat(python)
    assert (copy_st.st_dev, copy_st.st_ino) != (real.st_dev, real.st_ino)
    assert copy_st.st_nlink == 1
    before = sha256(python)
    for kind in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][kind].append("CAP_SYS_PTRACE")
    bundle.set_args("sleep", "1000")

    def cli(*args: Any) -> int:
        return subprocess.run([str(python), "-m", "pyrunc", "--root", str(root), *map(str, args)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30, cwd=REPO).returncode

    from pyrunc import sealed

    # the protected copy of this venv's interpreter, which create mounts: removed at the end
    overlay = os.path.dirname(sealed.protected_executable(os.path.realpath(python)))
    try:
        assert cli("create", "--bundle", bundle.path, "sec1") == 0
        assert cli("exec", "--detach", "sec1", "sh", "-c", ATTACK_5736) == 0
        assert cli("start", "sec1") == 0
        # give the attacker its chance: nothing runs the copied interpreter any more
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and sha256(python) == before:
            time.sleep(0.1)
        assert sha256(python) == before, (
            "a container process overwrote the interpreter that ran pyrunc: "
            + repr(python.read_bytes()[:40])
        )
    finally:
        cli("delete", "--force", "sec1")
        if os.path.ismount(overlay):
            subprocess.run(["umount", "--lazy", overlay], check=False)
        if os.path.isdir(overlay):
            os.rmdir(overlay)


# --- S2: no runtime fd reaches the container ------------------------------------------


def leaked_dir_fd(path: Path) -> int:
    """A host directory fd without close-on-exec, as a careless caller would leak it."""
    (path / "host-secret").write_text("host data\n")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(fd, True)
    return fd


def fds_of(pid: int) -> dict[int, str]:
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            out[int(name)] = "?"
    return out


def test_s2_no_fd_leaks_into_the_container(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """A caller's fds (the containerd shim leaks one at fd 3) never reach the container;
    checked from the host on the container's processes."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    fd = leaked_dir_fd(host_dir)
    spare = os.dup(fd)  # a second one, at another number
    os.set_inheritable(spare, True)
    try:
        bundle.set_args("sleep", "1000")
        proc = pyrunc("run", "--detach", "--bundle", bundle.path, "sec1", pass_fds=(fd, spare))
        assert proc.returncode == 0, proc.stderr
        init = pyrunc.state("sec1")["pid"]
        assert sorted(fds_of(init)) == [0, 1, 2], fds_of(init)
        # exec, detached and in the foreground
        pid_file = tmp_path / "exec.pid"
        proc = pyrunc("exec", "--detach", "--pid-file", pid_file, "sec1", "sleep", "999",
                      pass_fds=(fd, spare))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        pid = int(pid_file.read_text())
        try:
            assert sorted(fds_of(pid)) == [0, 1, 2], fds_of(pid)
        finally:
            os.kill(pid, signal.SIGKILL)
        proc = pyrunc("exec", "sec1", "sh", "-c", "ls -l /proc/self/fd/", pass_fds=(fd, spare))
        assert proc.returncode == 0, proc.stderr
        assert str(host_dir) not in proc.stdout
        # ls itself holds 0, 1, 2 and the directory it reads
        assert len(proc.stdout.strip().splitlines()) == 1 + 4, proc.stdout
    finally:
        os.close(fd)
        os.close(spare)


def test_s2_preserve_fds_passes_exactly_those(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """--preserve-fds N keeps 3..N+2: the caller's fd at the top of that range arrives, a
    higher one does not (the fds in between are closed in the caller's child)."""
    passed = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    other = leaked_dir_fd(tmp_path)
    if other < passed:
        passed, other = other, passed
    try:
        bundle.set_args("sleep", "1000")
        proc = pyrunc("run", "--detach", "--preserve-fds", str(passed - 2), "--bundle",
                      bundle.path, "sec1", pass_fds=(passed, other))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        fds = fds_of(pyrunc.state("sec1")["pid"])
        assert sorted(fds) == [0, 1, 2, passed], fds
        assert fds[passed] == str(tmp_path)
    finally:
        os.close(passed)
        os.close(other)


def run_with_fds_3_and_4(root: Path, directory: Path, listen_pid: str, *args: Any) -> int:
    """`pyrunc --root ROOT ARGS` with `directory` open at fds 3 and 4, LISTEN_FDS=2 and
    LISTEN_PID=listen_pid ("self": the pyrunc process's own pid); its exit status."""
    wrapper = 'LISTEN_PID=${LISTEN_PID:-$$}; export LISTEN_PID; exec "$@" 3<"$DIR" 4<"$DIR"'
    env = dict(os.environ, LISTEN_FDS="2", DIR=str(directory))
    env.pop("LISTEN_PID", None)
    if listen_pid != "self":
        env["LISTEN_PID"] = listen_pid
    return subprocess.run(
        ["sh", "-c", wrapper, "sh", sys.executable, "-m", "pyrunc", "--root", str(root),
         *map(str, args)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=30,
    ).returncode  # fmt: skip


def test_s2_listen_fds_only_when_meant_for_pyrunc(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """sd_listen_fds(3): LISTEN_FDS counts only when LISTEN_PID is our pid (runc checks it).
    A stale LISTEN_FDS inherited from a socket-activated parent must not hand the caller's
    fds (here a host directory, the CVE-2024-21626 material) to the container."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    bundle.set_args("sleep", "1000")
    rc = run_with_fds_3_and_4(pyrunc.root, host_dir, "1", "run", "--detach", "--bundle",
                              bundle.path, "sec1")  # fmt: skip
    assert rc == 0
    fds = fds_of(pyrunc.state("sec1")["pid"])
    assert sorted(fds) == [0, 1, 2], fds
    # the control: meant for pyrunc (LISTEN_PID is its pid), they are passed as runc does
    rc = run_with_fds_3_and_4(pyrunc.root, host_dir, "self", "run", "--detach", "--bundle",
                              bundle.path, "sec2")  # fmt: skip
    assert rc == 0
    fds = fds_of(pyrunc.state("sec2")["pid"])
    assert sorted(fds) == [0, 1, 2, 3, 4], fds


def test_s2_waiting_init_holds_no_host_directory(
    bundle: Bundle, pyrunc: Pyrunc, root_parent: Path
) -> None:
    """CVE-2024-21626 through the init waiting for `start`: a container process allowed to
    look at it (CAP_SYS_PTRACE defeats non-dumpable) walks /proc/1/fd/N/.. of every fd it
    holds. None may lead to a host directory (here: the state root's parent)."""
    (root_parent / "host-marker").write_text("host side\n")
    for kind in ("bounding", "effective", "permitted"):
        bundle.process["capabilities"][kind].append("CAP_SYS_PTRACE")
    init = create_only(pyrunc, bundle, "sec1")
    script = ("for f in /proc/1/fd/*; do for up in . .. ../.. ../../..; do "
              "cat $f/$up/host-marker 2>/dev/null && echo ESCAPED-THROUGH-$f; done; done; true")
    proc = pyrunc("exec", "sec1", "sh", "-c", script)
    assert proc.returncode == 0, proc.stderr
    assert "host side" not in proc.stdout, (proc.stdout, fds_of(init))


CWD_ATTACKS = [
    "/proc/self/fd/3", "/proc/self/fd/4", "/proc/self/fd/5", "/proc/self/fd/6",
    "/proc/self/fd/7", "/proc/self/fd/8", "/proc/self/fd/9", "/proc/self/fd/10",
    "/proc/thread-self/fd/4", "/proc/1/cwd", "/proc/self/root/../../..",
    "/proc/self/fd/4/../../../..",
]  # fmt: skip


def test_s2_cwd_through_proc_fd_never_reaches_the_host(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    fd = leaked_dir_fd(host_dir)
    host_root = set(os.listdir("/"))
    try:
        for i, cwd in enumerate(CWD_ATTACKS):
            bundle.process["cwd"] = cwd
            bundle.sh("pwd -P; ls -a; cat host-secret 2>/dev/null; ls ../../../../ 2>/dev/null")
            proc = pyrunc("run", "--bundle", bundle.path, f"cwd{i}", pass_fds=(fd,))
            if proc.returncode == 0:
                # it ran: then the cwd is a directory of the container
                assert "host data" not in proc.stdout, cwd
                listed = set(proc.stdout.split())
                assert "host-secret" not in listed, cwd
                assert not (host_root - {"bin", "dev", "etc", "home", "proc", "root", "sys",
                                         "tmp", "usr", "var", "sbin", "lib", "lib64"}) & listed
            else:
                one_line(proc.stderr)
        # exec --cwd: the same attack on a running container
        bundle.process["cwd"] = "/"
        start_sleeper(pyrunc, bundle, "sec1")
        for cwd in CWD_ATTACKS:
            proc = pyrunc("exec", "--cwd", cwd, "sec1", "sh", "-c", "pwd -P; ls -a",
                          pass_fds=(fd,))  # fmt: skip
            assert "host-secret" not in proc.stdout.split(), cwd
    finally:
        os.close(fd)


# --- S3: every path is resolved inside the rootfs -------------------------------------


def in_rootfs(bundle: Bundle, host_path: Path) -> Path:
    """Where an absolute symlink to host_path really points, seen from inside the rootfs."""
    return bundle.rootfs / str(host_path).lstrip("/")


def test_s3_mount_destination_symlink_to_host_dir(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    host = tmp_path / "host" / "host-target-dir"
    host.mkdir(parents=True)
    (host / "host-file").write_text("host\n")
    before = tree(tmp_path / "host")
    # the symlink's target also exists inside the rootfs (see the dangling case below)
    in_rootfs(bundle, host).mkdir(parents=True)
    (bundle.rootfs / "mnt").symlink_to(host)  # absolute: the host's path
    (bundle.rootfs / "rel").symlink_to("../../../../../../../../.." + str(host))
    bundle.add_mount("/mnt", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/mnt/newdir/deeper", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/rel/other", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/mnt/hosts-bind", "bind", str(bundle.rootfs / "etc" / "hosts"), ["bind"])
    bundle.config["root"]["readonly"] = False
    bundle.sh(f"grep -c ' {host}' /proc/self/mountinfo; ls -a {host}")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert tree(tmp_path / "host") == before
    assert not mounts_under(tmp_path)
    assert proc.returncode == 0, proc.stderr
    count, *listing = proc.stdout.split()
    assert int(count) >= 4  # the mounts landed on <rootfs>/<host path>, inside the container
    assert "host-file" not in listing and "newdir" in listing


def test_s3_dotdot_destination_while_the_host_renames(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """The same relative symlink while another process renames files on the host: openat2's
    scoped lookup then fails with EAGAIN on a ".." step, which is retried, never reported (a
    CI runner's ordinary activity once failed the test above with "mount tmpfs to
    /rel/other: resource temporarily unavailable")."""
    (bundle.rootfs / "target").mkdir()
    (bundle.rootfs / "rel").symlink_to("../../../../../../../../../target")
    for n in range(8):
        bundle.add_mount(f"/rel/../rel/m{n}", "tmpfs", "tmpfs", ["size=1m"])
    bundle.config["root"]["readonly"] = False
    bundle.sh("grep -c ' /target/m' /proc/self/mountinfo")
    with renaming(tmp_path / "spin"):
        runs = [pyrunc("run", "--bundle", bundle.path, f"sec{n}") for n in range(5)]
    assert [(p.returncode, p.stderr, p.stdout) for p in runs] == [(0, "", "8\n")] * 5


@pytest.mark.parametrize("dest", ["/mnt", "/mnt/sub/dir", "/dev"])
def test_s3_dangling_symlink_destination_is_created_inside_the_rootfs(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path, dest: str
) -> None:
    """A destination whose symlink points at a host path that does not exist in the rootfs:
    runc (securejoin) creates the path inside the rootfs and mounts there; the host is never
    touched."""
    host = tmp_path / "host" / "target"
    host.mkdir(parents=True)
    before = tree(tmp_path / "host")
    link = bundle.rootfs / dest.strip("/").split("/")[0]
    if link.is_dir():
        link.rmdir()
    link.symlink_to(host)
    if dest != "/dev":
        bundle.add_mount(dest, "tmpfs", "tmpfs", ["size=1m"])
    bundle.config["root"]["readonly"] = False
    bundle.sh(f"grep -c ' {host}' /proc/self/mountinfo")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert tree(tmp_path / "host") == before
    assert not mounts_under(tmp_path)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert int(proc.stdout) >= 1
    assert in_rootfs(bundle, host).is_dir()


def test_s3_symlink_swapped_in_while_pyrunc_works(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """CVE-2021-30465: a racing process keeps exchanging a rootfs directory with a symlink
    to a host directory (renameat2 RENAME_EXCHANGE) while containers are created."""
    import threading

    host = tmp_path / "host" / "target"
    host.mkdir(parents=True)
    (host / "host-file").write_text("host\n")
    before = tree(tmp_path / "host")
    (bundle.rootfs / "mnt").mkdir()
    (bundle.rootfs / "mnt-swap").symlink_to(host)
    bundle.add_mount("/mnt/sub/deeper", "tmpfs", "tmpfs", ["size=1m"])
    bundle.add_mount("/mnt/hosts", "bind", str(bundle.rootfs / "etc" / "hosts"), ["bind", "ro"])
    bundle.config["linux"]["maskedPaths"] += ["/mnt/hosts"]
    bundle.config["linux"]["readonlyPaths"] += ["/mnt/sub"]
    bundle.set_args("true")
    libc = ctypes.CDLL(None, use_errno=True)
    a, b = bytes(bundle.rootfs / "mnt"), bytes(bundle.rootfs / "mnt-swap")
    stop = threading.Event()
    swaps = [0]

    def swap() -> None:
        while not stop.is_set():
            if libc.renameat2(-100, a, -100, b, 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
                swaps[0] += 1

    racer = threading.Thread(target=swap, daemon=True)
    racer.start()
    outcomes = []
    try:
        for i in range(6):
            proc = pyrunc("run", "--bundle", bundle.path, f"race{i}")
            outcomes.append(proc.returncode)
            if proc.returncode != 0:
                one_line(proc.stderr)
    finally:
        stop.set()
        racer.join()
    assert swaps[0] > 0
    assert set(outcomes) <= {0, 1}, outcomes
    assert tree(tmp_path / "host") == before
    assert not mounts_under(tmp_path)
    assert os.listdir(pyrunc.root) == []


def test_s3_dev_symlink_to_host_dir(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    host = tmp_path / "host-dev"
    host.mkdir()
    in_rootfs(bundle, host).mkdir(parents=True)
    (bundle.rootfs / "dev").rmdir()
    (bundle.rootfs / "dev").symlink_to(host)
    # with a /dev tmpfs (default devices and /dev symlinks) ...
    bundle.sh("ls /dev/ | tr '\\n' ' '")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert os.listdir(host) == []
    assert proc.returncode == 0, proc.stderr
    assert "null" in proc.stdout.split() and "ptmx" in proc.stdout.split()
    # ... and without one: linux.devices go through the image's /dev
    no_dev_mount(bundle)
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/pyrunc-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}
    ]
    bundle.config["linux"]["maskedPaths"] = []
    bundle.config["root"]["readonly"] = False
    bundle.sh("ls -l /dev/pyrunc-null")
    proc = pyrunc("run", "--bundle", bundle.path, "sec2")
    assert os.listdir(host) == [], proc.stderr
    assert not mounts_under(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (in_rootfs(bundle, host) / "pyrunc-null").is_char_device()


def test_s3_masked_and_readonly_paths_symlinked_to_host(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    hostdir = tmp_path / "host"
    host_file = hostdir / "host-secret"
    host_dir = hostdir / "host-dir"
    host_dir.mkdir(parents=True)
    host_file.write_text("host secret\n")
    (host_dir / "inside").write_text("x\n")
    before = tree(hostdir)
    etc = bundle.rootfs / "etc"
    (etc / "masked-file").symlink_to(host_file)
    (etc / "masked-dir").symlink_to(host_dir)
    (etc / "ro-dir").symlink_to(host_dir)
    (etc / "masked-rel").symlink_to("../../../../../../../../.." + str(host_file))
    linux = bundle.config["linux"]
    linux["maskedPaths"] += ["/etc/masked-file", "/etc/masked-dir", "/etc/masked-rel",
                             str(host_file), str(host_dir / "inside")]  # fmt: skip
    linux["readonlyPaths"] += ["/etc/ro-dir", str(host_dir)]
    bundle.sh("cat /etc/masked-file /etc/masked-rel /etc/masked-dir/inside 2>&1; true")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert "host secret" not in proc.stdout + proc.stderr
    assert tree(hostdir) == before
    assert not mounts_under(tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_s3_dev_null_symlink_to_host_file_is_not_used_for_masking(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """CVE-2025-31133: the mask source swapped for a symlink to something writable."""
    host_file = tmp_path / "host-writable"
    host_file.write_text("host\n")
    no_dev_mount(bundle)
    (bundle.rootfs / "dev" / "null").symlink_to(host_file)
    bundle.config["linux"]["maskedPaths"] = ["/etc/passwd"]
    bundle.sh("echo pwned > /etc/passwd; cat /etc/passwd")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert host_file.read_text() == "host\n"
    assert proc.returncode == 1, proc.stdout
    assert "/dev/null" in one_line(proc.stderr)
    assert os.listdir(pyrunc.root) == []


def test_s3_dev_console_symlink_to_host_file(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """CVE-2025-52565: /dev/console of the image is a symlink out of the rootfs."""
    from helpers_security import ConsoleReceiver

    host_file = tmp_path / "host-console-target"
    host_file.write_text("host\n")
    no_dev_mount(bundle)
    dev = bundle.rootfs / "dev"
    os.mknod(dev / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (dev / "ptmx").symlink_to("pts/ptmx")
    (dev / "console").symlink_to(host_file)
    bundle.process["terminal"] = True
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    bundle.sh("echo pwned > /dev/console; tty")
    proc = pyrunc("run", "--console-socket", receiver.path, "--bundle", bundle.path, "sec1")
    output = receiver.wait()
    assert host_file.read_text() == "host\n", proc.stderr
    assert not mounts_under(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "/dev/pts/" in output


# --- S4: procfs writes only reach the real procfs -------------------------------------


def test_s4_sysctl_through_a_fake_proc_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["type"] != "proc"]
    bundle.config["linux"]["maskedPaths"] = []
    bundle.config["linux"]["readonlyPaths"] = []
    bundle.config["root"]["readonly"] = False
    fake = bundle.rootfs / "proc" / "sys" / "kernel"
    fake.mkdir(parents=True)
    (fake / "shmmax").write_text("original\n")
    bundle.config["linux"]["sysctl"] = {"kernel.shmmax": "12345"}
    bundle.sh("cat /proc/sys/kernel/shmmax")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert proc.returncode == 1, proc.stdout
    assert "kernel.shmmax" in one_line(proc.stderr)
    assert (fake / "shmmax").read_text() == "original\n"
    assert os.listdir(pyrunc.root) == []


def test_s4_sysctl_through_a_bind_mount_over_proc_is_refused(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """CVE-2019-16884 style: the config puts a plain directory over /proc/sys/kernel. Refused
    as a mount inside /proc (S14); a mount made where the config check cannot see it is
    test_s14_sysctl_through_a_mount_made_behind_the_configs_back."""
    decoy = tmp_path / "decoy-kernel"
    decoy.mkdir()
    (decoy / "shmmax").write_text("original\n")
    bundle.add_mount("/proc/sys/kernel", "bind", str(decoy), ["bind"])
    bundle.config["linux"]["sysctl"] = {"kernel.shmmax": "12345"}
    bundle.sh("cat /proc/sys/kernel/shmmax")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert proc.returncode == 1, proc.stdout
    line = one_line(proc.stderr)
    assert "/proc/sys/kernel" in line and "cannot be mounted because it is inside /proc" in line
    assert (decoy / "shmmax").read_text() == "original\n"


def test_s4_sysctl_on_the_real_procfs_works(bundle: Bundle, pyrunc: Pyrunc) -> None:
    host = Path("/proc/sys/kernel/shmmax").read_text()
    bundle.config["linux"]["sysctl"] = {"kernel.shmmax": "12345"}
    bundle.process["oomScoreAdj"] = 123
    bundle.sh("cat /proc/sys/kernel/shmmax /proc/self/oom_score_adj")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert (proc.returncode, proc.stdout.split()) == (0, ["12345", "123"]), proc.stderr
    assert Path("/proc/sys/kernel/shmmax").read_text() == host  # the container's ipc ns only


# --- S5: capabilities -----------------------------------------------------------------


def caps_of(bundle: Bundle, pyrunc: Pyrunc, cid: str) -> dict[str, str]:
    bundle.sh("cat /proc/self/status")
    proc = pyrunc("run", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    return proc_status(proc.stdout)


def test_s5_default_config(bundle: Bundle, pyrunc: Pyrunc) -> None:
    configured = bundle.process["capabilities"]
    assert "inheritable" not in configured and configured["ambient"]
    status = caps_of(bundle, pyrunc, "sec1")
    want = cap_mask(*configured["bounding"])
    assert int(status["CapBnd"], 16) == want
    assert int(status["CapEff"], 16) == cap_mask(*configured["effective"])
    assert int(status["CapPrm"], 16) == cap_mask(*configured["permitted"])
    assert int(status["CapInh"], 16) == 0
    # ambient needs inheritable: without it nothing is raised
    assert int(status["CapAmb"], 16) == 0
    assert status["NoNewPrivs"] == "1"


def test_s5_bounding_only(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["capabilities"] = {"bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"]}
    status = caps_of(bundle, pyrunc, "sec1")
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(status[field], 16) == 0, field
    assert int(status["CapBnd"], 16) == cap_mask("CHOWN", "KILL", "SYS_ADMIN")


def test_s5_no_capabilities_at_all(bundle: Bundle, pyrunc: Pyrunc) -> None:
    del bundle.process["capabilities"]
    bundle.process["noNewPrivileges"] = False
    status = caps_of(bundle, pyrunc, "sec1")
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
        assert int(status[field], 16) == 0, field
    assert status["NoNewPrivs"] == "0"


def test_s5_inheritable_and_ambient_only_as_configured(bundle: Bundle, pyrunc: Pyrunc) -> None:
    caps = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
    bundle.process["capabilities"] = {
        "bounding": caps + ["CAP_CHOWN"], "effective": caps, "permitted": caps,
        "inheritable": ["CAP_NET_BIND_SERVICE"], "ambient": caps,
    }  # fmt: skip
    bundle.process["user"] = {"uid": 1000, "gid": 1000}
    status = caps_of(bundle, pyrunc, "sec1")
    assert int(status["CapInh"], 16) == cap_mask("NET_BIND_SERVICE")
    # CAP_KILL is ambient in the config but not inheritable: skipped
    assert int(status["CapAmb"], 16) == cap_mask("NET_BIND_SERVICE")
    # a non-root user keeps what is ambient, and nothing else
    assert int(status["CapEff"], 16) == cap_mask("NET_BIND_SERVICE")
    assert int(status["CapBnd"], 16) == cap_mask("NET_BIND_SERVICE", "KILL", "CHOWN")


# --- S6: the waiting init is out of reach ---------------------------------------------


PTRACE_ATTACH, PTRACE_DETACH = 16, 17


def ptrace_attach_as_nobody(pid: int) -> int:
    """errno of PTRACE_ATTACH from a forked child running as uid/gid 65534 (0 = attached)."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        code = 255
        try:
            os.close(read)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            libc = ctypes.CDLL(None, use_errno=True)
            libc.ptrace.restype = ctypes.c_long
            ret = libc.ptrace(PTRACE_ATTACH, pid, None, None)
            code = 0 if ret == 0 else ctypes.get_errno()
            if ret == 0:
                os.waitpid(pid, 0)
                libc.ptrace(PTRACE_DETACH, pid, None, None)
            os.write(write, str(code).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        result = f.read()
    os.waitpid(child, 0)
    return int(result)


def test_s6_waiting_init_cannot_be_ptraced_or_read(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["user"] = {"uid": NOBODY, "gid": NOBODY}
    bundle.process["capabilities"] = {}
    init = create_only(pyrunc, bundle, "sec1")
    # its own pid namespace, where it is pid 1
    assert os.readlink(f"/proc/{init}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert proc_status(init)["NSpid"].split() == [str(init), "1"]
    # an unprivileged host process with the init's very uid cannot attach
    assert ptrace_attach_as_nobody(init) == errno.EPERM
    # a container process (root in the container, default capabilities) cannot read it
    proc = pyrunc(
        "exec", "-u", "0:0", "sec1", "sh", "-c",
        "cat /proc/1/environ && echo ENVIRON-OK; cat /proc/1/maps && echo MAPS-OK; "
        "dd if=/proc/1/mem bs=1 count=1 2>&1 && echo MEM-OK; "
        "for f in /proc/1/fd/*; do ls $f/ 2>&1 && echo FD-OK; readlink $f && echo LINK-OK; done;"
        "ls /proc/1/root/ 2>&1 && echo ROOT-OK; ls /proc/1/cwd/ 2>&1 && echo CWD-OK; true",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "OK" not in proc.stdout, proc.stdout
    assert "state.json" not in proc.stdout
    assert pyrunc.status("sec1") == "created"
    # the control: the started process (a plain execve, dumpable again) can be attached to
    pyrunc("start", "sec1", check=True)
    assert ptrace_attach_as_nobody(init) == 0
    assert pyrunc.status("sec1") == "running"


# --- S7: masked and read-only paths ---------------------------------------------------


def test_s7_masks_hold_against_root_without_cap_sys_admin(bundle: Bundle, pyrunc: Pyrunc) -> None:
    etc = bundle.rootfs / "etc"
    (etc / "secret-file").write_text("secret\n")
    (etc / "secret-dir").mkdir()
    (etc / "secret-dir" / "key").write_text("secret\n")
    (etc / "ro-dir").mkdir()
    linux = bundle.config["linux"]
    linux["maskedPaths"] += ["/etc/secret-file", "/etc/secret-dir"]
    linux["readonlyPaths"] += ["/etc/ro-dir"]
    bundle.config["root"]["readonly"] = False
    start_sleeper(pyrunc, bundle, "sec1")
    script = """
    echo "file=[$(cat /etc/secret-file /proc/keys)]"
    echo "dir=[$(ls -A /etc/secret-dir)$(ls -A /sys/firmware)]"
    touch /etc/secret-dir/new 2>/dev/null && echo MASKED-DIR-WRITABLE
    echo x > /etc/ro-dir/new 2>/dev/null && echo RO-DIR-WRITABLE
    echo 1 > /proc/sys/kernel/shmmax 2>/dev/null && echo PROC-SYS-WRITABLE
    mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED
    mount -o remount,rw /etc/ro-dir 2>/dev/null && echo REMOUNTED
    mount -o remount,rw /etc/secret-dir 2>/dev/null && echo REMOUNTED
    umount /etc/secret-file 2>/dev/null && echo UNMOUNTED
    umount -l /etc/secret-dir 2>/dev/null && echo UNMOUNTED
    umount /proc/keys 2>/dev/null && echo UNMOUNTED
    umount -l /proc/sys 2>/dev/null && echo UNMOUNTED
    mount -t tmpfs none /etc/ro-dir 2>/dev/null && echo MOUNTED
    mount --bind /etc /etc/secret-dir 2>/dev/null && echo MOUNTED
    echo "after=[$(cat /etc/secret-file; ls -A /etc/secret-dir)]"
    """
    for user in ("0:0", "65534:65534"):
        proc = pyrunc("exec", "-u", user, "sec1", "sh", "-c", script)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.split("\n")[:-1]
        assert lines == ["file=[]", "dir=[]", "after=[]"], (user, proc.stdout)


def test_s7_dev_null_replaced_by_a_regular_file(bundle: Bundle, pyrunc: Pyrunc) -> None:
    no_dev_mount(bundle)
    fake = bundle.rootfs / "dev" / "null"
    fake.write_text("not a device\n")
    bundle.config["linux"]["maskedPaths"] = ["/etc/passwd"]
    bundle.sh("cat /etc/passwd")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert proc.returncode == 1, proc.stdout
    assert "/dev/null" in one_line(proc.stderr)
    assert fake.read_text() == "not a device\n"
    assert os.listdir(pyrunc.root) == []


def test_s7_image_dev_null_that_is_the_real_device_masks(bundle: Bundle, pyrunc: Pyrunc) -> None:
    no_dev_mount(bundle)
    os.mknod(bundle.rootfs / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    bundle.config["linux"]["maskedPaths"] = ["/etc/passwd"]
    bundle.sh("echo \"[$(cat /etc/passwd)]\"")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert (proc.returncode, proc.stdout) == (0, "[]\n"), proc.stderr


# --- defaults that must hold when the config is silent -------------------------------


def test_defaults_proc_and_sys_mounts_get_nosuid_noexec_nodev(
    bundle: Bundle, pyrunc: Pyrunc
) -> None:
    """security.md: /proc and /sys get nosuid,noexec,nodev even when the config gives no
    options (runc 1.1.5 does not add them either; podman and docker pass them explicitly)."""
    for m in bundle.config["mounts"]:
        if m["type"] in ("proc", "sysfs"):
            m.pop("options", None)
    bundle.sh("awk '$5 == \"/proc\" || $5 == \"/sys\"' /proc/self/mountinfo")
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        options = set(line.split()[5].split(","))
        assert {"nosuid", "noexec", "nodev"} <= options, line


def test_defaults_private_rootfs_devpts_and_default_devices(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    bundle.config["linux"].pop("rootfsPropagation", None)
    bundle.add_mount("/mnt", "bind", str(tmp_path), ["rbind"])
    bundle.config["process"]["capabilities"] = {
        k: v + ["CAP_SYS_ADMIN"] for k, v in bundle.process["capabilities"].items()
    }
    bundle.config["root"]["readonly"] = False
    bundle.sh(
        "mkdir -p /mnt/sub && mount -t tmpfs inside /mnt/sub && echo mounted; "
        "awk '$5 == \"/\" || $5 == \"/dev/pts\"' /proc/self/mountinfo; "
        "ls /dev | tr '\\n' ' '"
    )
    proc = pyrunc("run", "--bundle", bundle.path, "sec1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "mounted"
    # nothing propagates back to the host: the container's mount is not on the host
    assert not mounts_under(tmp_path)
    table = [line.split() for line in lines[1:-1]]
    root_line = next(fields for fields in table if fields[4] == "/")
    assert not any(f.startswith("shared:") for f in root_line), root_line
    pts = " ".join(next(fields for fields in table if fields[4] == "/dev/pts"))
    assert "ptmxmode=666" in pts or "ptmxmode=0666" in pts, pts
    devices = set(lines[-1].split())
    assert devices == {"core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm",
                       "stderr", "stdin", "stdout", "tty", "urandom", "zero"} - (
        set() if os.path.exists("/proc/kcore") else {"core"})  # fmt: skip


# --- S8: a reused pid is never signalled ----------------------------------------------


def forge_state_pid(root: Path, cid: str, pid: int) -> None:
    """The stored pid replaced (the recorded start time kept), as after a pid reuse."""
    path = root / cid / "state.json"
    data = json.loads(path.read_text())
    assert data["pyrunc"]["init_start_time"]
    data["pid"] = pid
    path.write_text(json.dumps(data))


@pytest.fixture
def bystander() -> Any:
    proc = subprocess.Popen(["sleep", "1000"])
    yield proc
    proc.kill()
    proc.wait()


def test_s8_reused_pid_is_not_signalled(
    bundle: Bundle, pyrunc: Pyrunc, bystander: subprocess.Popen[bytes]
) -> None:
    init = start_sleeper(pyrunc, bundle, "sec1")
    pyrunc("kill", "sec1", "KILL", check=True)
    pyrunc.wait_status("sec1", "stopped")
    wait_for(lambda: not pid_alive(init), what="the init to die")
    forge_state_pid(pyrunc.root, "sec1", bystander.pid)
    state = pyrunc.state("sec1")
    assert (state["status"], state["pid"]) == ("stopped", 0)
    for args in (("kill", "sec1", "KILL"), ("kill", "sec1", "TERM")):
        proc = pyrunc(*args)
        assert proc.returncode == 1, args
        assert "not running" in one_line(proc.stderr)
        assert bystander.poll() is None, args
    # --all of a stopped container signals what is left in its cgroup (runc does too, issue
    # 14: containerd's shim relies on it), and only that: the bystander is not in it
    proc = pyrunc("kill", "--all", "sec1", "KILL")
    assert proc.returncode == 0, proc.stderr
    assert bystander.poll() is None
    proc = pyrunc("delete", "--force", "sec1")
    assert proc.returncode == 0, proc.stderr
    time.sleep(0.1)
    assert bystander.poll() is None
    assert pid_alive(bystander.pid)


def test_s8_reused_pid_of_a_created_container(
    bundle: Bundle, pyrunc: Pyrunc, bystander: subprocess.Popen[bytes]
) -> None:
    init = create_only(pyrunc, bundle, "sec1")
    os.kill(init, signal.SIGKILL)
    wait_for(lambda: not pid_alive(init), what="the init to die")
    forge_state_pid(pyrunc.root, "sec1", bystander.pid)
    assert pyrunc.status("sec1") == "stopped"
    proc = pyrunc("start", "sec1")
    assert proc.returncode == 1
    for args in (("delete", "sec1"),):
        proc = pyrunc(*args)
        assert proc.returncode == 0, proc.stderr
    assert bystander.poll() is None


SANDBOX = r"""
import json, os, subprocess, sys, time
root, bundle, action, result = sys.argv[1:5]
cli = [sys.executable, "-m", "pyrunc", "--root", root]
bystander = subprocess.Popen(["sleep", "1000"])
quiet = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ran = subprocess.run(cli + ["run", "--detach", "--bundle", bundle, "sec1"], timeout=30, **quiet)
state = json.loads(subprocess.run(cli + ["state", "sec1"], capture_output=True, timeout=30).stdout)
args = ["delete", "--force", "sec1"] if action == "delete" else ["kill", "--all", "sec1", "KILL"]
done = subprocess.run(cli + args, timeout=30, **quiet)
time.sleep(0.3)
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
outcome = {"run": ran.returncode, "rc": done.returncode, "init": state["pid"],
           "init_alive": alive(state["pid"]), "bystander_alive": alive(bystander.pid)}
subprocess.run(cli + ["delete", "--force", "sec1"], timeout=30, **quiet)  # its cgroups too
with open(result, "w") as f:
    json.dump(outcome, f)
"""


@pytest.mark.parametrize("action", ["delete", "kill-all"])
def test_s8_host_pid_namespace_container_only_its_processes(
    bundle: Bundle, tmp_path: Path, action: str
) -> None:
    """A container without its own pid namespace: `delete --force` / `kill --all` must signal
    the container's processes only. Run in a throw-away pid namespace (unshare --pid
    --mount-proc): if pyrunc signals every process of the namespace, only the sandbox dies."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is missing")
    linux = bundle.config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "pid"]
    bundle.set_args("sleep", "1000")
    script = tmp_path / "sandbox.py"
    script.write_text(SANDBOX)
    result = tmp_path / "result.json"
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, str(script),
         str(tmp_path / "sandbox-root"), str(bundle.path), action, str(result)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0 and result.is_file(), proc.stderr
    outcome = json.loads(result.read_text())
    assert outcome["run"] == 0, outcome
    assert outcome["bystander_alive"], f"{action} killed a process of another container: {outcome}"
    assert outcome["rc"] == 0, outcome
    assert not outcome["init_alive"], outcome


# --- S9: ids and the state directory --------------------------------------------------


BAD_IDS = ["../x", "a/b", "..", ".", "x" * 2000, "", "../../../../tmp/pyrunc-escape"]
# (a NUL cannot be passed in argv: see test_s9_nul_in_id_through_the_library)


@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda s: repr(s[:20]))
def test_s9_bad_ids_are_rejected(
    bundle: Bundle, pyrunc: Pyrunc, root_parent: Path, bad: str
) -> None:
    before = set(os.listdir(root_parent))
    outside = set(os.listdir("/tmp"))
    for args, status in (
        (("create", "--bundle", bundle.path, bad), 1),
        (("start", bad), 1),
        (("state", bad), 1),
        (("kill", bad, "KILL"), 1),
        (("delete", "--force", bad), 1),
        (("exec", bad, "true"), 255),
    ):
        proc = pyrunc(*args)
        assert proc.returncode == status, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
    assert os.listdir(pyrunc.root) == []
    assert set(os.listdir(root_parent)) == before
    assert not {"x", "pyrunc-escape"} & (set(os.listdir("/tmp")) - outside)


def test_s9_nul_in_id_through_the_library(bundle: Bundle, root: Path) -> None:
    from pyrunc import Runtime
    from pyrunc.errors import PyruncError
    from pyrunc.state import validate_id

    for bad in ("a\0b", "\0", "../\0"):
        with pytest.raises(PyruncError):
            validate_id(bad)
        with pytest.raises(PyruncError):
            Runtime(str(root)).create(bad, str(bundle.path))
    assert os.listdir(root) == []


def test_s9_state_directory_ownership_and_modes(
    bundle: Bundle, root_parent: Path, tmp_path: Path
) -> None:
    fresh = root_parent / "fresh-root"
    pyrunc = Pyrunc(fresh)
    old_umask = os.umask(0)  # a careless caller: pyrunc must not depend on the umask
    try:
        create_only(pyrunc, bundle, "sec1")
    finally:
        os.umask(old_umask)
    try:
        st = os.stat(fresh)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
        cdir = fresh / "sec1"
        st = os.stat(cdir)
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o711)
        for name in os.listdir(cdir):
            st = os.lstat(cdir / name)
            assert st.st_uid == 0, name
            if name == "exec.fifo":
                # the init may open it after dropping root (runc: 0622 too); only root reaches
                # it, the root directory being 0700
                continue
            assert stat.S_IMODE(st.st_mode) & 0o022 == 0, f"{name} is {oct(st.st_mode)}"
        assert stat.S_IMODE(os.stat(cdir / "state.json").st_mode) & 0o077 == 0
        denied = as_nobody("stat", str(cdir / "exec.fifo"))
        assert denied.returncode != 0 and "Permission denied" in denied.stderr
        denied = as_nobody("sh", "-c", f"echo x > {cdir / 'state.json'}")
        assert denied.returncode != 0
    finally:
        pyrunc("delete", "--force", "sec1", check=True)
        shutil.rmtree(fresh)


# --- S10: hostile configs -------------------------------------------------------------


def assert_nothing_left(pyrunc: Pyrunc, bundle: Bundle, marker: str) -> None:
    assert os.listdir(pyrunc.root) == []
    assert not mounts_under(bundle.path) and not mounts_under(pyrunc.root)
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    environ = f.read()
            except OSError:
                continue
            assert marker.encode() not in environ, f"process {name} of a failed create is left"


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"null",
        b"[]",
        b'"config"',
        b"{",
        b"\xff\xfe{}",
        b'{"ociVersion": NaN}',
        b"[" * 200000 + b"]" * 200000,
        b'{"a":' * 100000 + b"1" + b"}" * 100000,
        json.dumps({"ociVersion": "1.0.0", "x": "A" * 5_000_000}).encode(),
    ],
    ids=["empty", "null", "array", "string", "truncated", "not-utf8", "nan", "deep-array",
         "deep-object", "huge"],
)  # fmt: skip
def test_s10_malformed_documents(
    bundle: Bundle, pyrunc: Pyrunc, document: bytes
) -> None:
    bundle.config_path.write_bytes(document)
    marker = f"PYRUNC_FUZZ={os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PYRUNC_FUZZ=marker.split("=", 1)[1])
    proc = pyrunc("create", "--bundle", bundle.path, "sec1", env=env)
    assert proc.returncode == 1
    assert one_line(proc.stderr).count("config.json:") >= 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_nothing_left(pyrunc, bundle, marker)


# hypothesis: mutated copies of the busybox config


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _strategies() -> Any:
    from hypothesis import strategies as st

    scalars = (
        st.none() | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
        | st.sampled_from(["../../../../etc", "/proc/self/exe", "a\0b", "/", "", "\n",
                           "/proc/self/fd/3", "CAP_SYS_ADMIN", "RLIMIT_NOFILE", "x" * 5000])
    )  # fmt: skip
    values = st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=10,
    )
    return st, values


def mutate(data: Any, base: dict[str, Any], *, type_changing: bool) -> dict[str, Any]:
    st, values = _strategies()
    doc = json.loads(json.dumps(base))
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths), label="path")
        kind = data.draw(st.sampled_from(["replace", "delete", "add"]) if not type_changing
                         else st.just("replace"), label="kind")  # fmt: skip
        if not path:
            if kind == "replace" and type_changing:
                doc = data.draw(values.filter(lambda v: not isinstance(v, dict)), label="doc")
                return doc
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        old = parent[key]
        if kind == "delete":
            del parent[key]
        elif kind == "add" and isinstance(old, dict):
            old[data.draw(st.text(max_size=12), label="new key")] = data.draw(values, label="v")
        elif kind == "add" and isinstance(old, list):
            old.append(data.draw(values, label="new item"))
        else:
            new = data.draw(
                values.filter(lambda v, old=old: _json_type(v) != _json_type(old))
                if type_changing
                else values, label="new value")  # fmt: skip
            parent[key] = new
    return doc


def _safe_to_run(doc: Any) -> bool:
    """Never let a fuzzed config use the host's root directory as its rootfs."""
    try:
        path = doc["root"]["path"]
    except (KeyError, TypeError, IndexError):
        return True
    return not (isinstance(path, str) and (path.startswith("/") or ".." in path))


def run_cli_example(bundle: Bundle, pyrunc: Pyrunc, doc: Any, *, must_name_config: bool) -> None:
    from helpers_security import safe_delete

    bundle.config_path.write_text(json.dumps(doc))
    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    env = dict(os.environ, PYRUNC_FUZZ=marker)
    proc = pyrunc("create", "--bundle", bundle.path, "fuzz", env=env)
    try:
        assert "Traceback" not in proc.stderr, proc.stderr
        if proc.returncode == 0:
            assert pyrunc.status("fuzz") == "created"
        else:
            assert proc.returncode == 1, proc.stderr
            line = one_line(proc.stderr)
            if must_name_config:
                assert "config.json:" in line, line
    finally:
        if pyrunc.status("fuzz") is not None:
            safe_delete(pyrunc, "fuzz")
    assert_nothing_left(pyrunc, bundle, f"PYRUNC_FUZZ={marker}")


def _settings(examples: int) -> Any:
    from hypothesis import HealthCheck, settings

    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


def test_s10_type_mutations_through_the_cli(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """A value of the wrong JSON type anywhere: `config.json: <path>: ...`, exit 1."""
    pytest.importorskip("hypothesis")
    from hypothesis import assume, given
    from hypothesis import strategies as st

    base = bundle.original

    @_settings(20)
    @given(st.data())
    def check(data: Any) -> None:
        doc = mutate(data, base, type_changing=True)
        assume(_safe_to_run(doc))
        run_cli_example(bundle, pyrunc, doc, must_name_config=True)

    check()


def test_s10_hostile_values_through_the_cli(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """Deleted keys, unknown fields, hostile strings and numbers: works, or one error line."""
    pytest.importorskip("hypothesis")
    from hypothesis import assume, given
    from hypothesis import strategies as st

    base = bundle.original

    @_settings(12)
    @given(st.data())
    def check(data: Any) -> None:
        doc = mutate(data, base, type_changing=False)
        assume(_safe_to_run(doc))
        run_cli_example(bundle, pyrunc, doc, must_name_config=False)

    check()


def test_s10_load_config_on_many_mutations(busybox_bundle: Path) -> None:
    pytest.importorskip("hypothesis")
    from hypothesis import given
    from hypothesis import strategies as st

    from pyrunc.errors import ConfigError
    from pyrunc.spec.converter import load_config

    base = json.loads((busybox_bundle / "config.json").read_text())

    @_settings(400)
    @given(st.data(), st.booleans())
    def check(data: Any, type_changing: bool) -> None:
        doc = mutate(data, base, type_changing=type_changing)
        for document in (doc, json.dumps(doc)):
            try:
                load_config(document)
            except ConfigError as e:
                message = str(e)
                assert message.startswith("config.json: "), message
                assert "\n" not in message and len(message) < 2000, message

    check()


# --- S11-S14: the attacks of issue 12 -----------------------------------------------------
# Each of these worked against pyrunc before the fix (it says so in the commit that added it).


def _ns_proc_scan(init: int, marker: str) -> str:
    """As a root process of the container with CAP_SYS_PTRACE (the host's root entered into
    its pid and mount namespaces: the container's /proc): try every /proc/*/fd/* and report
    the ones through which `marker` (a file in a host directory) can be read."""
    script = (f"for f in /proc/[0-9]*/fd/*; do cat \"$f/{marker}\" 2>/dev/null && "
              "echo \"ESCAPED-THROUGH $f\"; done; true")
    proc = subprocess.run(["nsenter", "-t", str(init), "-p", "-m", "--", "/bin/sh", "-c", script],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            pass
    return out


def test_s11_exec_child_holds_no_host_fd_once_in_the_container(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """Issue 12.4: `pyrunc exec ID true` run by a caller that holds a host directory (fd N,
    inheritable). The exec child is held, deterministically, at its first sync point (inside
    the container's namespaces): the container is paused and the exec joins its frozen
    cgroup (--ignore-paused). A container root with CAP_SYS_PTRACE then scans /proc/*/fd/*."""
    from conftest import new_id

    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    fd = leaked_dir_fd(host_dir)
    cid = new_id("sec")
    held = None
    try:
        init = start_sleeper(pyrunc, bundle, cid)
        assert pyrunc("pause", cid).returncode == 0
        held = pyrunc.start_background("exec", "--ignore-paused", cid, "true", pass_fds=(fd,))

        def exec_child_joined() -> bool:
            for child in _children(held.pid):
                try:
                    if cid in Path(f"/proc/{child}/cgroup").read_text():
                        return True
                except OSError:
                    pass
            return False

        wait_for(exec_child_joined, what="the exec child in the container's cgroup")
        found = _ns_proc_scan(init, "host-secret")
        assert "host data" not in found, found
    finally:
        os.close(fd)
        pyrunc("resume", cid)
        if held is not None:
            result = held.wait(30)
            assert result.returncode == 0, result.stderr


def test_s11_init_holds_only_its_own_fds(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    """The init between create and start, seen from a container process allowed to look
    (the same scan): no fd of it leads to a host directory the caller held."""
    from conftest import new_id

    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    fd = leaked_dir_fd(host_dir)
    cid = new_id("sec")
    try:
        bundle.set_args("sleep", "1000")
        proc = pyrunc("create", "--bundle", bundle.path, cid, pass_fds=(fd,))
        assert proc.returncode == 0, proc.stderr
        init = pyrunc.state(cid)["pid"]
        assert "host data" not in _ns_proc_scan(init, "host-secret")
        assert str(host_dir) not in fds_of(init).values(), fds_of(init)
    finally:
        os.close(fd)


def _pidns_members(init: int) -> set[int]:
    """Host pids of the processes in the pid namespace of `init`."""
    ns = os.readlink(f"/proc/{init}/ns/pid")
    out = set()
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.readlink(f"/proc/{name}/ns/pid") == ns:
                out.add(int(name))
        except OSError:
            pass
    return out


def _in_syscall(pid: int, number: int) -> bool:
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == str(number)
    except (OSError, IndexError):
        return False


SYS_EXECVEAT = 322  # x86_64


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is missing (tests/setup.sh)")
def test_s11_create_container_hook_holds_no_host_fd_in_a_shared_pid_namespace(
    bundle: Bundle, busybox_bundle: Path, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """A createContainer hook runs in the container's namespaces. In a pod whose containers
    share one pid namespace, another container's root with CAP_SYS_PTRACE sees the hook's
    process from its clone to its execve, and must not reach through it a host directory the
    caller of `create` held (nor pyrunc's own fds: the state directory's lock, the exec fifo).
    The hook's process is held deterministically at its execveat (strace delays it). On the
    old code the scan read the host directory through /proc/N/fd of the hook's process."""
    from conftest import new_id

    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    fd = leaked_dir_fd(host_dir)
    pod, cid = new_id("sec"), new_id("sec")
    second = tmp_path / "second"
    subprocess.run(["cp", "-a", str(busybox_bundle), str(second)], check=True)
    other = Bundle(second)
    tracer = None
    try:
        init = start_sleeper(pyrunc, bundle, pod)
        before = _pidns_members(init)
        for ns in other.config["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{init}/ns/pid"
        other.config["hooks"] = {"createContainer": [{"path": "/bin/true", "args": ["true"]}]}
        other.set_args("sleep", "1000")
        strace = ["strace", "-I1", "-f", "-qq", "-o", "/dev/null", "-e", "trace=execveat",
                  "-e", "inject=execveat:delay_enter=20000000"]  # fmt: skip
        create = [sys.executable, "-m", "pyrunc", "--root", str(pyrunc.root), "create",
                  "--bundle", str(other.path), cid]  # fmt: skip
        tracer = Running([*strace, *create], pass_fds=(fd,))

        def hook_held() -> int | None:
            return next((p for p in _pidns_members(init) - before
                         if _in_syscall(p, SYS_EXECVEAT)), None)  # fmt: skip

        wait_for(hook_held, what="the createContainer hook at its execveat")
        held = hook_held()
        assert held is not None
        leaked = {n: t for n, t in fds_of(held).items() if n > 2}
        found = _ns_proc_scan(init, "host-secret")
        assert "host data" not in found, (found, leaked)
        # what the hook's own plan opened (the rootfs it runs in, its executable) aside
        ours = [t for t in leaked.values() if str(pyrunc.root) in t or str(host_dir) in t]
        assert not ours, leaked
    finally:
        os.close(fd)
        if tracer is not None:
            tracer.proc.terminate()  # strace detaches: the create goes on
            tracer.wait(30)
            pyrunc.wait_status(cid, "created", timeout=30)


NO_OPENAT2 = {"defaultAction": "SCMP_ACT_ALLOW",
              "syscalls": [{"names": ["openat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def test_s2_exec_cwd_without_openat2_never_reaches_the_host(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """Issue 12.3: a seccomp profile makes openat2 fail with EPERM (older Docker profiles),
    noNewPrivileges is false, and the caller of `exec` holds a host directory: --cwd
    /proc/self/fd/N must not lead there, whether the fd is closed (the default) or passed on
    (--preserve-fds). Cwds inside the container, through symlinks too, still work."""
    from conftest import new_id

    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    fd = leaked_dir_fd(host_dir)
    bundle.process["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = NO_OPENAT2
    bundle.config["root"]["readonly"] = False
    (bundle.rootfs / "srv" / "real").mkdir(parents=True)
    (bundle.rootfs / "lnk").symlink_to("srv/real")
    (bundle.rootfs / "srv" / "up").symlink_to("../../../../srv")
    cid = new_id("sec")
    try:
        start_sleeper(pyrunc, bundle, cid)
        for extra in ([], ["--preserve-fds", str(fd - 2)]):
            proc = pyrunc("exec", *extra, "--cwd", f"/proc/self/fd/{fd}", cid, "sh", "-c",
                          "pwd -P; ls -a", pass_fds=(fd,))  # fmt: skip
            assert "host-secret" not in proc.stdout.split(), (extra, proc.stdout)
            assert proc.returncode == 255, (extra, proc.stdout, proc.stderr)
            assert "cwd" in one_line(proc.stderr), proc.stderr
        for cwd, want in (("/lnk", "/srv/real"), ("/srv/up/real/../real", "/srv/real"),
                          ("/tmp/../..", "/")):
            proc = pyrunc("exec", "--cwd", cwd, cid, "pwd", "-P")
            assert (proc.returncode, proc.stdout.strip()) == (0, want), (cwd, proc.stderr)
    finally:
        os.close(fd)


@pytest.fixture
def loop_device(tmp_path: Path) -> Any:
    """A loop block device over a small file of known content: (path, major, minor)."""
    backing = tmp_path / "loop-backing"
    backing.write_bytes(b"LOOP-DEVICE-CONTENT\n" + b"root:x:0:0:root:/from-a-device:/bin/sh\n"
                        + b"\0" * (1 << 16))
    proc = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                          text=True, timeout=30)
    if proc.returncode != 0:
        pytest.skip(f"no loop device: {proc.stderr.strip()}")
    path = proc.stdout.strip()
    st = os.stat(path)
    try:
        yield path, os.major(st.st_rdev), os.minor(st.st_rdev)
    finally:
        subprocess.run(["losetup", "-d", path], capture_output=True, timeout=30)


@pytest.mark.parametrize("resources", ["deny-all", "read-only"])
def test_s13_linux_devices_never_widen_the_device_cgroup(
    bundle: Bundle, pyrunc: Pyrunc, loop_device: Any, resources: str
) -> None:
    """Issue 12.2: a block device listed in linux.devices while linux.resources.devices denies
    it (or allows only `r`): the node exists, access is what the resources say."""
    from conftest import new_id

    _path, major, minor = loop_device
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/xblk", "type": "b", "major": major, "minor": minor, "fileMode": 0o666}]
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    if resources == "read-only":
        rules.append({"allow": True, "type": "b", "major": major, "minor": minor, "access": "r"})
    bundle.config["linux"]["resources"] = {"devices": rules}
    bundle.sh("ls -l /dev/xblk >/dev/null && echo NODE; head -c 19 /dev/xblk; echo; "
              "(exec 3<>/dev/xblk) 2>/dev/null && echo OPENED-FOR-WRITING; true")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
    assert proc.returncode == 0, proc.stderr
    assert "NODE" in proc.stdout
    assert "OPENED-FOR-WRITING" not in proc.stdout
    if resources == "deny-all":
        assert "LOOP-DEVICE-CONTENT" not in proc.stdout
    else:
        assert "LOOP-DEVICE-CONTENT" in proc.stdout


def _passwd_bundle(bundle: Bundle) -> Path:
    """A container whose env has no HOME (so it comes from /etc/passwd); /etc/passwd removed."""
    bundle.process["env"] = [e for e in bundle.process["env"] if not e.startswith("HOME=")]
    bundle.process["user"] = {"uid": 0, "gid": 0}
    passwd = bundle.rootfs / "etc" / "passwd"
    if passwd.exists() or passwd.is_symlink():
        passwd.unlink()
    bundle.sh("echo HOME=$HOME")
    return passwd


def test_s12_passwd_that_is_a_block_device_is_not_read(
    bundle: Bundle, pyrunc: Pyrunc, loop_device: Any
) -> None:
    """Issue 12.5: the image's /etc/passwd is a block device node (the container itself may
    not open it): its contents never become HOME; HOME falls back to "/" as in runc."""
    from conftest import new_id

    path, major, minor = loop_device
    passwd = _passwd_bundle(bundle)
    os.mknod(passwd, 0o644 | stat.S_IFBLK, os.makedev(major, minor))
    proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
    assert (proc.returncode, proc.stdout.strip()) == (0, "HOME=/"), proc.stderr


def test_s12_passwd_that_is_a_fifo_does_not_hang(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """Issue 12.5: a FIFO at /etc/passwd hung `create` and every `exec` without HOME."""
    from conftest import new_id

    passwd = _passwd_bundle(bundle)
    os.mkfifo(passwd)
    proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"), timeout=15)
    assert (proc.returncode, proc.stdout.strip()) == (0, "HOME=/"), proc.stderr
    cid = new_id("sec")
    bundle.process["env"].append("HOME=/root")
    start_sleeper(pyrunc, bundle, cid)
    process = dict(bundle.process, args=["sh", "-c", "echo HOME=$HOME"],
                   env=["PATH=/bin:/usr/bin"])
    spec = bundle.path / "exec-process.json"
    spec.write_text(json.dumps(process))
    proc = pyrunc("exec", "--process", spec, cid, timeout=15)
    assert (proc.returncode, proc.stdout.strip()) == (0, "HOME=/"), proc.stderr


def test_s12_passwd_symlinks_resolve_inside_the_rootfs(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """Relative and absolute symlinks inside the image are followed, as runc (which reads the
    file from inside the container) follows them; an absolute one names a path of the rootfs,
    never the host's."""
    from conftest import new_id

    passwd = _passwd_bundle(bundle)
    share = bundle.rootfs / "usr" / "share"
    share.mkdir(parents=True, exist_ok=True)
    (share / "passwd").write_text("root:x:0:0:root:/home/from-relative-link:/bin/sh\n")
    passwd.symlink_to("../usr/share/passwd")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
    assert (proc.returncode, proc.stdout.strip()) == (0, "HOME=/home/from-relative-link"), \
        proc.stderr
    host = tmp_path / "host-passwd"
    host.write_text("root:x:0:0:root:/home/from-the-host:/bin/sh\n")
    in_rootfs(bundle, host).parent.mkdir(parents=True, exist_ok=True)
    in_rootfs(bundle, host).write_text("root:x:0:0:root:/home/in-the-rootfs:/bin/sh\n")
    passwd.unlink()
    passwd.symlink_to(host)
    proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
    assert (proc.returncode, proc.stdout.strip()) == (0, "HOME=/home/in-the-rootfs"), proc.stderr


def test_s3_dev_console_symlink_inside_the_rootfs_is_replaced(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """Issue 12 (CVE-2025-52565): with process.terminal, an image's /dev/console that is a
    symlink (here to a file of the image) is never followed, nor silently left: it is
    replaced, and the pty is what the container sees at /dev/console."""
    from conftest import new_id
    from helpers_security import ConsoleReceiver

    no_dev_mount(bundle)
    bundle.config["root"]["readonly"] = False
    dev = bundle.rootfs / "dev"
    os.mknod(dev / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    (dev / "ptmx").symlink_to("pts/ptmx")
    target = bundle.rootfs / "etc" / "console-target"
    target.write_text("image file\n")
    (dev / "console").symlink_to("/etc/console-target")
    bundle.process["terminal"] = True
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    bundle.sh("[ -L /dev/console ] && echo STILL-A-SYMLINK; [ -c /dev/console ] && "
              "echo CONSOLE-IS-A-PTY; grep -c console-target /proc/self/mountinfo; true")
    proc = pyrunc("run", "--console-socket", receiver.path, "--bundle", bundle.path,
                  new_id("sec"))
    output = receiver.wait()
    assert proc.returncode == 0, proc.stderr
    assert "CONSOLE-IS-A-PTY" in output and "STILL-A-SYMLINK" not in output, output
    assert target.read_text() == "image file\n"
    assert output.split()[-1] == "0", output


def _restore(path: Path, value: str) -> None:
    if path.read_text() != value:
        path.write_text(value)


def test_s14_sysctl_through_a_symlink_in_a_bind_mount_over_proc_sys_net(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """Issue 12.1: the config binds a bundle directory at /proc/sys/net (right after /proc);
    in it `x` is a symlink to /proc/sys/kernel, and linux.sysctl asks for
    net.x.printk_ratelimit_burst. The HOST's value must not change: the mount is refused
    (inside /proc, as runc refuses it)."""
    from conftest import new_id

    host = Path("/proc/sys/kernel/printk_ratelimit_burst")
    before = host.read_text()
    fake = bundle.path / "fake-net"
    fake.mkdir()
    (fake / "x").symlink_to("/proc/sys/kernel")
    mounts = bundle.config["mounts"]
    at = next(i for i, m in enumerate(mounts) if m["destination"] == "/proc") + 1
    mounts.insert(at, {"destination": "/proc/sys/net", "type": "bind", "source": str(fake),
                       "options": ["rbind"]})
    bundle.config["linux"]["sysctl"] = {"net.x.printk_ratelimit_burst": str(int(before) + 3)}
    bundle.set_args("true")
    try:
        proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
        assert host.read_text() == before
        assert proc.returncode == 1, proc.stderr
        assert "/proc/sys/net" in one_line(proc.stderr)
    finally:
        _restore(host, before)


def test_s14_sysctl_through_a_mount_made_behind_the_configs_back(
    bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    """The same redirection made where no config check can see it: a createRuntime hook
    (standing for any process sharing the init's mount namespace) binds the directory over
    <rootfs>/proc/sys/net before pivot_root. The write is resolved beneath pyrunc's own
    procfs root without crossing mounts or following symlinks, so it fails."""
    from conftest import new_id

    host = Path("/proc/sys/kernel/printk_ratelimit_burst")
    before = host.read_text()
    fake = tmp_path / "fake-net"
    fake.mkdir()
    (fake / "x").symlink_to("/proc/sys/kernel")
    target = bundle.rootfs / "proc" / "sys" / "net"
    code = ("import json, subprocess, sys; pid = json.load(sys.stdin)['pid']; "
            f"subprocess.run(['nsenter', '-t', str(pid), '-m', 'mount', '--bind', {str(fake)!r}, "
            f"{str(target)!r}], check=True)")
    bundle.config["hooks"] = {"createRuntime": [{"path": sys.executable,
                                                 "args": [sys.executable, "-c", code]}]}
    bundle.config["linux"]["sysctl"] = {"net.x.printk_ratelimit_burst": str(int(before) + 3)}
    bundle.set_args("true")
    try:
        proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
        assert host.read_text() == before
        assert proc.returncode == 1, proc.stderr
        assert "net.x.printk_ratelimit_burst" in one_line(proc.stderr)
    finally:
        _restore(host, before)


def _refused(pyrunc: Pyrunc, bundle: Bundle, *words: str) -> None:
    from conftest import new_id

    bundle.set_args("true")
    proc = pyrunc("create", "--bundle", bundle.path, new_id("sec"))
    assert proc.returncode == 1, proc.stdout
    line = one_line(proc.stderr)
    for word in words:
        assert word in line, (word, line)
    assert os.listdir(pyrunc.root) == []


@pytest.mark.parametrize("key", [
    "kernel.hostname",               # runc: conflicts with the `hostname` field
    "kernel.printk_ratelimit_burst",  # the host's
    "kernel.msg_not_a_sysctl", "kernel.shm", "fs.mqueue", "fs.mqueue.",  # not in the set
    "net..ipv4.ip_forward", "net.ipv4/../../kernel/printk", "net.ipv4.ip_forward.",
])  # fmt: skip
def test_s14_sysctl_keys_outside_the_namespaced_set_are_refused(
    bundle: Bundle, pyrunc: Pyrunc, key: str
) -> None:
    bundle.config["linux"]["sysctl"] = {key: "1"}
    _refused(pyrunc, bundle, f"linux.sysctl.{key}")


def test_s14_namespaced_sysctls_are_written(bundle: Bundle, pyrunc: Pyrunc) -> None:
    from conftest import new_id

    bundle.config["linux"]["sysctl"] = {"kernel.msgmax": "4242", "kernel.sem": "1 2 3 4",
                                        "fs.mqueue.msg_max": "77", "kernel.domainname": "dom",
                                        "net.ipv4.ip_forward": "1"}
    bundle.sh("cat /proc/sys/kernel/msgmax /proc/sys/fs/mqueue/msg_max "
              "/proc/sys/kernel/domainname /proc/sys/net/ipv4/ip_forward; "
              "cat /proc/sys/kernel/sem | tr -s ' \\t' ' '")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["4242", "77", "dom", "1", "1", "2", "3", "4"]


@pytest.mark.parametrize(("dest", "type_", "words"), [
    ("/proc/sys/net", "bind", ("mounts[", "/proc/sys/net", "inside /proc")),
    ("/proc/kcore", "bind", ("/proc/kcore", "inside /proc")),
    ("/proc/self/../sys/kernel", "bind", ("/proc/sys/kernel", "inside /proc")),
    ("/proc", "tmpfs", ("/proc", "not of type proc")),
    ("/proc", "bind", ("/proc", "not of type proc")),
])  # fmt: skip
def test_s14_mounts_inside_proc_are_refused(
    bundle: Bundle, pyrunc: Pyrunc, dest: str, type_: str, words: tuple[str, ...]
) -> None:
    source = bundle.path / "mount-source"
    source.mkdir()
    if dest == "/proc/kcore":
        source = bundle.rootfs / "etc" / "hostname"
        source.write_text("x\n")
    bundle.add_mount(dest, type_, str(source) if type_ == "bind" else "tmpfs",
                     ["rbind"] if type_ == "bind" else [])
    _refused(pyrunc, bundle, *words)


def test_s14_lxcfs_style_mounts_inside_proc_are_allowed(bundle: Bundle, pyrunc: Pyrunc) -> None:
    from conftest import new_id

    fake = bundle.path / "cpuinfo"
    fake.write_text("processor : lxcfs-style\n")
    bundle.add_mount("/proc/cpuinfo", "bind", str(fake), ["bind", "ro"])
    bundle.add_mount("/proc", "bind", "/proc", ["rbind"])  # a procfs source on /proc: runc too
    bundle.add_mount("/proc/cpuinfo", "bind", str(fake), ["bind", "ro"])
    bundle.sh("cat /proc/cpuinfo")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("sec"))
    assert (proc.returncode, proc.stdout) == (0, "processor : lxcfs-style\n"), proc.stderr


@pytest.mark.parametrize("what", ["proc-symlink", "sys-symlink", "proc-file"])
def test_s14_proc_and_sys_must_be_ordinary_directories(
    bundle: Bundle, pyrunc: Pyrunc, what: str
) -> None:
    """runc: `filesystem "proc" must be mounted on ordinary directory`. A symlink there (even
    one pointing inside the rootfs) is refused, never followed."""
    name = what.split("-")[0]
    where = bundle.rootfs / name
    shutil.rmtree(where)
    (bundle.rootfs / "elsewhere").mkdir()
    if what.endswith("symlink"):
        where.symlink_to("elsewhere")
    else:
        where.write_text("")
    _refused(pyrunc, bundle, "must be mounted on ordinary directory")
    assert os.listdir(bundle.rootfs / "elsewhere") == []


def test_s4_masks_through_a_fake_proc_self_fd_are_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """Masks and read-only paths are mounted through /proc/self/fd/N, resolved in the
    container after pivot_root. Without a proc mount, an image can plant /proc/self/fd/* as
    symlinks to a decoy, so the mask would land on the decoy and the masked directory stay
    readable. (On the old code `create` succeeded with the mask misplaced; the init then died
    waiting for `start`, which also reopens an fd through /proc, so nothing ran in it.)
    pyrunc now checks that /proc is a procfs root first, or refuses."""
    from conftest import new_id

    bundle.config["mounts"] = [m for m in bundle.config["mounts"]
                               if m["type"] not in ("proc", "sysfs", "cgroup")]
    secret = bundle.rootfs / "etc" / "secret-dir"
    secret.mkdir()
    (secret / "secret").write_text("must be masked\n")
    (bundle.rootfs / "decoy").mkdir()
    fake = bundle.rootfs / "fakeself" / "fd"
    fake.mkdir(parents=True)
    for n in range(64):
        (fake / str(n)).symlink_to("/decoy")
    (bundle.rootfs / "proc" / "self").symlink_to("/fakeself")
    bundle.config["linux"]["maskedPaths"] = ["/etc/secret-dir"]
    bundle.config["linux"]["readonlyPaths"] = []
    bundle.set_args("sleep", "1000")
    cid = new_id("sec")
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1, proc.stdout
    assert "/proc is not the container's procfs" in one_line(proc.stderr)


@pytest.mark.parametrize("kind", ["fifo", "file"])
def test_s12_namespace_path_that_is_not_a_namespace(
    bundle: Bundle, pyrunc: Pyrunc, kind: str
) -> None:
    """A namespace path of the config (a host path) that is a FIFO hung create in open(2);
    one that is a plain file was opened too. Only an nsfs file is opened now."""
    path = bundle.path / f"not-a-namespace-{kind}"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("x\n")
    for ns in bundle.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = str(path)
    _refused(pyrunc, bundle, "linux.namespaces[", str(path), "not a namespace file")
