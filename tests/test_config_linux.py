"""config.md / config-linux.md, checked from inside real containers (or on the host).

Mounts (flags, recursion, propagation, filesystems, destinations, idmapped mounts), /dev, user
namespaces, the process's terminal, fds and scheduling, and the linux section (sysctl, time
namespace, personality, memory policy, unsupported features). Every refusal checks its error
text and that nothing was left under --root.

Not here: what tests/test_environment.py covers (pid 1, hostname, args/env/cwd, uid/gid/groups,
umask, rlimits, capabilities, no_new_privs, --preserve-fds, plain bind/tmpfs mounts, default
devices and /dev links, masked/readonly paths, readonly root), what test_create_failures.py
refuses (bad rlimit, missing bind source, unknown sysctl), hooks (test_hooks.py), seccomp,
cgroups and exec.
"""

from __future__ import annotations

import array
import json
import os
import re
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from conftest import (
    USERNS_HOST_BASE,
    USERNS_SIZE,
    Bundle,
    Pyrunc,
    error_message,
    host_mounts,
    new_id,
    new_mounts_under,
    new_processes_of,
    other_pidns_processes,
    pid_alive,
)

SEP = "@@@"  # separates the sections of a container's output

# --- helpers -------------------------------------------------------------------------


def run_sh(pyrunc: Pyrunc, bundle: Bundle, script: str, *flags: Any, **kwargs: Any) -> str:
    """Write the config with `sh -c script`, `run` it in the foreground; its stdout.

    Ids come from conftest's new_id: cgroups are named after the id (/pyrunc/<id>)."""
    bundle.sh(script)
    cid = new_id()
    proc = pyrunc("run", "--bundle", bundle.path, *flags, cid, **kwargs)
    assert proc.returncode == 0, f"run failed ({proc.returncode}): {proc.stderr}\n{proc.stdout}"
    assert not (pyrunc.root / cid).exists(), "run did not delete the container"
    return proc.stdout


def sections(text: str) -> list[str]:
    return [part.strip("\n") for part in text.split(SEP)]


def assert_refused(pyrunc: Pyrunc, bundle: Bundle, *words: str) -> str:
    """`create` fails with one error line containing every word; nothing is left behind."""
    bundle.write()
    cid = new_id("bad")
    mounts_before = host_mounts()
    procs_before = other_pidns_processes()
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1, f"create succeeded: {proc.stdout} {proc.stderr}"
    message = error_message(proc.stderr)
    for word in words:
        assert word in message, f"{word!r} not in the error: {message}"
    assert os.listdir(pyrunc.root) == [], f"{cid} left under --root"
    assert new_processes_of(procs_before, pyrunc.root, bundle.path) == []
    assert new_mounts_under(mounts_before, bundle.path) == []
    state = pyrunc("state", cid)
    assert state.returncode == 1 and "does not exist" in state.stderr
    return message


class MountInfo(NamedTuple):
    root: str
    mountpoint: str
    options: set[str]
    optional: list[str]
    fstype: str
    source: str
    super_options: set[str]


def parse_mountinfo(text: str) -> dict[str, MountInfo]:
    """/proc/self/mountinfo by mount point (the last, i.e. visible, mount wins)."""
    out = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        fstype, source, superopts = (right.split() + ["", "", ""])[:3]
        out[fields[4]] = MountInfo(
            root=fields[3],
            mountpoint=fields[4],
            options=set(fields[5].split(",")),
            optional=fields[6:],
            fstype=fstype,
            source=source,
            super_options=set(superopts.split(",")),
        )
    return out


def container_mounts(pyrunc: Pyrunc, bundle: Bundle, then: str = "true") -> tuple[
        dict[str, MountInfo], list[str]]:
    """The container's mount table and the sections printed by the `then` script."""
    out = run_sh(pyrunc, bundle, f"cat /proc/self/mountinfo; echo {SEP}; {then}")
    parts = sections(out)
    return parse_mountinfo(parts[0]), parts[1:]


def status_field(text: str, name: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"{name} not in {text!r}")


def host_sysctl(key: str) -> str:
    return Path("/proc/sys", key.replace(".", "/")).read_text().strip()


def has_cap_sys_resource() -> bool:
    eff = int(status_field(Path("/proc/self/status").read_text(), "CapEff"), 16)
    return bool(eff >> 24 & 1)


@pytest.fixture
def source_tree(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a file (owned by root) and a tmpfs submount holding a file."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("top\n")
    os.chown(src / "file", 0, 0)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(src / "sub")],
                   check=True)
    try:
        (src / "sub" / "inner").write_text("inner\n")
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=False)


# --- mounts --------------------------------------------------------------------------


def test_bind_flags_applied_by_remount(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    src = tmp_path / "flags"
    src.mkdir()
    (src / "script").write_text("#!/bin/sh\necho ran\n")
    (src / "script").chmod(0o755)
    bundle.add_mount("/locked", "bind", str(src), ["bind", "ro", "nosuid", "nodev", "noexec"])
    bundle.add_mount("/open", "bind", str(src), ["bind"])
    mounts, rest = container_mounts(
        pyrunc, bundle,
        f"touch /locked/new 2>/dev/null && echo wrote || echo ro; echo {SEP}; "
        f"/locked/script 2>/dev/null || echo noexec; echo {SEP}; /open/script",
    )  # fmt: skip
    locked = mounts["/locked"]
    assert {"ro", "nosuid", "nodev", "noexec"} <= locked.options, locked
    assert locked.root.endswith("/flags")
    opened = mounts["/open"]
    assert "rw" in opened.options and not {"nosuid", "nodev", "noexec"} & opened.options
    assert rest[0] == "ro"
    assert rest[1] == "noexec"
    assert rest[2] == "ran"
    assert not (src / "new").exists()


def test_rbind_carries_submounts_bind_does_not(
    bundle: Bundle, pyrunc: Pyrunc, source_tree: Path
) -> None:
    bundle.add_mount("/rec", "bind", str(source_tree), ["rbind"])
    bundle.add_mount("/flat", "bind", str(source_tree), ["bind"])
    mounts, rest = container_mounts(
        pyrunc, bundle,
        f"cat /rec/sub/inner; echo {SEP}; ls -A /flat/sub; echo {SEP}; cat /flat/file",
    )
    assert mounts["/rec/sub"].fstype == "tmpfs"
    assert "/flat/sub" not in mounts
    assert rest == ["inner", "", "top"]


def test_recursive_attributes_reach_submounts(
    bundle: Bundle, pyrunc: Pyrunc, source_tree: Path
) -> None:
    bundle.add_mount("/r", "bind", str(source_tree), ["rbind", "rro", "rnosuid", "rnoexec"])
    # plain ro on an rbind only reaches the top mount
    bundle.add_mount("/p", "bind", str(source_tree), ["rbind", "ro"])
    mounts, rest = container_mounts(
        pyrunc, bundle,
        f"touch /r/sub/x 2>/dev/null && echo wrote || echo ro; echo {SEP}; "
        "touch /p/sub/y 2>/dev/null && echo wrote || echo ro",
    )  # fmt: skip
    for where in ("/r", "/r/sub"):
        assert {"ro", "nosuid", "noexec"} <= mounts[where].options, mounts[where]
    assert "ro" in mounts["/p"].options
    assert "rw" in mounts["/p/sub"].options
    assert rest[0] == "ro"
    assert rest[1] == "wrote"
    # the host's submount itself is untouched
    assert (source_tree / "sub" / "y").exists()
    assert "ro" not in _host_mount(source_tree / "sub").options


def _host_mount(path: Path) -> MountInfo:
    return parse_mountinfo(Path("/proc/self/mountinfo").read_text())[str(path)]


def test_per_mount_propagation(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    src = tmp_path / "prop"
    src.mkdir()
    before = host_mounts()
    rootfs = os.path.realpath(bundle.rootfs)
    (bundle.rootfs / "shared").mkdir()  # the runtime checks that a bind source exists
    bundle.add_mount("/shared", "bind", str(src), ["rbind", "shared"])
    # a bind of the shared mount (made just before, inside the container) joins its peer
    # group; "slave" then turns it into a slave of that group: master:N
    bundle.add_mount("/slave", "bind", f"{rootfs}/shared", ["rbind", "slave"])
    bundle.add_mount("/private", "bind", f"{rootfs}/shared", ["rbind", "private"])
    bundle.add_mount("/unbindable", "bind", str(src), ["rbind", "unbindable"])
    mounts, _ = container_mounts(pyrunc, bundle)
    shared = [f for f in mounts["/shared"].optional if f.startswith("shared:")]
    assert len(shared) == 1, mounts["/shared"]
    group = shared[0].split(":")[1]
    assert mounts["/slave"].optional == [f"master:{group}"], mounts["/slave"]
    assert mounts["/private"].optional == [], mounts["/private"]
    assert mounts["/unbindable"].optional == ["unbindable"], mounts["/unbindable"]
    # none of it reached the host's mount table
    assert new_mounts_under(before, tmp_path) == []


def test_sysfs_mqueue_devpts_and_shm(bundle: Bundle, pyrunc: Pyrunc) -> None:
    # the default config mounts them: sysfs (ro), mqueue, devpts newinstance ptmxmode=0666
    mounts, rest = container_mounts(
        pyrunc, bundle,
        f"ls /sys/kernel >/dev/null && echo sys-ok; echo {SEP}; stat -c '%a %t:%T' /dev/pts/ptmx;"
        f" echo {SEP}; stat -c %d /dev/pts; echo {SEP}; echo shm > /dev/shm/x && cat /dev/shm/x",
    )  # fmt: skip
    assert mounts["/sys"].fstype == "sysfs" and "ro" in mounts["/sys"].options
    assert mounts["/dev/mqueue"].fstype == "mqueue"
    assert {"nosuid", "nodev", "noexec"} <= mounts["/dev/mqueue"].options
    pts = mounts["/dev/pts"]
    assert pts.fstype == "devpts"
    assert "ptmxmode=666" in pts.super_options, pts
    assert "gid=5" in pts.super_options and "mode=620" in pts.super_options
    assert rest[0] == "sys-ok"
    assert rest[1] == "666 5:2"
    # a new devpts instance: not the host's /dev/pts
    assert int(rest[2]) != os.stat("/dev/pts").st_dev
    assert mounts["/dev/shm"].fstype == "tmpfs" and rest[3] == "shm"


@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "cgroupns"])
def test_cgroup_mount(bundle: Bundle, pyrunc: Pyrunc, cgroupns: bool) -> None:
    if cgroupns:
        bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    assert any(m["type"] == "cgroup" for m in bundle.config["mounts"])  # "ro" in the default
    mounts, rest = container_mounts(
        pyrunc, bundle,
        "ls /sys/fs/cgroup/memory/cgroup.procs; "
        "mkdir /sys/fs/cgroup/memory/x 2>/dev/null && echo made || echo ro",
    )
    top = mounts["/sys/fs/cgroup"]
    assert "ro" in top.options
    memory = mounts["/sys/fs/cgroup/memory"]
    assert memory.fstype == "cgroup" and "memory" in memory.super_options
    assert "ro" in memory.options
    if cgroupns:
        assert memory.root == "/"
    assert rest[0].splitlines() == ["/sys/fs/cgroup/memory/cgroup.procs", "ro"]


def test_relative_destination(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    src = tmp_path / "rel"
    src.mkdir()
    (src / "hello").write_text("relative\n")
    bundle.config["mounts"].append(
        {"destination": "data", "type": "bind", "source": str(src), "options": ["rbind"]}
    )
    mounts, rest = container_mounts(pyrunc, bundle, "cat /data/hello")
    assert "/data" in mounts
    assert rest == ["relative"]


def test_missing_destinations_are_created(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    src_dir = tmp_path / "d"
    src_dir.mkdir()
    (src_dir / "in-dir").write_text("dir\n")
    src_file = tmp_path / "f.conf"
    src_file.write_text("file\n")
    bundle.add_mount("/deep/er/still/dir", "bind", str(src_dir), ["rbind"])
    bundle.add_mount("/etc/new/sub/app.conf", "bind", str(src_file), ["bind", "ro"])
    mounts, rest = container_mounts(
        pyrunc, bundle,
        "cat /deep/er/still/dir/in-dir; stat -c %F /etc/new/sub/app.conf; "
        "cat /etc/new/sub/app.conf",
    )
    assert "/deep/er/still/dir" in mounts and "/etc/new/sub/app.conf" in mounts
    assert rest[0].splitlines() == ["dir", "regular file", "file"]
    # the target was made inside the rootfs, as a file for the file bind
    assert (bundle.rootfs / "deep/er/still/dir").is_dir()
    assert (bundle.rootfs / "etc/new/sub/app.conf").is_file()


IDMAP = {
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}],
    "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}],
}


def test_idmapped_bind_mount(bundle: Bundle, pyrunc: Pyrunc, source_tree: Path) -> None:
    bundle.config["mounts"].append({"destination": "/mapped", "type": "bind",
                                    "source": str(source_tree), "options": ["bind", "idmap"],
                                    **IDMAP})  # fmt: skip
    bundle.add_mount("/plain", "bind", str(source_tree), ["bind"])
    mounts, rest = container_mounts(
        pyrunc, bundle, f"stat -c '%u %g' /mapped/file; echo {SEP}; stat -c '%u %g' /plain/file"
    )
    assert "idmapped" in mounts["/mapped"].options, mounts["/mapped"]
    assert "idmapped" not in mounts["/plain"].options
    assert rest == ["1000 2000", "0 0"]
    assert os.stat(source_tree / "file").st_uid == 0  # the host's file is unchanged


def test_ridmap_maps_submounts(bundle: Bundle, pyrunc: Pyrunc, source_tree: Path) -> None:
    bundle.config["mounts"].append({"destination": "/mapped", "type": "bind",
                                    "source": str(source_tree), "options": ["rbind", "ridmap"],
                                    **IDMAP})  # fmt: skip
    mounts, rest = container_mounts(pyrunc, bundle, "stat -c '%u %g' /mapped/sub/inner")
    for where in ("/mapped", "/mapped/sub"):
        assert "idmapped" in mounts[where].options, mounts[where]
    assert rest == ["1000 2000"]


def test_rbind_with_idmap_keeps_submounts(
    bundle: Bundle, pyrunc: Pyrunc, source_tree: Path
) -> None:
    """config.md: idmap or ridmap says whether the mapping is recursive *for rbind mounts*:
    rbind + idmap is still a recursive bind (the submount is there), only the top is mapped."""
    bundle.config["mounts"].append({"destination": "/mapped", "type": "bind",
                                    "source": str(source_tree), "options": ["rbind", "idmap"],
                                    **IDMAP})  # fmt: skip
    mounts, rest = container_mounts(
        pyrunc, bundle, "stat -c '%u %g' /mapped/file; cat /mapped/sub/inner || echo missing"
    )
    assert "idmapped" in mounts["/mapped"].options
    assert "/mapped/sub" in mounts, "rbind + idmap lost the submount"
    assert "idmapped" not in mounts["/mapped/sub"].options
    assert rest[0].splitlines() == ["1000 2000", "inner"]


def test_idmap_without_mappings_is_refused(
    bundle: Bundle, pyrunc: Pyrunc, source_tree: Path
) -> None:
    bundle.add_mount("/mapped", "bind", str(source_tree), ["bind", "idmap"])
    index = len(bundle.config["mounts"]) - 1
    assert_refused(pyrunc, bundle, f"mounts[{index}]", "idmap")


def test_idmap_on_a_non_bind_mount_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["idmap"], **IDMAP})  # fmt: skip
    index = len(bundle.config["mounts"]) - 1
    assert_refused(pyrunc, bundle, f"mounts[{index}]", "bind")


def _without_mount_namespace(bundle: Bundle) -> str:
    """The bundle without a mount namespace; its rootfs as the mount table names it."""
    namespaces = bundle.config["linux"]["namespaces"]
    bundle.config["linux"]["namespaces"] = [n for n in namespaces if n["type"] != "mount"]
    return os.path.realpath(bundle.path / "rootfs")


def _mounts_at_or_below(path: str) -> list[str]:
    return [line for line in host_mounts() if line.split()[2] == path
            or line.split()[2].startswith(path + "/")]  # fmt: skip


def test_mountinfo_fields_and_the_top_of_a_mount_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyrunc.mountinfo, which delete uses to find the init's bind mount on the rootfs (a fake
    table: the stacking order must not depend on the line order)."""
    from pyrunc import mountinfo

    table = (
        "40 1 0:5 / /b\\040x rw - tmpfs tmpfs rw\n"
        "52 41 8:1 /r /b\\040x/rootfs ro - ext4 /dev/vda rw\n"
        "41 40 8:1 /r /b\\040x/rootfs rw - ext4 /dev/vda rw\n"
        "60 52 0:9 / /b\\040x/rootfs/proc rw - proc proc rw\n"
    )
    mounts = list(mountinfo.parse(table))
    assert [m.mount_point for m in mounts][:2] == ["/b x", "/b x/rootfs"]
    assert (mounts[1].root, mounts[1].fstype, mounts[1].superopts) == ("/r", "ext4", "rw")
    monkeypatch.setattr(mountinfo, "read", lambda: list(mountinfo.parse(table)))
    assert mountinfo.top_mount_id("/b x/rootfs") == 52
    assert mountinfo.top_mount_id("/nowhere") is None


def test_without_a_mount_namespace_delete_unmounts_what_create_mounted(
    bundle: Bundle, pyrunc: Pyrunc
) -> None:
    """config-linux.md: a namespace not listed is inherited, so the container's mounts are made
    in the runtime's mount namespace (the host's here); runtime.md: delete removes what create
    made. The container is entered with chroot."""
    rootfs = _without_mount_namespace(bundle)
    bundle.set_args("sleep", "100")
    cid = new_id("nomntns")
    try:
        pyrunc("create", "--bundle", bundle.path, cid, check=True)
        made = _mounts_at_or_below(rootfs)
        assert any(line.split()[2] == rootfs + "/proc" for line in made), made
        pyrunc("delete", "--force", cid, check=True)
        assert _mounts_at_or_below(rootfs) == []
    finally:
        pyrunc("delete", "--force", cid)
        for line in sorted(_mounts_at_or_below(rootfs), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", line.split()[2]], check=False)


def test_without_a_mount_namespace_a_failed_create_leaves_no_mount(
    bundle: Bundle, pyrunc: Pyrunc
) -> None:
    rootfs = _without_mount_namespace(bundle)
    # the last mount fails, after /proc, /dev and the others were made in the host's namespace
    bundle.add_mount("/mnt", "no-such-filesystem-type", "none", [])
    bundle.write()
    cid = new_id("nomntns")
    try:
        proc = pyrunc("create", "--bundle", bundle.path, cid)
        assert proc.returncode == 1, proc.stderr
        assert "no-such-filesystem-type" in error_message(proc.stderr), proc.stderr
        assert _mounts_at_or_below(rootfs) == []
        assert not (pyrunc.root / cid).exists()
    finally:
        pyrunc("delete", "--force", cid)
        for line in sorted(_mounts_at_or_below(rootfs), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", line.split()[2]], check=False)


# --- /dev ----------------------------------------------------------------------------

DEFAULT_DEVICES = {
    "/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
    "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0),
}  # fmt: skip
STAT_DEV = "stat -c '%n|%F|%t|%T|%a|%u|%g'"


def parse_stat_lines(text: str) -> dict[str, tuple[str, int, int, str, int, int]]:
    out = {}
    for line in text.splitlines():
        name, kind, major, minor, mode, uid, gid = line.split("|")
        out[name] = (kind, int(major, 16), int(minor, 16), mode, int(uid), int(gid))
    return out


def test_configured_devices(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
         "fileMode": 0o640, "uid": 12, "gid": 34},
        {"path": "/dev/myloop", "type": "b", "major": 7, "minor": 0,
         "fileMode": 0o600, "uid": 0, "gid": 6},
        {"path": "/dev/fifos/myfifo", "type": "p", "fileMode": 0o620},
        # a listed default keeps the listed mode
        {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o644},
    ]  # fmt: skip
    out = run_sh(
        pyrunc, bundle,
        f"{STAT_DEV} /dev/mynull /dev/myloop /dev/fifos/myfifo /dev/zero /dev/null",
    )
    stats = parse_stat_lines(out)
    assert stats["/dev/mynull"] == ("character special file", 1, 3, "640", 12, 34)
    assert stats["/dev/myloop"] == ("block special file", 7, 0, "600", 0, 6)
    assert stats["/dev/fifos/myfifo"][0] == "fifo"
    assert stats["/dev/fifos/myfifo"][3] == "620"
    assert stats["/dev/zero"][3] == "644"
    assert stats["/dev/null"] == ("character special file", 1, 3, "666", 0, 0)


def test_invalid_device_type_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["linux"]["devices"] = [{"path": "/dev/x", "type": "z", "major": 1, "minor": 3}]
    assert_refused(pyrunc, bundle, "linux.devices[0]")


# --- user namespaces -----------------------------------------------------------------

HOST_BASE = USERNS_HOST_BASE


def test_userns_maps_inside(userns_bundle: Bundle, pyrunc: Pyrunc) -> None:
    out = run_sh(pyrunc, userns_bundle,
                 f"cat /proc/self/uid_map; echo {SEP}; cat /proc/self/gid_map; echo {SEP}; id -u")
    uid_map, gid_map, uid = sections(out)
    assert uid_map.split() == ["0", str(HOST_BASE), str(USERNS_SIZE)]
    assert gid_map.split() == ["0", str(HOST_BASE), str(USERNS_SIZE)]
    assert uid == "0"


def test_userns_process_is_unprivileged_on_host(userns_bundle: Bundle, pyrunc: Pyrunc) -> None:
    userns_bundle.process["user"] = {"uid": 1000, "gid": 1000}
    userns_bundle.set_args("sleep", "1000")
    cid = new_id("userns")
    proc = pyrunc("run", "--detach", "--bundle", userns_bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    pid = pyrunc.wait_status(cid, "running")["pid"]
    text = Path(f"/proc/{pid}/status").read_text()
    assert status_field(text, "Uid").split() == [str(HOST_BASE + 1000)] * 4
    assert status_field(text, "Gid").split() == [str(HOST_BASE + 1000)] * 4
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")
    ps = subprocess.run(["ps", "-o", "uid=", "-p", str(pid)], capture_output=True, text=True)
    if ps.returncode == 0:
        assert ps.stdout.strip() == str(HOST_BASE + 1000)
    pyrunc("delete", "--force", cid, check=True)


def test_userns_devices_are_usable(userns_bundle: Bundle, pyrunc: Pyrunc) -> None:
    mounts, rest = container_mounts(
        pyrunc, userns_bundle,
        f"{STAT_DEV} {' '.join(DEFAULT_DEVICES)}; echo {SEP}; "
        "echo x > /dev/null && head -c 5 /dev/urandom | wc -c",
    )
    stats = parse_stat_lines(rest[0])
    for path, (major, minor) in DEFAULT_DEVICES.items():
        assert stats[path][:3] == ("character special file", major, minor), path
        # mknod is not possible in a user namespace: the host's node is bound there
        assert path in mounts and mounts[path].root == path.removeprefix("/dev"), mounts.get(path)
    assert rest[1] == "5"


@pytest.mark.parametrize("mount_mappings", [False, True], ids=["container-mapping", "own-mapping"])
def test_userns_idmapped_mount(userns_bundle: Bundle, pyrunc: Pyrunc, mount_mappings: bool) -> None:
    """The main use of idmapped mounts: host files shown with the container's ids. Making the
    mount needs CAP_SYS_ADMIN over the filesystem (the host's user namespace), so the runtime
    must prepare it outside the container's user namespace (runc 1.2 does)."""
    src = userns_bundle.path.parent / "shared"
    src.mkdir()
    src.chmod(0o755)
    (src / "owned-by-root").write_text("x\n")
    userns_bundle.add_mount("/mapped", "bind", str(src), ["bind", "idmap"])
    if mount_mappings:
        mapping = [{"containerID": 0, "hostID": HOST_BASE, "size": USERNS_SIZE}]
        userns_bundle.config["mounts"][-1].update(uidMappings=mapping, gidMappings=mapping)
    userns_bundle.add_mount("/plain", "bind", str(src), ["bind"])
    out = run_sh(pyrunc, userns_bundle,
                 "stat -c '%u %g' /mapped/owned-by-root; stat -c '%u %g' /plain/owned-by-root")
    # host root appears as root through the mapping, and as the overflow id without it
    assert out.splitlines() == ["0 0", "65534 65534"]


def test_userns_without_mappings_is_refused(userns_bundle: Bundle, pyrunc: Pyrunc) -> None:
    del userns_bundle.config["linux"]["uidMappings"]
    del userns_bundle.config["linux"]["gidMappings"]
    assert_refused(pyrunc, userns_bundle, "uidMappings", "user namespace")


# --- the process ---------------------------------------------------------------------


class ConsoleSocket:
    """A --console-socket listener: receive() takes the messages of the one connection."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="pyrunc-console-", dir="/tmp")
        self.path = os.path.join(self.dir, "sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.server.settimeout(10)

    def receive(self) -> list[tuple[bytes, list[int]]]:
        """Every message until EOF, each with the fds it carried (SCM_RIGHTS)."""
        conn, _ = self.server.accept()
        messages = []
        with conn:
            conn.settimeout(10)
            while True:
                fds = array.array("i")
                data, ancillary, _, _ = conn.recvmsg(64, socket.CMSG_SPACE(8 * fds.itemsize))
                for level, kind, payload in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                if not data and not ancillary:
                    break
                messages.append((data, list(fds)))
        return messages

    def close(self) -> None:
        self.server.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_until_hangup(fd: int, timeout: float = 10) -> str:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the last holder of the pty's other side is gone
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace").replace("\r\n", "\n")


def test_terminal_with_console_socket(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["terminal"] = True
    bundle.process["consoleSize"] = {"height": 33, "width": 111}
    bundle.sh("stty size; tty; stat -c '%t:%T' /dev/console $(tty); "
              "test -t 0 && test -t 1 && test -t 2 && echo all-ttys")
    cid = new_id("tty")
    console = ConsoleSocket()
    try:
        proc = pyrunc("create", "--console-socket", console.path, "--bundle", bundle.path, cid)
        assert proc.returncode == 0, proc.stderr
        messages = console.receive()
    finally:
        console.close()
    assert len(messages) == 1, messages
    fds = messages[0][1]
    assert len(fds) == 1, messages
    master = fds[0]
    try:
        st = os.fstat(master)  # a pty master: devpts' ptmx, 5:2
        assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (5, 2)
        pyrunc("start", cid, check=True)
        out = read_until_hangup(master)
    finally:
        os.close(master)
    lines = out.splitlines()
    assert lines[0] == "33 111", out
    assert re.fullmatch(r"/dev/pts/\d+", lines[1]), out
    # /dev/console is the same pty as stdin (devpts major 136)
    console_dev, tty_dev = lines[2], lines[3]
    assert console_dev == tty_dev and console_dev.startswith("88:"), out
    assert lines[4] == "all-ttys"


def test_terminal_without_console_socket_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["terminal"] = True
    assert_refused(pyrunc, bundle, "console socket")


SET_LISTEN_PID = '[ -n "$LISTEN_FDS" ] && export LISTEN_PID=$$; '


def _pyrunc_with_fds(root: Path, args: list[str], env: dict[str, str] | None = None,
                     ) -> subprocess.CompletedProcess[str]:
    """`pyrunc ARGS` with fd 3, 4 and 5 open on files holding "three", "four", "five"."""
    files = []
    with tempfile.TemporaryDirectory() as d:
        for name in ("three", "four", "five"):
            path = os.path.join(d, name)
            Path(path).write_text(name + "\n")
            files.append(path)
        cmd = [sys.executable, "-m", "pyrunc", "--root", str(root), *args]
        return subprocess.run(
            # LISTEN_PID names the process meant to take the fds: the exec'd pyrunc
            ["sh", "-c", SET_LISTEN_PID + 'exec "$@" 3<"$F3" 4<"$F4" 5<"$F5"', "sh", *cmd],
            env={**(env or os.environ), "F3": files[0], "F4": files[1], "F5": files[2]},
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )


FD_SCRIPT = ("for n in 3 4 5; do cat <&$n 2>/dev/null || echo no-$n; done; "
             "echo LISTEN_FDS=${LISTEN_FDS-unset} LISTEN_PID=${LISTEN_PID-unset}")


def test_listen_fds_pass_through(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """Socket activation: LISTEN_FDS fds are passed on when LISTEN_PID is pyrunc's own pid."""
    bundle.sh(FD_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env["LISTEN_FDS"] = "1"
    proc = _pyrunc_with_fds(pyrunc.root, ["run", "-b", str(bundle), new_id()], env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["three", "no-4", "no-5", "LISTEN_FDS=1 LISTEN_PID=1"]


@pytest.mark.skipif(has_cap_sys_resource(), reason="this host can lower oom_score_adj")
def test_oom_score_adj_the_host_cannot_set_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    """Lowering oom_score_adj needs CAP_SYS_RESOURCE: the error must say what failed (runc:
    "failed to update /proc/self/oom_score_adj: Permission denied")."""
    bundle.process["oomScoreAdj"] = -7
    assert_refused(pyrunc, bundle, "oom_score_adj", "permission denied")


def test_scheduler_batch_with_nice(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    out = run_sh(pyrunc, bundle, f"cat /proc/self/sched; echo {SEP}; cat /proc/self/stat")
    sched, stat_line = sections(out)
    policy = re.search(r"^policy\s*:\s*(\d+)", sched, re.M)
    assert policy and policy.group(1) == "3", sched
    fields = stat_line[stat_line.rfind(")") + 2 :].split()
    assert fields[16] == "5"  # field 19: nice


@pytest.mark.parametrize(
    ("io_priority", "shown"),
    [({"class": "IOPRIO_CLASS_IDLE", "priority": 0}, "idle"),
     ({"class": "IOPRIO_CLASS_BE", "priority": 6}, "best-effort: prio 6")],
    ids=["idle", "best-effort"],
)  # fmt: skip
def test_io_priority(bundle: Bundle, pyrunc: Pyrunc, io_priority: dict, shown: str) -> None:
    bundle.process["ioPriority"] = io_priority
    assert run_sh(pyrunc, bundle, "ionice -p $$").strip() == shown


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_exec_cpu_affinity(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    first, last = cpus[0], cpus[-1]
    bundle.process["execCPUAffinity"] = {"initial": str(first), "final": str(last)}
    # while the init is being set up (createRuntime), it runs on the initial CPU
    seen = tmp_path / "initial"
    hook = ('pid=$(sed \'s/.*"pid": *\\([0-9]*\\).*/\\1/\'); '
            f'grep Cpus_allowed_list /proc/$pid/status > {seen}')
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", hook]}]}
    out = run_sh(pyrunc, bundle, "grep Cpus_allowed_list /proc/self/status")
    assert status_field(out, "Cpus_allowed_list") == str(last)
    assert status_field(seen.read_text(), "Cpus_allowed_list") == str(first)


def test_session_keyring(bundle: Bundle, pyrunc: Pyrunc) -> None:
    if not Path("/proc/keys").exists():
        pytest.skip("no /proc/keys (CONFIG_KEYS off)")
    bundle.set_args("sleep", "1000")
    seen = {}
    for flags in ((), ("--no-new-keyring",)):
        cid = new_id("keys")
        proc = pyrunc("run", "--detach", *flags, "--bundle", bundle.path, cid)
        assert proc.returncode == 0, proc.stderr
        pyrunc.wait_status(cid, "running")
        keys = Path("/proc/keys").read_text()
        seen[bool(flags)] = re.search(rf"\bkeyring\s+_ses\.{re.escape(cid)}:", keys) is not None
        pyrunc("delete", "--force", cid, check=True)
    assert seen == {False: True, True: False}


@pytest.mark.skipif(
    Path("/sys/module/apparmor/parameters/enabled").exists()
    and Path("/sys/module/apparmor/parameters/enabled").read_text().startswith("Y"),
    reason="AppArmor is enabled on this host",
)
def test_apparmor_profile_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.process["apparmorProfile"] = "pyrunc-test"
    assert_refused(pyrunc, bundle, "process.apparmorProfile", "AppArmor")


@pytest.mark.skipif(Path("/sys/fs/selinux/enforce").exists(), reason="SELinux is enabled")
def test_selinux_labels_warn_and_run(bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path) -> None:
    bundle.process["selinuxLabel"] = "system_u:system_r:container_t:s0:c1,c2"
    bundle.config["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    log = tmp_path / "log.json"
    bundle.sh("echo ran")
    proc = pyrunc("--log", log, "--log-format", "json", "run", "--bundle", bundle.path, new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ran"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    warnings = [r["msg"] for r in records if r["level"] == "warning"]
    assert any("process.selinuxLabel" in w for w in warnings), records
    assert any("linux.mountLabel" in w for w in warnings), records
    assert not [r for r in records if r["level"] == "error"]


# --- the linux section ---------------------------------------------------------------


def test_sysctl_inside_only(bundle: Bundle, pyrunc: Pyrunc) -> None:
    keys = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    host_before = {k: host_sysctl(k) for k in keys}
    if host_before == keys:
        pytest.skip("the host already has these values")
    bundle.config["linux"]["sysctl"] = keys
    out = run_sh(pyrunc, bundle,
                 "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced")
    assert out.split() == ["1", "1"]
    assert {k: host_sysctl(k) for k in keys} == host_before


@pytest.mark.parametrize(
    ("key", "drop_ns"),
    [("vm.swappiness", None),               # in no namespace at all
     ("kernel.shm_rmid_forced", "ipc"),     # namespaced, but the container keeps the host's
     ("net.ipv4.ip_forward", "network")],
    ids=["not-namespaced", "host-ipc", "host-network"],
)  # fmt: skip
def test_sysctl_of_the_host_is_refused(
    bundle: Bundle, pyrunc: Pyrunc, key: str, drop_ns: str | None
) -> None:
    """runc refuses a sysctl the container does not own; writing it would change the host.
    The value written is the host's own, so a runtime that accepts it changes nothing."""
    linux = bundle.config["linux"]
    if drop_ns:
        linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != drop_ns]
    before = host_sysctl(key)
    linux["sysctl"] = {key: before}
    try:
        assert_refused(pyrunc, bundle, key)
    finally:
        assert host_sysctl(key) == before


def test_time_namespace_offsets(bundle: Bundle, pyrunc: Pyrunc) -> None:
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "time"})
    linux["timeOffsets"] = {"boottime": {"secs": 86400}, "monotonic": {"secs": 2 * 86400}}
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    out = run_sh(pyrunc, bundle, f"cat /proc/uptime; echo {SEP}; cat /proc/self/timens_offsets;"
                 f" echo {SEP}; readlink /proc/self/ns/time")
    uptime, offsets, ns = sections(out)
    inside = float(uptime.split()[0])
    assert host_uptime + 86400 <= inside < host_uptime + 86400 + 60
    table = {line.split()[0]: line.split()[1:] for line in offsets.splitlines()}
    assert table == {"monotonic": ["172800", "0"], "boottime": ["86400", "0"]}
    assert ns != os.readlink("/proc/self/ns/time")


def test_time_offsets_without_time_namespace_are_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400}}
    assert_refused(pyrunc, bundle, "linux.timeOffsets", "time namespace")


def test_personality_linux32(bundle: Bundle, pyrunc: Pyrunc) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("LINUX32 prints i686 on x86_64")
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    assert run_sh(pyrunc, bundle, "uname -m").strip() == "i686"


def test_memory_policy_bind(bundle: Bundle, pyrunc: Pyrunc) -> None:
    nodes = Path("/sys/devices/system/node/online").read_text().strip()
    first = re.split(r"[-,]", nodes)[0]
    bundle.config["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": first}
    out = run_sh(pyrunc, bundle, "cat /proc/self/numa_maps")
    policies = {line.split()[1] for line in out.splitlines() if line.strip()}
    assert policies == {f"bind:{first}"}, policies


@pytest.mark.skipif("resctrl" in Path("/proc/self/mounts").read_text(), reason="resctrl mounted")
def test_intel_rdt_is_refused(bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.config["linux"]["intelRdt"] = {"closID": "pyrunc-test", "l3CacheSchema": "L3:0=f"}
    assert_refused(pyrunc, bundle, "linux.intelRdt", "resctrl")



# --- annotations ---------------------------------------------------------------------


def test_annotations_kept_in_state(bundle: Bundle, pyrunc: Pyrunc) -> None:
    annotations = {"org.example.key": "value", "io.pyrunc.test/empty": "", "x": "ü ñ"}
    bundle.config["annotations"] = annotations
    bundle.set_args("sleep", "1000")
    cid = new_id("annotations")
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    assert pyrunc.state(cid)["annotations"] == annotations
    pyrunc("start", cid, check=True)
    state = pyrunc.wait_status(cid, "running")
    assert state["annotations"] == annotations
    listed = json.loads(pyrunc("list", "--format", "json", check=True).stdout)
    assert [c.get("annotations") for c in listed if c["id"] == cid] == [annotations]
    pid = state["pid"]
    pyrunc("delete", "--force", cid, check=True)
    assert not pid_alive(pid)
