"""config-linux.md#namespaces and #user-namespace-mappings, checked from inside (namespace
inodes, /proc/self/uid_map)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from harness import NS_TYPES, Case, Expect, Session, assert_checks

req = pytest.mark.req
MAPPING = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def _userns(case: Case) -> None:
    case.config["linux"]["uidMappings"] = MAPPING
    case.config["linux"]["gidMappings"] = MAPPING


@req("config-linux.md#namespaces-5")
@pytest.mark.parametrize("ns_type", list(NS_TYPES))
def test_new_namespace(case: Case, ns_type: str) -> None:
    """A namespace listed without a path is a new one (its inode differs from the caller's)."""
    if ns_type not in case.host.ns:
        pytest.skip(f"this kernel has no {ns_type} namespaces")
    namespaces = case.config["linux"]["namespaces"]
    if ns_type not in {n["type"] for n in namespaces}:
        namespaces.append({"type": ns_type})
    if ns_type == "user":
        _userns(case)
    assert_checks(case.check(), f"ns:{ns_type}")


@req("config-linux.md#namespaces-6")
def test_unlisted_namespaces_are_inherited(case: Case) -> None:
    """With only a mount namespace listed, every other namespace is the caller's."""
    case.config["linux"]["namespaces"] = [{"type": "mount"}]
    case.config.pop("hostname", None)  # no uts namespace: a hostname would be the host's
    results = case.check()
    tags = [f"ns:{t}" for t in NS_TYPES if t != "mount" and t in case.host.ns]
    assert_checks(results, *tags)


@req("config-linux.md#namespaces-6")
def test_no_namespaces_listed(case: Case) -> None:
    """With an empty namespaces list the container shares every namespace with its caller,
    the mount namespace included. The caller here is the runtime run through nsenter in a
    private mount namespace of the test's own, so that what the runtime then does to "its"
    mounts (making / a slave, mounting /proc under the rootfs) stays out of the host's."""
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "300"])

    def stop() -> None:
        holder.kill()
        holder.wait()

    case.cleanups.append(stop)
    deadline = time.monotonic() + 5
    host_mnt = case.host.ns["mount"]
    while time.monotonic() < deadline and os.stat(f"/proc/{holder.pid}/ns/mnt").st_ino == host_mnt:
        time.sleep(0.01)
    caller_mnt = os.stat(f"/proc/{holder.pid}/ns/mnt").st_ino
    case.rt.prefix = ["nsenter", "-t", str(holder.pid), "-m", "--"]
    case.private_rootfs()
    case.config["linux"]["namespaces"] = []
    case.config.pop("hostname", None)
    case.config["root"]["readonly"] = False
    case.config["linux"].pop("maskedPaths", None)
    case.config["linux"].pop("readonlyPaths", None)
    keep = ("/proc", "/dev", "/conformance/io")
    case.config["mounts"] = [m for m in case.config["mounts"] if m["destination"] in keep]
    extra = Expect().add("caller-mnt", "ns", "mnt", "same", caller_mnt)
    results = case.check(extra)
    tags = [f"ns:{t}" for t in NS_TYPES if t != "mount" and t in case.host.ns]
    assert_checks(results, *tags, "caller-mnt")


@pytest.fixture
def holder(session: Session) -> Iterator[int]:
    """A host process in its own network, uts and ipc namespaces, to be joined by path."""
    del session
    proc = subprocess.Popen(["unshare", "--net", "--uts", "--ipc", "sleep", "300"])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if os.stat(f"/proc/{proc.pid}/ns/net").st_ino != os.stat("/proc/self/ns/net").st_ino:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    yield proc.pid
    proc.kill()
    proc.wait()


@req("config-linux.md#namespaces-3")
@pytest.mark.parametrize("ns_type", ["network", "uts", "ipc"])
def test_join_namespace_by_path(case: Case, holder: int, ns_type: str) -> None:
    for ns in case.config["linux"]["namespaces"]:
        if ns["type"] == ns_type:
            ns["path"] = f"/proc/{holder}/ns/{NS_TYPES[ns_type]}"
    if ns_type == "uts":
        case.config.pop("hostname", None)
    assert_checks(case.check(), f"ns:{ns_type}")


@req("config-linux.md#namespaces-2")
def test_namespace_path_not_absolute(case: Case, holder: int) -> None:
    """A relative namespace path is an error (it must be absolute in the runtime namespace)."""
    for ns in case.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"proc/{holder}/ns/net"
    case.set_args("/bin/true")
    _, res = case.create(cid=None)
    assert not res.ok, "create accepted a relative namespace path"


@req("config-linux.md#namespaces-4")
@pytest.mark.parametrize("target", ["other-type", "regular-file"])
def test_namespace_path_of_wrong_type(case: Case, holder: int, target: str) -> None:
    """A network namespace path that is a uts namespace, or a plain file, is an error."""
    if target == "other-type":
        path = f"/proc/{holder}/ns/uts"
    else:
        plain = case.dir / "not-a-namespace"
        plain.write_text("")
        path = str(plain)
    for ns in case.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, f"create accepted a network namespace path to {target}"


@req("config-linux.md#namespaces-7")
def test_duplicate_namespace_type(case: Case) -> None:
    case.config["linux"]["namespaces"].append({"type": "network"})
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted two network namespace entries"


@req("runtime.md#create-4")
def test_user_namespace_mappings(case: Case) -> None:
    """uidMappings and gidMappings are the new user namespace's maps."""
    case.config["linux"]["namespaces"].append({"type": "user"})
    case.config["linux"]["uidMappings"] = [
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 300000, "size": 10},
    ]
    case.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    extra = Expect().add("userns:root", "uid", 0)
    assert_checks(case.check(extra), "userns")
