"""config.md#root, #mounts (every MUST mount option, idmap), config-linux.md devices, masked and
read-only paths, runtime-linux.md's /dev symlinks: checked from inside by the checker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import Case, Expect, Session, assert_checks, host_mount, mount_option_req

req = pytest.mark.req


@dataclass
class Sources:
    """Host directories to bind: a plain one with a submount, and a shared one (propagation)."""

    plain: Path
    shared: Path
    strict: Path
    owned: Path


@pytest.fixture(scope="module")
def sources(session: Session) -> Iterator[Sources]:
    base = session.workdir / "sources"
    plain, shared, strict, owned = (base / n for n in ("plain", "shared", "strict", "owned"))
    for d in (plain, shared, strict, owned):
        d.mkdir(parents=True, exist_ok=True)
    (plain / "marker").write_text("plain\n")
    (plain / "sub").mkdir(exist_ok=True)
    host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(plain / "sub"))
    (plain / "sub" / "marker").write_text("sub\n")
    host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(shared))
    host_mount("--make-shared", str(shared))
    (shared / "sub").mkdir()
    host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(shared / "sub"))
    host_mount("--make-shared", str(shared / "sub"))
    host_mount("-t", "tmpfs", "-o", "size=1m,strictatime", "tmpfs", str(strict))
    (owned / "file").write_text("root-owned\n")
    (owned / "sub").mkdir(exist_ok=True)
    host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(owned / "sub"))
    (owned / "sub" / "file").write_text("root-owned\n")
    yield Sources(plain, shared, strict, owned)
    for path in (owned / "sub", owned, strict, shared / "sub", shared, plain / "sub"):
        os.system(f"umount -l {path} 2>/dev/null")


# --- root -----------------------------------------------------------------------------


@req("config.md#root-7")
def test_root_readonly(case: Case) -> None:
    case.config["root"]["readonly"] = True
    assert_checks(case.check(), "root:readonly")


# --- mounts ---------------------------------------------------------------------------


@req("config.md#mounts-1")
def test_mounts_in_listed_order(case: Case, sources: Sources) -> None:
    """Two binds on one destination: the later one wins; a mount inside an earlier one works."""
    first, second = case.dir / "first", case.dir / "second"
    for d, text in ((first, "first"), (second, "second")):
        d.mkdir()
        (d / "which").write_text(text + "\n")
    case.add_mount("/mnt/order", None, str(first), ["bind"])
    case.add_mount("/mnt/order", None, str(second), ["bind"])
    case.add_mount("/mnt/nest", "tmpfs", "tmpfs", ["size=1m"])
    case.add_mount("/mnt/nest/inner", None, str(first), ["bind"])
    extra = (
        Expect()
        .add("order", "file", "/mnt/order/which", "second")
        .add("order", "file", "/mnt/nest/inner/which", "first")
    )
    assert_checks(case.check(extra), "order")


@req("config.md#mounts-3")
def test_relative_destination(case: Case) -> None:
    """A relative destination (deprecated) is taken relative to /."""
    case.add_mount("mnt/c", "tmpfs", "tmpfs", ["size=1m"])
    extra = Expect().add("relative", "mount", "/mnt/c", "tmpfs")
    assert_checks(case.check(extra), "relative")


# option -> (source kind, options, checks on /mnt/opt1, checks on /mnt/opt1/sub)
OPTIONS: dict[str, tuple[str, list[str], list[str], list[str]]] = {
    "async": ("tmpfs", ["sync", "async"], ["!sb:sync"], []),
    "atime": ("tmpfs", ["noatime", "atime"], ["!noatime"], []),
    "bind": ("plain", ["bind"], [], ["notmount"]),
    "defaults": ("tmpfs", ["defaults"], ["rw"], []),
    "dev": ("tmpfs", ["nodev", "dev"], ["!nodev"], []),
    "diratime": ("tmpfs", ["nodiratime", "diratime"], ["!nodiratime"], []),
    "dirsync": ("tmpfs", ["dirsync"], ["sb:dirsync"], []),
    "exec": ("tmpfs", ["noexec", "exec"], ["!noexec"], []),
    "iversion": ("tmpfs", ["iversion"], [], []),
    "lazytime": ("tmpfs", ["lazytime"], ["sb:lazytime"], []),
    "loud": ("tmpfs", ["silent", "loud"], [], []),
    "noatime": ("tmpfs", ["noatime"], ["noatime"], []),
    "nodev": ("tmpfs", ["nodev"], ["nodev"], []),
    "nodiratime": ("tmpfs", ["nodiratime"], ["nodiratime"], []),
    "noexec": ("tmpfs", ["noexec"], ["noexec"], []),
    "noiversion": ("tmpfs", ["iversion", "noiversion"], [], []),
    "nolazytime": ("tmpfs", ["lazytime", "nolazytime"], ["!sb:lazytime"], []),
    "norelatime": ("tmpfs", ["norelatime"], [], []),
    "nostrictatime": ("tmpfs", ["strictatime", "nostrictatime"], ["relatime"], []),
    "nosuid": ("tmpfs", ["nosuid"], ["nosuid"], []),
    "private": ("shared", ["bind", "private"], ["private"], []),
    "rbind": ("plain", ["rbind"], [], ["tmpfs"]),
    "relatime": ("strict", ["bind", "relatime"], ["relatime"], []),
    "remount": ("remount", ["remount", "ro"], ["ro", "sb:size=1024k"], []),
    "ro": ("tmpfs", ["ro"], ["ro"], []),
    "rprivate": ("shared", ["rbind", "rprivate"], ["private"], ["private"]),
    "rshared": ("shared", ["rbind", "rshared"], ["shared"], ["shared"]),
    "rslave": ("shared", ["rbind", "rslave"], ["slave", "!shared"], ["slave", "!shared"]),
    "runbindable": ("shared", ["rbind", "runbindable"], ["unbindable"], ["unbindable"]),
    "rw": ("tmpfs", ["ro", "rw"], ["rw"], []),
    "shared": ("shared", ["bind", "shared"], ["shared"], []),
    "silent": ("tmpfs", ["silent"], [], []),
    "slave": ("shared", ["bind", "slave"], ["slave", "!shared"], []),
    "strictatime": ("tmpfs", ["strictatime"], ["strictatime"], []),
    "suid": ("tmpfs", ["nosuid", "suid"], ["!nosuid"], []),
    "sync": ("tmpfs", ["sync"], ["sb:sync"], []),
    "unbindable": ("shared", ["bind", "unbindable"], ["unbindable"], []),
}


@req("config.md#linux-mount-options-1", "config.md#linux-mount-options-47")
@pytest.mark.parametrize(
    "option",
    [pytest.param(o, marks=req(mount_option_req(o))) for o in OPTIONS],
)
def test_mount_option(case: Case, sources: Sources, option: str) -> None:
    """Each MUST option of the Linux mount options table does what mount(8) says.

    Negative options come after their opposite (`nodev`, `dev`) so that the result shows that
    the runtime knows the word, as mount(8) lets the last one win. Propagation options bind a
    shared host mount (with a shared submount) while `rootfsPropagation` is `slave`: `shared`,
    `private` and `unbindable` then differ from what the bind alone gives; `slave` only has to
    leave the mount a slave and not shared (one propagation flag per entry, as mount(2) takes).
    Options mountinfo cannot show (`iversion`, `loud`, `silent`, `norelatime`) must at least
    be accepted and the mount made.
    """
    kind, options, top, sub = OPTIONS[option]
    dest = "/mnt/opt1"
    if kind == "tmpfs":
        case.add_mount(dest, "tmpfs", "tmpfs", ["size=1m", *options])
    elif kind == "remount":
        case.add_mount(dest, "tmpfs", "tmpfs", ["size=1m"])
        case.add_mount(dest, "tmpfs", "tmpfs", options)
    else:
        source = getattr(sources, kind)
        case.add_mount(dest, "none", str(source), options)
        case.config["linux"]["rootfsPropagation"] = "slave"
    extra = Expect()
    if top or kind != "tmpfs":
        extra.add("option", "mount", dest, "*", *top)
    else:
        extra.add("option", "mount", dest, "tmpfs")
    if kind == "plain":
        extra.add("option", "file", f"{dest}/marker", "plain")
    for check in sub:
        if check == "notmount":
            extra.add("option", "notmount", f"{dest}/sub")
        elif check == "tmpfs":
            extra.add("option", "mount", f"{dest}/sub", "tmpfs")
        else:
            extra.add("option", "mount", f"{dest}/sub", "*", check)
    results = case.check(extra)
    assert_checks(results, "option")


# --- idmapped mounts --------------------------------------------------------------------


def _idmap(case: Case, sources: Sources, option: str, mapped: bool) -> None:
    mount = {
        "destination": "/mnt/idmap",
        "type": "none",
        "source": str(sources.owned),
        "options": ["rbind" if option == "ridmap" else "bind", option],
    }
    if mapped:
        mapping = [{"containerID": 0, "hostID": 1000, "size": 1}]
        mount["uidMappings"] = mapping
        mount["gidMappings"] = mapping
    case.config["mounts"].append(mount)


@pytest.mark.parametrize(
    "option",
    [
        pytest.param("idmap", marks=req("config.md#linux-mount-options-39",
                                        "config.md#linux-mount-options-40")),
        pytest.param("ridmap", marks=req("config.md#linux-mount-options-43",
                                         "config.md#linux-mount-options-44")),
    ],
)  # fmt: skip
def test_idmap_with_mappings(case: Case, sources: Sources, option: str) -> None:
    """The mount's own uid/gid mappings apply: files owned by 0 on disk show as 1000."""
    _idmap(case, sources, option, mapped=True)
    extra = Expect().add("idmap", "owner", "/mnt/idmap/file", 1000, 1000)
    if option == "ridmap":
        extra.add("idmap", "owner", "/mnt/idmap/sub/file", 1000, 1000)
    assert_checks(case.check(extra), "idmap")


@pytest.mark.parametrize(
    "option",
    [
        pytest.param("idmap", marks=req("config.md#linux-mount-options-42")),
        pytest.param("ridmap", marks=req("config.md#linux-mount-options-46")),
    ],
)
def test_idmap_without_mappings_or_userns(case: Case, sources: Sources, option: str) -> None:
    """No mappings and no user namespace: create must fail."""
    _idmap(case, sources, option, mapped=False)
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, f"create accepted `{option}` with neither mappings nor a user namespace"


@pytest.mark.parametrize(
    "option",
    [
        pytest.param("idmap", marks=req("config.md#linux-mount-options-41")),
        pytest.param("ridmap", marks=req("config.md#linux-mount-options-45")),
    ],
)
def test_idmap_userns_mapping(case: Case, sources: Sources, option: str) -> None:
    """No mount mappings in a user namespace: the container's mapping is used, or an error."""
    _idmap(case, sources, option, mapped=False)
    mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    case.config["linux"]["namespaces"].append({"type": "user"})
    case.config["linux"]["uidMappings"] = mapping
    case.config["linux"]["gidMappings"] = mapping
    extra = Expect().add("idmap", "owner", "/mnt/idmap/file", 0, 0)
    results = case.check(extra)
    if results.problem.startswith("create failed"):
        return  # an error is what the spec asks for when the runtime does not map this way
    assert_checks(results, "idmap")


# --- devices --------------------------------------------------------------------------


@req("config-linux.md#devices-1", "runtime.md#create-4")
def test_devices_available(case: Case) -> None:
    """linux.devices: type, numbers, fileMode, uid and gid, inside and outside /dev."""
    case.private_rootfs()
    case.config["linux"]["devices"] = [
        {"path": "/dev/oc-char", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
         "uid": 1000, "gid": 1001},
        {"path": "/dev/oc-block", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600,
         "uid": 0, "gid": 0},
        {"path": "/dev/oc-fifo", "type": "p", "fileMode": 0o620},
        {"path": "/dev/oc-unbuffered", "type": "u", "major": 1, "minor": 5, "fileMode": 0o666},
        {"path": "/mnt/oc-outside", "type": "c", "major": 1, "minor": 7, "fileMode": 0o644},
    ]  # fmt: skip
    assert_checks(case.check(), "device")


@req("config-linux.md#devices-4")
def test_device_path_conflict(case: Case) -> None:
    """A regular file already at a device's path is an error."""
    rootfs = case.private_rootfs()
    (rootfs / "mnt" / "conflict").write_text("not a device\n")
    case.config["linux"]["devices"] = [
        {"path": "/mnt/conflict", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}
    ]
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted a device whose path is an existing regular file"


@req("config-linux.md#default-devices-1")
def test_default_devices(case: Case) -> None:
    """null zero full random urandom tty, and /dev/ptmx reaching the container's devpts."""
    extra = Expect().add("ptmx", "device", "/dev/ptmx", "c", 5, 2)
    assert_checks(case.check(extra), "default-device", "ptmx")


@req("runtime-linux.md#dev-symbolic-links-1")
def test_dev_symlinks(case: Case) -> None:
    assert_checks(case.check(), "dev-symlink")


# --- masked and read-only paths ------------------------------------------------------


@req("runtime.md#create-4")
def test_masked_paths(case: Case) -> None:
    """Masked files read as empty (or cannot be opened), masked directories list nothing."""
    rootfs = case.private_rootfs()
    (rootfs / "conformance" / "secret-dir").mkdir()
    (rootfs / "conformance" / "secret-dir" / "secret").write_text("secret\n")
    (rootfs / "conformance" / "secret-file").write_text("secret\n")
    case.config["linux"]["maskedPaths"] = [
        "/proc/kcore", "/proc/timer_list", "/sys/firmware", "/conformance/secret-dir",
        "/conformance/secret-file",
    ]  # fmt: skip
    extra = Expect().add("masked-existing", "exists", "/conformance/secret-file")
    assert_checks(case.check(extra), "masked", "masked-existing")


@req("runtime.md#create-4")
def test_readonly_paths(case: Case) -> None:
    """Read-only paths are read-only mounts, even below a writable one."""
    (case.io / "ro").mkdir()
    case.config["linux"]["readonlyPaths"] = ["/proc/sys", "/proc/bus", "/conformance/io/ro"]
    extra = Expect().add("io-writable", "writable", "/conformance/io")
    assert_checks(case.check(extra), "readonlypath", "io-writable")
