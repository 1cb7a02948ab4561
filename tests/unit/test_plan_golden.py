"""Golden tests of the init's plan, without root: `compile_plan` (and the mount, device and
identity operations in it) for a few configs, against operation lists written out with the
builders of pyrunc.instructions.

What compile_plan asks of the host (effective uid, cap_last_cap, whether /proc/kcore exists,
the runtime's own user namespace, the container's /etc/passwd, statfs, the cgroup layout) comes
from the recording fake the conftest installs; the bundle is a real directory of the test's
own (the bind sources are stat'ed). A change to the plan shows here as a readable diff.
"""

from __future__ import annotations

import copy
import json
from itertools import zip_longest
from pathlib import Path

import pytest

from pyrunc import instructions as ins
from pyrunc import namespaces
from pyrunc.cgroups import layout
from pyrunc.plan import compile_plan
from pyrunc.rootfs import (
    MOUNT_ATTR_NOEXEC,
    MS_BIND,
    MS_NODEV,
    MS_NOEXEC,
    MS_NOSUID,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_STRICTATIME,
)
from pyrunc.spec.loader import load_config
from unit.fakes import RecordingSyscall

LOCK, FIFO = 3, 4  # the fds compile_plan is given (never opened: the plan only names them)
NS = namespaces.FLAGS

# the busybox bundle's config (bundles/make-busybox.sh: `pyrunc spec`, no terminal), shortened
BUSYBOX = {
    "ociVersion": "1.3.0",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh", "-c", "echo hi"],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"], "cwd": "/",
        "capabilities": {k: ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
                         for k in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "pyrunc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ],
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
                       {"type": "mount"}],
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
    },
}
S_IFCHR = 0o020000
NOFILE, CORE = 7, 4  # RLIMIT_*
LAST_CAP = 40  # the fake host's cap_last_cap
DEFAULT_CAPS = 1 << 5 | 1 << 10  # CAP_KILL, CAP_NET_BIND_SERVICE


@pytest.fixture
def plan_bundle(tmp_path: Path, fake: RecordingSyscall) -> Path:
    """(Not named `bundle`: tests/conftest.py skips tests using that one without root.)"""
    return make_bundle(tmp_path, fake)


def make_bundle(tmp_path: Path, fake: RecordingSyscall) -> Path:
    """A bundle directory with a rootfs and two bind sources, on a host (the fake) whose
    runtime is root in the initial user namespace, with kernel 6.x's 41 capabilities."""
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    fake.files["/proc/sys/kernel/cap_last_cap"] = b"40\n"
    fake.files["/proc/self/uid_map"] = b"         0          0 4294967295\n"
    fake.files["/proc/kcore"] = b""
    return tmp_path


def config(**changes: object) -> dict:
    doc = copy.deepcopy(BUSYBOX)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value
    return doc


def plan_of(doc: dict, bundle: Path, **kwargs: object) -> list[ins.Op]:
    plan = compile_plan(load_config(json.dumps(doc).encode()), str(bundle), lock_fd=LOCK,
                        fifo_fd=FIFO, preserve_fds=0, container_id="c1",
                        state_root="/run/pyrunc", **kwargs)  # type: ignore[arg-type]
    plan.close()
    return plan.ops


def assert_ops(got: list[ins.Op], expected: list[ins.Op]) -> None:
    """Equal lists; on a difference, both written out by code name, one operation a line."""
    if got == expected:
        return
    lines = []
    for g, e in zip_longest(got, expected):
        shown = ins.describe(g) if g is not None else "-"
        if g == e:
            lines.append(f"  {shown}")
        else:
            lines.append(f"! {shown}\n  want {ins.describe(e) if e is not None else '-'}")
    pytest.fail("the plan differs:\n" + "\n".join(lines))


# --- the configs --------------------------------------------------------------------------------


def busybox(fake: RecordingSyscall, bundle: Path) -> tuple[dict, dict]:
    """The busybox bundle on a cgroup v2 host."""
    fake.layout("v2")
    layout._cached = layout.detect(fake.files["/proc/self/mountinfo"].decode())
    return config(), {}


def userns_idmapped(fake: RecordingSyscall, bundle: Path) -> tuple[dict, dict]:
    """A user and cgroup namespace; an idmapped bind mount (its tree made by the parent, fd
    90), a read-only bind of a file whose source the runtime opens and sends."""
    doc = config(mounts=BUSYBOX["mounts"][:3] + [
        {"destination": "/data", "type": "bind", "source": str(bundle / "data"),
         "options": ["rbind", "idmap"]},
        {"destination": "/etc/hosts", "type": "bind", "source": "hosts",
         "options": ["bind", "ro", "rprivate"]},
    ])
    doc["linux"]["namespaces"] += [{"type": "user"}, {"type": "cgroup"}]
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return doc, {"idmap_trees": {3: 90}}


def devices_masks(fake: RecordingSyscall, bundle: Path) -> tuple[dict, dict]:
    """Devices, masked and read-only paths, sysctls, a tmpcopyup tmpfs, rshared root."""
    doc = config(mounts=BUSYBOX["mounts"][:3] + [
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["tmpcopyup", "ro", "rnoexec"]},
    ], domainname="example")
    doc["root"]["readonly"] = False
    doc["linux"].update({
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                     "fileMode": 0o600, "uid": 5, "gid": 6},
                    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3}],
        "maskedPaths": ["/proc/kcore", "/proc/keys"],
        "readonlyPaths": ["/proc/sys", "/proc/bus"],
        "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"},
        "rootfsPropagation": "rshared",
    })
    return doc, {}


def hooks_identity(fake: RecordingSyscall, bundle: Path) -> tuple[dict, dict]:
    """A user with groups and a umask, every capability set, rlimits, scheduling, a console,
    a session keyring, hooks, --no-pivot (the host's full procfs is hidden first)."""
    doc = config(mounts=BUSYBOX["mounts"][:3])
    doc["process"].update({
        "terminal": True, "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 0o027},
        "cwd": "/home/u", "noNewPrivileges": False,
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                    {"type": "RLIMIT_CORE", "hard": 10, "soft": 5}],
        "scheduler": {"policy": "SCHED_OTHER", "nice": 5},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 3},
    })
    doc["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    doc["hooks"] = {"startContainer": [{"path": "/bin/hook", "args": ["hook", "x"], "timeout": 3}],
                    "createContainer": [{"path": "/bin/true"}]}
    fake.files[str(bundle / "rootfs") + "/etc/passwd"] = b"u:x:1000:1000::/home/u:/bin/sh\n"
    fake.files["/proc/self/mountinfo"] = (
        b"22 1 0:21 / /proc rw,nosuid,nodev,noexec - proc proc rw\n"
        b"23 1 0:22 / /sys rw,nosuid,nodev,noexec - sysfs sysfs rw\n")
    return doc, {"console_fd": 8, "keyring": "_ses.c1", "no_pivot": True}


# --- the golden plans ---------------------------------------------------------------------------


# /dev's links (every config here has a /dev tmpfs and a host with /proc/kcore)
DEV_LINKS = [
    ins.symlink("/proc/self/fd", "/dev/fd"),
    ins.symlink("/proc/self/fd/0", "/dev/stdin"),
    ins.symlink("/proc/self/fd/1", "/dev/stdout"),
    ins.symlink("/proc/self/fd/2", "/dev/stderr"),
    ins.symlink("/proc/kcore", "/dev/core"),
    ins.symlink("pts/ptmx", "/dev/ptmx"),
]


def busybox_mounts(root: str) -> list[ins.Op]:
    """The rootfs bound onto itself and opened, then the busybox config's proc, /dev tmpfs and
    read-only sysfs: how every config here starts its mounts."""
    return [
        ins.mount(root, root, MS_BIND | MS_REC, ins.TGT_ABSOLUTE,
                  f"bind mount the rootfs {root}"),
        ins.root(root, "open the rootfs"),
        ins.mount("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  ins.TGT_DIR | ins.TGT_ORDINARY, "mount proc to /proc", fstype="proc", data=""),
        ins.tmpfs("tmpfs", "/dev", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k", False,
                  ins.TGT_NOT_PROC, "mount tmpfs to /dev"),
        ins.mount("sysfs", "/sys", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  ins.TGT_DIR | ins.TGT_NOT_PROC | ins.TGT_ORDINARY, "mount sysfs to /sys",
                  fstype="sysfs", data=""),
    ]


# the default device nodes, made when the runtime may mknod (no new user namespace)
DEFAULT_NODES = [
    ins.mknod("/dev/null", S_IFCHR | 0o666, 1, 3, 0, 0),
    ins.mknod("/dev/zero", S_IFCHR | 0o666, 1, 5, 0, 0),
    ins.mknod("/dev/full", S_IFCHR | 0o666, 1, 7, 0, 0),
    ins.mknod("/dev/random", S_IFCHR | 0o666, 1, 8, 0, 0),
    ins.mknod("/dev/urandom", S_IFCHR | 0o666, 1, 9, 0, 0),
    ins.mknod("/dev/tty", S_IFCHR | 0o666, 5, 0, 0, 0),
]


def busybox_process(env: list[str]) -> list[ins.Op]:
    """The busybox config's process from its rlimits to the exec: root, the two default
    capabilities, no_new_privs, then the exec fifo."""
    return [
        ins.rlimit(NOFILE, 1024, 1024, "setrlimit RLIMIT_NOFILE (soft 1024, hard 1024)"),
        ins.no_new_privs(),
        ins.drop_bounding(DEFAULT_CAPS, LAST_CAP, "drop capabilities from the bounding set"),
        ins.chdir("/", ins.CHDIR_BEFORE_DROP, "chdir to cwd (/) set in config.json"),
        ins.fix_stdio(0),
        ins.setgroups([]),
        ins.setuser(0, 0, "set user 0:0"),
        ins.capset(DEFAULT_CAPS, DEFAULT_CAPS, 0, 0, LAST_CAP),
        ins.umask(0o022),
        ins.chdir("/", ins.CHDIR_AFTER_DROP, "chdir to cwd (/) set in config.json"),
        ins.find_exec("sh", "/usr/sbin:/usr/bin:/sbin:/bin", ins.LOOKUP_CONTAINER,
                      "find executable"),
        ins.cloexec_from(3, "close file descriptors"),
        ins.ready(),
        ins.wait_start(4),
        ins.execve(["sh", "-c", "echo hi"], env),
    ]


def busybox_tail(root: str, env: list[str]) -> list[ins.Op]:
    """The busybox config's operations from its cwd to the exec (pivot, hostname, masks,
    read-only root, rlimits, the identity drop): the same with or without a user namespace."""
    return [
        ins.chdir("/", ins.CHDIR_PLAIN, "create cwd /"),
        ins.sync("pre-pivot"),
        ins.pivot(root, ins.PIVOT_ROOT, "pivot_root"),
        ins.hostname("pyrunc"),
        ins.loopback(),
        ins.open_devnull(ins.DEVNULL_REQUIRED, "open /dev/null in the container"),
        ins.mask("/proc/kcore"),
        ins.readonly("/proc/sys"),
        ins.setsid(),
        ins.remount_root(MS_RDONLY | MS_REC, "remount / read-only"),
        *busybox_process(env),
    ]


def test_busybox(fake: RecordingSyscall, plan_bundle: Path) -> None:
    """The busybox bundle: new pid, network, ipc, uts and mount namespaces; proc, a tmpfs
    /dev with the default nodes and links, a read-only sysfs and cgroup2 bind; a read-only
    root, the default capabilities, no_new_privs."""
    bundle = plan_bundle
    doc, kwargs = busybox(fake, bundle)
    root = str(bundle / "rootfs")
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/"]
    assert_ops(plan_of(doc, bundle, **kwargs), [
        ins.close(3, "close the lock"),
        ins.close_others(3, [4], "close inherited file descriptors"),
        ins.sync("namespaces"),
        ins.set_propagation("/", MS_REC | MS_PRIVATE, "make / private"),
        *busybox_mounts(root),
        ins.sync("cgroup"),
        ins.mount("/sys/fs/cgroup/pyrunc/c1", "/sys/fs/cgroup", MS_BIND | MS_REC, ins.TGT_DIR,
                  "bind /sys/fs/cgroup/pyrunc/c1 to /sys/fs/cgroup"),
        ins.mount(None, "/sys/fs/cgroup",
                  MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_REMOUNT | MS_BIND | MS_RELATIME,
                  ins.TGT_EXISTING, "remount /sys/fs/cgroup"),
        *DEFAULT_NODES,
        *DEV_LINKS,
        *busybox_tail(root, env),
    ])


def test_user_namespace_and_idmapped_mounts(fake: RecordingSyscall, plan_bundle: Path) -> None:
    """In a new user namespace the runtime opens the bind sources and sends them (the mount
    names its fd), an idmapped mount is moved in from the parent's tree, the devices are
    bound from the host, and the cgroup namespace is unshared once the init is in its cgroup."""
    bundle = plan_bundle
    doc, kwargs = userns_idmapped(fake, bundle)
    root = str(bundle / "rootfs")
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/"]
    assert_ops(plan_of(doc, bundle, **kwargs), [
        ins.close(3, "close the lock"),
        ins.close_others(3, [4, 90], "close inherited file descriptors"),
        ins.sync("namespaces"),
        ins.recv_sources(1, "receive the bind mount sources"),
        ins.setuser(0, 0, "become root in the user namespace"),
        ins.set_propagation("/", MS_REC | MS_PRIVATE, "make / private"),
        *busybox_mounts(root),
        ins.move_mount(90, "/data", ins.TGT_DIR | ins.TGT_NOT_PROC,
                       f"idmapped mount {bundle}/data to /data"),
        ins.mount(f"{bundle}/hosts", "/etc/hosts", MS_BIND, ins.TGT_FILE | ins.TGT_NOT_PROC,
                  f"mount {bundle}/hosts to /etc/hosts", received=0),
        ins.mount(None, "/etc/hosts", MS_RDONLY | MS_REMOUNT | MS_BIND, ins.TGT_EXISTING,
                  "remount /etc/hosts"),
        ins.mount(None, "/etc/hosts", MS_REC | MS_PRIVATE, ins.TGT_EXISTING,
                  "set propagation of /etc/hosts"),
        ins.sync("cgroup"),
        ins.unshare(NS["cgroup"], "unshare the cgroup namespace"),
        ins.mount("/dev/null", "/dev/null", MS_BIND, ins.TGT_FILE, "bind device /dev/null"),
        ins.mount("/dev/zero", "/dev/zero", MS_BIND, ins.TGT_FILE, "bind device /dev/zero"),
        ins.mount("/dev/full", "/dev/full", MS_BIND, ins.TGT_FILE, "bind device /dev/full"),
        ins.mount("/dev/random", "/dev/random", MS_BIND, ins.TGT_FILE, "bind device /dev/random"),
        ins.mount("/dev/urandom", "/dev/urandom", MS_BIND, ins.TGT_FILE,
                  "bind device /dev/urandom"),
        ins.mount("/dev/tty", "/dev/tty", MS_BIND, ins.TGT_FILE, "bind device /dev/tty"),
        *DEV_LINKS,
        *busybox_tail(root, env),
    ])


def test_devices_masks_readonly_paths_and_sysctls(fake: RecordingSyscall,
                                                  plan_bundle: Path) -> None:
    """Configured devices (one replacing a default), masks and read-only paths, sysctls in the
    container's procfs, a tmpcopyup tmpfs remounted read-only at the end, rshared root."""
    bundle = plan_bundle
    doc, kwargs = devices_masks(fake, bundle)
    root = str(bundle / "rootfs")
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/"]
    assert_ops(plan_of(doc, bundle, **kwargs), [
        ins.close(3, "close the lock"),
        ins.close_others(3, [4], "close inherited file descriptors"),
        ins.sync("namespaces"),
        ins.set_propagation("/", MS_REC | MS_PRIVATE, "make / private"),
        *busybox_mounts(root),
        ins.tmpfs("tmpfs", "/tmp", 0, "", True, ins.TGT_NOT_PROC, "mount tmpfs to /tmp"),
        ins.mount_setattr("/tmp", MOUNT_ATTR_NOEXEC, 0, "set recursive attributes of /tmp"),
        ins.sync("cgroup"),
        ins.mknod("/dev/fuse", S_IFCHR | 0o600, 10, 229, 5, 6),
        *DEFAULT_NODES,
        *DEV_LINKS,
        ins.chdir("/", ins.CHDIR_PLAIN, "create cwd /"),
        ins.sync("pre-pivot"),
        ins.pivot(root, ins.PIVOT_ROOT, "pivot_root"),
        ins.set_propagation("/", MS_REC | MS_SHARED, "set rootfs propagation rshared"),
        ins.hostname("pyrunc"),
        ins.domainname("example"),
        ins.loopback(),
        ins.write_proc("sys/kernel/shmmax", "65536", "write sysctl kernel.shmmax"),
        ins.write_proc("sys/net/ipv4/ip_forward", "1", "write sysctl net.ipv4.ip_forward"),
        ins.open_devnull(ins.DEVNULL_REQUIRED, "open /dev/null in the container"),
        ins.mask("/proc/kcore"),
        ins.mask("/proc/keys"),
        ins.readonly("/proc/sys"),
        ins.readonly("/proc/bus"),
        ins.setsid(),
        ins.mount(None, "/tmp", MS_RDONLY | MS_REMOUNT | MS_BIND, ins.TGT_EXISTING,
                  "remount /tmp read-only"),
        *busybox_process(env),
    ])


def test_hooks_rlimits_capabilities_and_no_pivot(fake: RecordingSyscall, plan_bundle: Path) -> None:
    """A user with groups and a umask, ambient = permitted & inheritable, rlimits and
    scheduling, a console and a session keyring, a startContainer hook run by the init, and
    --no-pivot hiding the host's full procfs and sysfs first."""
    bundle = plan_bundle
    doc, kwargs = hooks_identity(fake, bundle)
    root = str(bundle / "rootfs")
    env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/home/u"]
    assert_ops(plan_of(doc, bundle, **kwargs), [
        ins.close(3, "close the lock"),
        ins.close_others(3, [4, 8], "close inherited file descriptors"),
        ins.sync("namespaces"),
        ins.set_propagation("/", MS_REC | MS_PRIVATE, "make / private"),
        *busybox_mounts(root),
        ins.sync("cgroup"),
        *DEFAULT_NODES,
        *DEV_LINKS,
        ins.chdir("/home/u", ins.CHDIR_PLAIN, "create cwd /home/u"),
        ins.sync("pre-pivot"),
        ins.hide_mount("/proc", "hide proc at /proc"),
        ins.hide_mount("/sys", "hide sysfs at /sys"),
        ins.pivot(root, ins.PIVOT_MOVE, "move the rootfs to /"),
        ins.hostname("pyrunc"),
        ins.loopback(),
        ins.open_devnull(ins.DEVNULL_REQUIRED, "open /dev/null in the container"),
        ins.mask("/proc/kcore"),
        ins.readonly("/proc/sys"),
        ins.setsid(),
        ins.console(8, 24, 80),
        ins.remount_root(MS_RDONLY | MS_REC, "remount / read-only"),
        ins.keyring("_ses.c1"),
        ins.rlimit(NOFILE, 1024, 1024, "setrlimit RLIMIT_NOFILE (soft 1024, hard 1024)"),
        ins.rlimit(CORE, 5, 10, "setrlimit RLIMIT_CORE (soft 5, hard 10)"),
        ins.scheduler(0, 0, 5, 0, 0, 0, 0, "sched_setattr SCHED_OTHER"),
        ins.ioprio(2 << 13 | 3, "ioprio_set IOPRIO_CLASS_BE"),
        ins.drop_bounding(DEFAULT_CAPS, LAST_CAP, "drop capabilities from the bounding set"),
        ins.chdir("/home/u", ins.CHDIR_BEFORE_DROP, "chdir to cwd (/home/u) set in config.json"),
        ins.fix_stdio(1000),
        ins.setgroups([5, 6]),
        ins.setuser(1000, 1000, "set user 1000:1000"),
        ins.capset(DEFAULT_CAPS, DEFAULT_CAPS, 1 << 5, 1 << 5, LAST_CAP),
        ins.umask(0o027),
        ins.chdir("/home/u", ins.CHDIR_AFTER_DROP, "chdir to cwd (/home/u) set in config.json"),
        ins.find_exec("sh", "/usr/sbin:/usr/bin:/sbin:/bin", ins.LOOKUP_CONTAINER,
                      "find executable"),
        ins.cloexec_from(3, "close file descriptors"),
        ins.ready(),
        ins.wait_start(4),
        ins.hook("/bin/hook", ["hook", "x"], env,
                 f'{{"ociVersion": "1.3.0", "id": "c1", "status": "created", "bundle": "{bundle}", '
                 '"pid": ', "}", 3, "startContainer hook #0 (/bin/hook)"),
        ins.execve(["sh", "-c", "echo hi"], env),
    ])


def test_an_unprivileged_runtime_makes_the_init_dumpable_for_its_maps(
        fake: RecordingSyscall, plan_bundle: Path) -> None:
    """The effective uid comes from the seam: a runtime that is not root writes the maps of a
    dumpable init (newuidmap), opens no bind sources for it, and keeps its setgroups denied
    when it maps only its own gid."""
    bundle = plan_bundle
    doc, _ = userns_idmapped(fake, bundle)
    doc["mounts"] = doc["mounts"][:3]
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    fake.euid = fake.egid = 1000
    ops = plan_of(doc, bundle)
    sync = ops.index(ins.sync("namespaces"))
    assert ops[sync - 1:sync + 3] == [
        ins.dumpable(True, "become dumpable for the id maps"),
        ins.sync("namespaces"),
        ins.dumpable(False, "become non-dumpable again"),
        ins.setuser(0, 0, "become root in the user namespace"),
    ]
    assert not [op for op in ops if op[0] in (ins.RECV_SOURCES, ins.SETGROUPS)]


def test_the_hosts_answers_come_from_the_seam(fake: RecordingSyscall, plan_bundle: Path) -> None:
    """A host without /proc/kcore and with fewer capabilities than this one: no /dev/core link,
    and the bounding set and capset name the fake's last capability, not the real kernel's
    (a lookup that bypassed pyrunc.syscall would see the machine's /proc here)."""
    bundle = plan_bundle
    doc, kwargs = busybox(fake, bundle)
    del fake.files["/proc/kcore"]
    fake.files["/proc/sys/kernel/cap_last_cap"] = b"37\n"
    ops = plan_of(doc, bundle, **kwargs)
    assert ins.symlink("/proc/kcore", "/dev/core") not in ops
    assert ins.symlink("pts/ptmx", "/dev/ptmx") in ops
    assert ins.drop_bounding(DEFAULT_CAPS, 37, "drop capabilities from the bounding set") in ops
    assert ins.capset(DEFAULT_CAPS, DEFAULT_CAPS, 0, 0, 37) in ops
    assert ("read", "/proc/sys/kernel/cap_last_cap") in fake.calls


def test_an_unprivileged_runtime_makes_the_init_dumpable_for_create_container_hooks(
        fake: RecordingSyscall, plan_bundle: Path) -> None:
    """createContainer hooks run by a runtime that is not root join the init's namespaces:
    the init is dumpable just around the pre-pivot sync point (root needs no such window)."""
    bundle = plan_bundle
    doc, _ = userns_idmapped(fake, bundle)
    doc["mounts"] = doc["mounts"][:3]
    doc["hooks"] = {"createContainer": [{"path": "/bin/true"}]}
    fake.euid = fake.egid = 1000
    ops = plan_of(doc, bundle)
    sync = ops.index(ins.sync("pre-pivot"))
    assert ops[sync - 1:sync + 2] == [
        ins.dumpable(True, "become dumpable for createContainer hooks"),
        ins.sync("pre-pivot"),
        ins.dumpable(False, "become non-dumpable again"),
    ]
    fake.euid = fake.egid = 0
    assert not [op for op in plan_of(doc, bundle) if op[0] == ins.DUMPABLE]
