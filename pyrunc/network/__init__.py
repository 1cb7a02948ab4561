"""Bridge networks for containers: `pyrunc network create/ls/inspect/rm` and the same here.

A network is a record under the state root (subnet, gateway, bridge name, NAT or not, leases);
the bridge and its nftables elements are made when the first container joins (create with
`network=`), the bridge is removed by `remove_network`. Importing this module is cheap: the
netlink and nftables code (pyrunc.network.links, rtnl, nft) loads only where it is used.
"""

from __future__ import annotations

import os
import time

from pyrunc.errors import PyruncError, StateCorrupt
from pyrunc.log import get_logger
from pyrunc.network.store import DamagedRecord, NetworkStore, valid_ifname, valid_name
from pyrunc.state import DEFAULT_ROOT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypedDict

    from pyrunc.network.store import NetworkRecord

    class NetworkView(TypedDict):
        """A network as `network ls --format json` and `inspect` show it: its record with
        the live leases as {container id: address} instead of the leases."""

        name: str
        subnet: str
        gateway: str
        bridge: str
        nat: bool
        created: str
        containers: dict[str, str]

DEFAULT_NETWORK = "pyrunc"
DEFAULT_POOL = "10.90.0.0/16"  # /24s from here when no --subnet is given

__all__ = ["create_network", "ensure_default_network", "inspect_network", "list_networks",
           "remove_network", "DEFAULT_NETWORK"]


def _host_routes() -> list:
    """IPv4 routes of this host (/proc/net/route), to keep new subnets off them."""
    import ipaddress

    out = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for line in f:
                fields = line.split()
                dest, mask = int(fields[1], 16), int(fields[7], 16)
                if mask == 0:
                    continue  # the default route overlaps everything
                net = ipaddress.IPv4Network(
                    (ipaddress.IPv4Address(dest.to_bytes(4, "little")),
                     bin(mask).count("1")), strict=False)
                out.append(net)
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return out


def _bridge_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def create_network(name: str, subnet: str | None = None, gateway: str | None = None,
                   bridge: str | None = None, nat: bool = True,
                   root: str = DEFAULT_ROOT) -> NetworkRecord:
    """Record a new network; its bridge is made when the first container joins."""
    import ipaddress  # here: a networked create imports this package, not this (~8 ms)

    valid_name(name)
    with NetworkStore(root) as store:
        if name in store.names():
            raise PyruncError(f"network {name} already exists")
        others = [store.load(n) for n in store.names()]
        taken = [ipaddress.IPv4Network(n["subnet"]) for n in others]
        if subnet is None:
            avoid = taken + _host_routes()
            pool = ipaddress.IPv4Network(DEFAULT_POOL)
            net = next((s for s in pool.subnets(new_prefix=24)
                        if not any(s.overlaps(t) for t in avoid)), None)
            if net is None:
                raise PyruncError(f"--subnet: no free /24 left in {DEFAULT_POOL}")
        else:
            try:
                net = ipaddress.IPv4Network(subnet, strict=False)
            except ValueError:
                raise PyruncError(f"--subnet: {subnet!r}: not an IPv4 CIDR") from None
            if net.prefixlen > 30:
                raise PyruncError(f"--subnet: {net} is too small (at most /30)")
            for other, t in zip(others, taken, strict=True):
                if net.overlaps(t):
                    raise PyruncError(f"--subnet: {net} overlaps network {other['name']} ({t})")
        if gateway is None:
            gw = str(next(net.hosts()))
        else:
            try:
                addr = ipaddress.IPv4Address(gateway)
            except ValueError:
                raise PyruncError(f"--gateway: {gateway!r}: not an IPv4 address") from None
            if addr not in net or addr in (net.network_address, net.broadcast_address):
                raise PyruncError(f"--gateway: {gateway} is not a host address of {net}")
            gw = str(addr)
        br = bridge or ("pyr-" + name)[:15]
        valid_ifname(br, "--bridge")
        if _bridge_exists(br):  # network rm removes the bridge: it must be one we make
            raise PyruncError(f"--bridge: an interface {br} already exists on this host")
        for other in others:
            if other["bridge"] == br:
                raise PyruncError(f"--bridge: {br} is the bridge of network {other['name']}")
        record: NetworkRecord = {"name": name, "subnet": str(net), "gateway": gw, "bridge": br,
                  "nat": bool(nat), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "leases": {}}
        store.save(record)
        return record


def ensure_default_network(root: str = DEFAULT_ROOT) -> str:
    """The network `sandbox.run(network=True)` joins: made on first use."""
    with NetworkStore(root) as store:
        exists = DEFAULT_NETWORK in store.names()
    if not exists:
        try:
            create_network(DEFAULT_NETWORK, root=root)
        except PyruncError as e:
            if "already exists" not in str(e):
                raise
    return DEFAULT_NETWORK


def list_networks(root: str = DEFAULT_ROOT) -> list[NetworkView]:
    with NetworkStore(root) as store:
        return [_public(store, store.load(n)) for n in store.names()]


def inspect_network(name: str, root: str = DEFAULT_ROOT) -> NetworkView:
    with NetworkStore(root) as store:
        return _public(store, store.load(name))


def _public(store: NetworkStore, net: NetworkRecord) -> NetworkView:
    return {"name": net["name"], "subnet": net["subnet"], "gateway": net["gateway"],
            "bridge": net["bridge"], "nat": net["nat"], "created": net["created"],
            "containers": {cid: ip for ip, cid in sorted(store.live_leases(net).items())}}


def remove_network(name: str, root: str = DEFAULT_ROOT, *, force: bool = False) -> None:
    """Remove the bridge, the network's nftables elements and its record (refused while a
    container uses it). With `force`, a damaged record is removed too, and only the record:
    what a damaged record names (a bridge, a subnet) is not trusted to act on, so a warning
    names it for the user to remove."""
    with NetworkStore(root) as store:
        try:
            net = store.load(name)
        except StateCorrupt as e:
            if not force:
                raise
            store.remove(name)
            get_logger().warning(f"network rm --force {name}: {e}; removed the record only"
                                 + _named_by(e))
            return
        users = store.live_leases(net)
        if users:
            raise PyruncError(
                f"network {name} is in use by {', '.join(sorted(users.values()))}"
            )
        if os.geteuid() == 0:  # an unprivileged caller's create makes no bridge or rules
            from pyrunc.network import nft, rtnl

            try:
                rtnl.delete_link(net["bridge"])
            except OSError as e:
                raise PyruncError(f"remove bridge {net['bridge']}: {e.strerror}") from None
            nft.remove_network(net["subnet"])
        store.remove(name)


def _named_by(damaged: StateCorrupt) -> str:
    """What a removed damaged record still names, where it is readable."""
    data = damaged.data if isinstance(damaged, DamagedRecord) else {}
    left = [f"{what} {data[key]}" for key, what in (("bridge", "bridge"),
                                                    ("subnet", "nftables elements of"))
            if isinstance(data.get(key), str)]
    return f": {' and '.join(left)}, if any, are left as they are" if left else ""
