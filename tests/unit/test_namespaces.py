"""Joined namespaces against the fake host: which paths are opened and how (S12: only an nsfs
file of the right type, through our own O_PATH fd), the one-line errors naming the config's
field, the fds closed on every path; the namespaces of a running container; whether a joined
namespace is the host's; the fd limit around create; the state's owner."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc import fdlimit, namespaces, plan
from pyrunc.errors import ConfigError
from pyrunc.lifecycle.create import _owner
from pyrunc.spec.loader import load_config
from unit.fakes import HOST_NS, OpenFile, RecordingSyscall


def resolve(*paths: tuple[str, str]) -> namespaces.NamespacePlan:
    """The config's namespaces (a new pid one first, then each (type, path)), resolved."""
    entries = [{"type": "pid"}] + [{"type": t, "path": p} for t, p in paths]
    doc = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},
           "linux": {"namespaces": entries}}
    spec = load_config(json.dumps(doc).encode(), "config.json")
    assert spec.linux is not None and spec.linux.namespaces is not None
    return namespaces.resolve(spec.linux.namespaces)


def test_a_namespace_file_is_opened_through_its_o_path_fd(fake: RecordingSyscall) -> None:
    fake.nsfiles["/run/netns/n1"] = "net:[4026532100]"
    ns = resolve(("network", "/run/netns/n1"))
    assert ns.new == {"pid"} and set(ns.join) == {"network"}
    opened = fake.named("open")
    assert [(c[1], c[2]) for c in opened] == [
        ("/run/netns/n1", os.O_PATH | os.O_CLOEXEC),
        (f"/proc/self/fd/{ns.join['network'] - 1}", os.O_RDONLY | os.O_CLOEXEC)]
    held = fake.fds[ns.join["network"]]
    assert isinstance(held, OpenFile) and held.path == "/run/netns/n1"
    assert len(fake.fds) == 1  # the probe is closed
    ns.close()
    assert fake.fds == {}


@pytest.mark.parametrize("kind", ["file", "fifo", "directory"])
def test_a_path_that_is_not_a_namespace_is_one_line(fake: RecordingSyscall, kind: str) -> None:
    path = "/tmp/not-a-namespace"
    if kind == "file":
        fake.files[path] = b"x\n"
    elif kind == "fifo":
        fake.fifos.add(path)  # opened for reading, it would hang create (the fake says so)
    else:
        fake.dirs.add(path)
    with pytest.raises(ConfigError) as e:
        resolve(("network", path))
    assert str(e.value) == f"config.json: linux.namespaces[1].path: {path}: not a namespace file"
    assert [c[2] for c in fake.named("open")] == [os.O_PATH | os.O_CLOEXEC]
    assert fake.fds == {}


@pytest.mark.parametrize(("kind", "found", "said"), [
    ("network", "uts:[4026532200]", "uts"), ("uts", "net:[4026532201]", "network"),
    ("ipc", "mnt:[4026532202]", "mount"), ("mount", "user:[4026532203]", "user")])
def test_a_namespace_of_another_type_is_one_line(fake: RecordingSyscall, kind: str, found: str,
                                                 said: str) -> None:
    fake.nsfiles["/run/ns/x"] = found
    with pytest.raises(ConfigError) as e:
        resolve((kind, "/run/ns/x"))
    assert str(e.value) == (f"config.json: linux.namespaces[1].path: /run/ns/x: a {said} "
                            f"namespace, not {kind}")
    assert fake.fds == {}


def test_a_missing_path_is_one_line_and_what_was_opened_is_closed(
        fake: RecordingSyscall) -> None:
    fake.nsfiles["/run/netns/n1"] = "net:[4026532100]"
    with pytest.raises(ConfigError) as e:
        resolve(("network", "/run/netns/n1"), ("ipc", "/run/ipc/gone"))
    assert str(e.value) == ("config.json: linux.namespaces[2].path: /run/ipc/gone: "
                            "no such file or directory")
    assert fake.fds == {}  # the network namespace's fd too


def test_a_failed_nsfs_check_after_the_probe_names_the_field(fake: RecordingSyscall) -> None:
    fake.nsfiles["/run/netns/n1"] = "net:[4026532100]"
    fake.fail("statfs_type", f"/proc/self/fd/{fake._next_fd}", 13)
    with pytest.raises(ConfigError) as e:
        resolve(("network", "/run/netns/n1"))
    assert str(e.value) == ("config.json: linux.namespaces[1].path: /run/netns/n1: "
                            "permission denied")
    assert fake.fds == {}


def test_a_joined_namespace_is_the_containers_own_unless_it_is_the_hosts(
        fake: RecordingSyscall) -> None:
    fake.nsfiles["/run/uts/other"] = "uts:[4026532300]"
    host = resolve(("uts", "/proc/self/ns/uts"))
    other = resolve(("uts", "/run/uts/other"))
    assert not plan._own_namespace(host, "uts")
    assert plan._own_namespace(other, "uts")
    assert plan._own_namespace(host, "pid")  # a new one
    assert not plan._own_namespace(host, "ipc")  # neither new nor joined: the host's
    host.close()
    other.close()


def test_a_running_containers_namespaces_but_those_it_shares(fake: RecordingSyscall) -> None:
    fake.spawn(300, pid_ns="pid:[4026532400]",
               ns={"net": "net:[4026532401]", "mnt": "mnt:[4026532402]",
                   "user": HOST_NS["user"]})
    joined, pid_fd = namespaces.open_process_namespaces(300, with_user=True)
    assert [(kind, flag) for _, flag, kind in joined] == [
        ("network", namespaces.CLONE_NEWNET), ("mount", namespaces.CLONE_NEWNS)]
    held = {fd: fake.fds[fd] for fd, _, _ in joined}
    assert [f.path for f in held.values() if isinstance(f, OpenFile)] == [
        "/proc/300/ns/net", "/proc/300/ns/mnt"]
    pid_file = fake.fds[pid_fd]
    assert isinstance(pid_file, OpenFile) and pid_file.path == "/proc/300/ns/pid"
    for fd in [*held, pid_fd]:
        fake.close(fd)


def test_a_failed_open_of_a_running_containers_namespace_closes_the_others(
        fake: RecordingSyscall) -> None:
    fake.spawn(300, pid_ns="pid:[4026532400]", ns={"net": "net:[4026532401]"})
    fake.fail("open", "/proc/300/ns/pid", 2)
    with pytest.raises(FileNotFoundError):
        namespaces.open_process_namespaces(300)
    assert fake.fds == {}


def test_the_fd_limit_is_raised_for_the_operation_and_put_back(fake: RecordingSyscall) -> None:
    seen = []
    fake.nofile = (5, 20000)
    op = fdlimit.while_raised(lambda: seen.append(fake.nofile))
    op()
    assert seen == [(20000, 20000)] and fake.nofile == (5, 20000)
    fake.nofile = (20000, 20000)  # raised already (the launcher): nothing to put back
    op()
    assert fake.named("set_nofile") == [("set_nofile", 5, 20000)]


def test_the_owner_is_the_effective_users_name(fake: RecordingSyscall,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    def getpwuid(uid: int) -> pwd.struct_passwd:  # the host's passwd is not this test's
        if uid != 65534:
            raise KeyError(uid)
        return pwd.struct_passwd(("nobody", "x", 65534, 65534, "", "/", "/bin/false"))

    monkeypatch.setattr(pwd, "getpwuid", getpwuid)
    assert _owner() == ""  # root, shown as root by list
    fake.euid = 65534
    assert _owner() == "nobody"
    fake.euid = 4242421
    assert _owner() == "#4242421"
