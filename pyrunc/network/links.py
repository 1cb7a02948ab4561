"""Links, addresses and routes for bridge networks and netDevices (rtnetlink: pyrunc.network.rtnl).

Imported only by a create that asks for networking or netDevices. The container's side is
configured through a netlink socket opened inside its network namespace (rtnl.Rtnl(fd)); the
veth peer is made there directly (IFLA_NET_NS_FD), so it never appears on the host.
"""

from __future__ import annotations

import errno
import os

from pyrunc.errors import PyruncError
from pyrunc.network.rtnl import AF_INET, IFA_F_PERMANENT, RT_SCOPE_UNIVERSE, NetlinkError, Rtnl

__all__ = ["Rtnl", "attach", "ensure_bridge", "move_devices", "netns_fd", "write_sysctl"]


def netns_fd(pid: int) -> int:
    """The network namespace of `pid`, as an fd (the caller closes it)."""
    return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def write_sysctl(path: str, value: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise PyruncError(f"cannot set {path[len('/proc/sys/'):]} to {value}: "
                          f"{(e.strerror or str(e)).lower()}") from None


def ensure_bridge(rt: Rtnl, bridge: str, gateway: str, prefixlen: int, nat: bool) -> int:
    """The bridge, up, with the gateway address: made on first use, left alone after. Its
    index."""
    idx = rt.link_index(bridge)
    if idx is None:
        try:
            rt.add_bridge(bridge)
        except NetlinkError as e:
            if e.errno != errno.EEXIST:  # another create made it first
                raise PyruncError(f"create bridge {bridge}: {e.reason}") from None
        idx = rt.link_index(bridge)
        if idx is None:
            raise PyruncError(f"create bridge {bridge}: it vanished")
    if gateway not in {a["address"] for a in rt.addresses(idx, AF_INET)}:
        try:
            rt.add_address(idx, gateway, prefixlen)
        except NetlinkError as e:
            if e.errno != errno.EEXIST:
                raise PyruncError(f"bridge {bridge}: add {gateway}: {e.reason}") from None
    try:
        rt.set_link(idx, up=True)
    except NetlinkError as e:
        raise PyruncError(f"bridge {bridge}: set it up: {e.reason}") from None
    # published ports answer on 127.0.0.1 too: loopback-sourced packets may be routed out
    write_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")
    if nat:
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    return idx


def attach(rt: Rtnl, pid: int, bridge: str, host_veth: str, address: str,
           prefixlen: int, gateway: str, ifname: str = "eth0") -> None:
    """A veth pair: `host_veth` on the bridge, its peer `ifname` in the container of `pid`
    with the address and a default route via the gateway; `lo` up there too."""
    br = rt.link_index(bridge)
    if br is None:
        raise PyruncError(f"bridge {bridge} does not exist")
    fd = netns_fd(pid)
    try:
        try:
            rt.add_veth(host_veth, ifname, fd, br)
        except NetlinkError as e:
            raise PyruncError(f"create veth {host_veth}: {e.reason}") from None
        with Rtnl(fd) as ns:
            try:
                ns.set_link(name="lo", up=True)
            except NetlinkError as e:
                if e.errno not in (errno.ENODEV, errno.ENOENT):
                    raise PyruncError(f"set lo up in the container: {e.reason}") from None
            eth = ns.link_index(ifname)
            if eth is None:
                raise PyruncError(f"veth peer {ifname} did not reach the container")
            try:
                ns.add_address(eth, address, prefixlen)
                ns.set_link(eth, up=True)
                ns.add_default_route(gateway, eth)
            except NetlinkError as e:
                raise PyruncError(f"configure {ifname} in the container: {e.reason}") from None
    finally:
        os.close(fd)


# --- linux.netDevices ---------------------------------------------------------------------------


def move_devices(pid: int, devices: dict[str, str]) -> None:
    """Move each host device into the container's namespace under its new name, put back its
    permanent global addresses (a move drops them) and set it up."""
    fd = netns_fd(pid)
    try:
        _move_devices(fd, devices)
    finally:
        os.close(fd)


def _move_devices(fd: int, devices: dict[str, str]) -> None:
    with Rtnl() as rt, Rtnl(fd) as ns:
        for host, name in devices.items():
            field = f"config.json: linux.netDevices.{host}"
            idx = rt.link_index(host)
            if idx is None:
                raise PyruncError(f"{field}: no such network device on the host")
            if "%d" not in name and ns.link_index(name) is not None:
                raise PyruncError(f"{field}.name: {name} already exists in the container")
            keep = [a for a in rt.addresses(idx)
                    if a["scope"] == RT_SCOPE_UNIVERSE and a["flags"] & IFA_F_PERMANENT]
            before = set(ns.link_indexes()) if "%d" in name else set()
            try:
                rt.set_link(idx, netns_fd=fd, new_name=name)
            except NetlinkError as e:
                raise PyruncError(f"{field}: cannot move it: {e.reason}") from None
            if "%d" in name:  # the kernel chose the name: the link that was not there before
                moved = max(set(ns.link_indexes()) - before, default=None)
            else:
                moved = ns.link_index(name)
            if moved is None:
                raise PyruncError(f"{field}: the device did not arrive in the container")
            try:
                for a in keep:
                    ns.add_address(moved, a["address"], a["prefixlen"], a["family"])
                ns.set_link(moved, up=True)
            except NetlinkError as e:
                raise PyruncError(f"{field}: configure it: {e.reason}") from None
