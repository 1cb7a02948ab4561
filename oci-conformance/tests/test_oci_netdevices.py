"""config-linux.md#network-devices: moving host interfaces into the container (netDevices).

Each test makes its own veth pair on the host (iproute2; one end to move, with a permanent
global IPv4 address), and removes whatever is left of it afterwards.
"""

from __future__ import annotations

import itertools
import subprocess

import pytest
from harness import Case, Expect, assert_checks

req = pytest.mark.req
_n = itertools.count(1)


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name).returncode == 0


@pytest.fixture
def dummy(case: Case) -> tuple[str, str]:
    """A host veth end with a permanent address; deleted afterwards if still there."""
    n = next(_n)
    name = f"ocv{case.session.token}{n}"[:14]
    address = f"10.{200 + n % 50}.{int(case.session.token[:2], 16)}.1"
    made = _ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
    if made.returncode != 0:
        pytest.skip(f"cannot make a veth pair: {made.stderr.strip()}")
    case.cleanups.append(lambda: _ip("link", "del", name))
    _ip("addr", "add", f"{address}/24", "dev", name)
    return name, address


@req(
    "config-linux.md#network-devices-1",
    "config-linux.md#network-devices-5",
    "config-linux.md#network-devices-6",
)
def test_net_device_moved(case: Case, dummy: tuple[str, str]) -> None:
    """The interface is in the container under its new name, up, with its address."""
    name, address = dummy
    case.config["linux"]["netDevices"] = {name: {"name": "ctr0"}}
    extra = Expect().add("netdev", "netdev", "ctr0", "up", address)
    assert_checks(case.check(extra), "netdev")


@req("config-linux.md#network-devices-4")
def test_net_device_name_template(case: Case, dummy: tuple[str, str]) -> None:
    """A name ending in %d is a template: the move is allowed and the kernel numbers it."""
    name, _ = dummy
    case.config["linux"]["netDevices"] = {name: {"name": "ctr%d"}}
    extra = Expect().add("netdev", "netdev", "ctr0")
    assert_checks(case.check(extra), "netdev")


@req("config-linux.md#network-devices-3")
def test_net_device_name_taken(case: Case, dummy: tuple[str, str]) -> None:
    """A name that already exists in the container's namespace (lo) is an error."""
    name, _ = dummy
    case.config["linux"]["netDevices"] = {name: {"name": "lo"}}
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted moving an interface onto the name lo"


@req("config-linux.md#network-devices-2")
def test_net_device_missing(case: Case) -> None:
    """A host interface that does not exist cannot be moved: create must fail."""
    case.config["linux"]["netDevices"] = {f"ocnone{case.session.token}": {}}
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted a netDevices entry for an interface that does not exist"


@req("config-linux.md#namespace-lifecycle-and-container-termination-2")
def test_net_device_not_moved_back(case: Case, dummy: tuple[str, str]) -> None:
    """Delete does not move the interface out: a virtual one dies with the namespace (a veth
    takes its peer along), so it is back on the host under neither name afterwards."""
    name, _ = dummy
    case.config["linux"]["netDevices"] = {name: {"name": "ctr0"}}
    case.set_args("/bin/true")
    cid, res = case.create()
    assert res.ok, f"create failed: {res}"
    moved = not _link_exists(name)
    case.must_start(cid)
    case.wait_stopped(cid)
    res = case.delete(cid)
    assert res.ok, res
    assert moved, "the interface was never moved into the container"
    assert not _link_exists(name) and not _link_exists("ctr0"), (
        "the interface came back to the host"
    )
