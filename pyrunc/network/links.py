"""Links, addresses and routes through netlink (pyroute2): bridges, veth pairs, netDevices.

Imported only by a create that asks for networking, `network create` and `network rm`:
pyroute2 costs 150+ ms to import. A netlink socket belongs to the network namespace it was
opened in, so the parent opens one inside the container's namespace (setns there and straight
back, on this single thread) and configures the container from the host.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pyrunc.errors import PyruncError
from pyrunc.network._pyroute2 import IPRoute, NetlinkError

CLONE_NEWNET = 0x40000000
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(net): {os.strerror(err)}")


@contextmanager
def netns_of(pid: int) -> Iterator[IPRoute]:
    """An IPRoute whose socket lives in the network namespace of `pid`."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                ipr = IPRoute()
            finally:
                _setns(home)
        finally:
            os.close(target)
    finally:
        os.close(home)
    try:
        yield ipr
    finally:
        ipr.close()


def _reason(e: NetlinkError) -> str:
    return os.strerror(e.code).lower() if e.code else str(e)


def index_of(ipr: IPRoute, name: str) -> int | None:
    """One RTM_GETLINK by name (link_lookup would dump every link of the host)."""
    try:
        return ipr.link("get", ifname=name)[0]["index"]
    except NetlinkError as e:
        if e.code in (errno.ENODEV, errno.ENOENT):
            return None
        raise


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


def ensure_bridge(ipr: IPRoute, bridge: str, gateway: str, prefixlen: int, nat: bool) -> None:
    """The bridge, up, with the gateway address: made on first use, left alone after."""
    idx = index_of(ipr, bridge)
    if idx is None:
        try:
            ipr.link("add", ifname=bridge, kind="bridge")
        except NetlinkError as e:
            if e.code != errno.EEXIST:  # another create made it first
                raise PyruncError(f"create bridge {bridge}: {_reason(e)}") from None
        idx = index_of(ipr, bridge)
        if idx is None:
            raise PyruncError(f"create bridge {bridge}: it vanished")
    have = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=idx, family=2)}
    if gateway not in have:
        try:
            ipr.addr("add", index=idx, address=gateway, prefixlen=prefixlen)
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise PyruncError(f"bridge {bridge}: add {gateway}: {_reason(e)}") from None
    ipr.link("set", index=idx, state="up")
    # published ports answer on 127.0.0.1 too: loopback-sourced packets may be routed out
    write_sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")
    if nat:
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")


def attach(ipr: IPRoute, pid: int, bridge: str, host_veth: str, address: str,
           prefixlen: int, gateway: str, ifname: str = "eth0") -> None:
    """A veth pair: `host_veth` on the bridge, its peer `ifname` in the container of `pid`
    with the address and a default route via the gateway; `lo` up there too."""
    br = index_of(ipr, bridge)
    if br is None:
        raise PyruncError(f"bridge {bridge} does not exist")
    try:
        ipr.link("add", ifname=host_veth, kind="veth",
                 peer={"ifname": ifname, "net_ns_pid": pid})
    except NetlinkError as e:
        raise PyruncError(f"create veth {host_veth}: {_reason(e)}") from None
    idx = index_of(ipr, host_veth)
    ipr.link("set", index=idx, master=br, state="up")
    with netns_of(pid) as ns:
        lo = index_of(ns, "lo")
        if lo is not None:
            ns.link("set", index=lo, state="up")
        eth = index_of(ns, ifname)
        if eth is None:
            raise PyruncError(f"veth peer {ifname} did not reach the container")
        try:
            ns.addr("add", index=eth, address=address, prefixlen=prefixlen)
            ns.link("set", index=eth, state="up")
            ns.route("add", dst="0.0.0.0/0", gateway=gateway, oif=eth)
        except NetlinkError as e:
            raise PyruncError(f"configure {ifname} in the container: {_reason(e)}") from None


# --- linux.netDevices ---------------------------------------------------------------------------


def move_devices(pid: int, devices: dict[str, str]) -> None:
    """Move each host device into the container's namespace under its new name, put back its
    permanent global addresses (a move drops them) and set it up."""
    with IPRoute() as ipr, netns_of(pid) as ns:
        target_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            for host, name in devices.items():
                field = f"config.json: linux.netDevices.{host}"
                idx = index_of(ipr, host)
                if idx is None:
                    raise PyruncError(f"{field}: no such network device on the host")
                if "%d" not in name and index_of(ns, name) is not None:
                    raise PyruncError(f"{field}.name: {name} already exists in the container")
                keep = []
                for family in (2, 10):
                    for a in ipr.get_addr(index=idx, family=family):
                        flags = a.get_attr("IFA_FLAGS")
                        flags = a["flags"] if flags is None else flags
                        if a["scope"] == RT_SCOPE_UNIVERSE and flags & IFA_F_PERMANENT:
                            keep.append((family, a.get_attr("IFA_ADDRESS"), a["prefixlen"]))
                try:
                    ipr.link("set", index=idx, net_ns_fd=target_fd, ifname=name)
                except NetlinkError as e:
                    raise PyruncError(f"{field}: cannot move it: {_reason(e)}") from None
                moved = index_of(ns, name) if "%d" not in name else _newest(ns)
                if moved is None:
                    raise PyruncError(f"{field}: the device did not arrive in the container")
                try:
                    for family, address, prefixlen in keep:
                        ns.addr("add", index=moved, address=address, prefixlen=prefixlen,
                                family=family)
                    ns.link("set", index=moved, state="up")
                except NetlinkError as e:
                    raise PyruncError(f"{field}: configure it: {_reason(e)}") from None
        finally:
            os.close(target_fd)


def _newest(ns: IPRoute) -> int | None:
    """A templated name (`eth%d`) was chosen by the kernel: the last link to arrive."""
    links = ns.get_links()
    return max((link["index"] for link in links), default=None)
