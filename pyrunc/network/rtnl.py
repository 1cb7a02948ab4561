"""rtnetlink (NETLINK_ROUTE) over a raw socket: the requests pyrunc's networking sends.

Links (a bridge, a veth pair whose peer is made inside a container's network namespace, a
device moved there, up), addresses, the default route, a link's deletion. Each request is one
datagram of fixed C structs (struct, _socket), checked against the kernel's acknowledgement:
importing pyroute2 for this cost 150-500 ms per networked create, these take a few ms.

A netlink socket belongs to the network namespace it was opened in: `Rtnl(netns_fd)` opens
its socket inside that namespace (setns there and straight back, on the calling thread) and
then configures it from here.
"""

from __future__ import annotations

import errno
import os
import struct

# the C module: `socket` would import selectors, enums and more (~7 ms a create)
from _socket import (
    AF_INET,
    AF_INET6,
    AF_NETLINK,
    AF_UNSPEC,
    SOCK_CLOEXEC,
    SOCK_RAW,
    inet_ntop,
    inet_pton,
)
from _socket import socket as Socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypedDict

    class Address(TypedDict):
        """One address of a link, as `ip addr` shows it."""

        family: int  # AF_INET or AF_INET6
        address: str
        prefixlen: int
        scope: int
        flags: int  # IFA_F_*

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK = 10, 11

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE = 24
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x200, 0x400, 0x300
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # on an error: request not echoed; ext. ack
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000

IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFF_UP = 0x1

IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_PERMANENT = 0x80
RT_SCOPE_UNIVERSE = 0

RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST = 254, 4, 1

CLONE_NEWNET = 0x40000000

_HDR = struct.Struct("IHHII")  # struct nlmsghdr
_IFINFO = struct.Struct("BxHiII")  # struct ifinfomsg
_IFADDR = struct.Struct("BBBBi")  # struct ifaddrmsg
_RTMSG = struct.Struct("BBBBBBBBI")  # struct rtmsg


class NetlinkError(OSError):
    """A request the kernel refused: errno, and the kernel's own words when it gave some."""

    def __init__(self, code: int, what: str, detail: str = "") -> None:
        self.reason = os.strerror(code).lower() + (f" ({detail})" if detail else "")
        super().__init__(code, f"{what}: {self.reason}")


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute (struct nlattr), padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)


def _name(name: str) -> bytes:
    return attr(IFLA_IFNAME, name.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack("I", value))


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes from `offset` on (the last of a repeated type wins)."""
    out = {}
    end = len(data)
    while offset + 4 <= end:
        length, kind = struct.unpack_from("HH", data, offset)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return out


def _setns(fd: int) -> None:
    setns = getattr(os, "setns", None)  # Python >= 3.12
    if setns is not None:
        setns(fd, CLONE_NEWNET)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(net): {os.strerror(err)}")


def _socket_in(netns_fd: int) -> Socket:
    """A NETLINK_ROUTE socket of the network namespace `netns_fd`; this thread comes back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(netns_fd)
        try:
            return _open()
        finally:
            try:
                _setns(home)
            except OSError as e:  # not back home: nothing this process does after is safe
                os.write(2, f"pyrunc: cannot return to the host network namespace: {e}\n"
                         .encode())
                os._exit(1)
    finally:
        os.close(home)


def _open() -> Socket:
    s = Socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)  # the kernel's reason with an error
        s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)  # an error does not echo our request
    except OSError:
        pass
    return s


class Rtnl:
    """One NETLINK_ROUTE socket: of this network namespace, or of `netns_fd`'s."""

    def __init__(self, netns_fd: int | None = None) -> None:
        self.sock = _open() if netns_fd is None else _socket_in(netns_fd)
        self.seq = 0

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # --- the wire ---------------------------------------------------------------------------

    def request(self, kind: int, flags: int, body: bytes, what: str) -> list[tuple[int, bytes]]:
        """Send one message and collect the answer: its (type, payload) messages up to the
        acknowledgement or the end of a dump; an error is a NetlinkError naming `what`."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | flags, seq, 0)
                       + body)
        out: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, mflags, mseq, _ = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    break
                payload = data[offset + _HDR.size:offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue  # an answer to an earlier request, or a notification
                if mtype == NLMSG_ERROR:
                    (code,) = struct.unpack_from("i", payload)
                    if code:
                        raise NetlinkError(-code, what, _ext_ack(payload, mflags))
                    return out
                if mtype == NLMSG_DONE:
                    return out
                out.append((mtype, payload))
                if not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                    return out  # the one answer to a plain get

    # --- links ------------------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """One RTM_GETLINK by name (a dump would list every link of the host)."""
        try:
            reply = self.request(RTM_GETLINK, 0, _IFINFO.pack(0, 0, 0, 0, 0) + _name(name),
                                 f"look up {name}")
        except NetlinkError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return None
            raise
        return _IFINFO.unpack_from(reply[0][1])[2]

    def link_indexes(self) -> list[int]:
        """The index of every link of this namespace."""
        reply = self.request(RTM_GETLINK, NLM_F_DUMP, _IFINFO.pack(0, 0, 0, 0, 0), "list links")
        return [_IFINFO.unpack_from(p)[2] for t, p in reply if t == RTM_NEWLINK]

    def add_bridge(self, name: str) -> None:
        """A new bridge, up (EEXIST when the name is taken)."""
        info = attr(IFLA_LINKINFO | NLA_F_NESTED, attr(IFLA_INFO_KIND, b"bridge"))
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                     _IFINFO.pack(0, 0, 0, IFF_UP, IFF_UP) + _name(name) + info,
                     f"create bridge {name}")

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, master: int) -> None:
        """A veth pair: `name` here, up, on the bridge `master`; `peer` made directly in the
        namespace `peer_netns_fd` (it is never on the host), down (the kernel opens the peer
        before the pair is joined: asking for it up here fails with ENOTCONN)."""
        peer_msg = (_IFINFO.pack(0, 0, 0, 0, 0) + _name(peer)
                    + _u32(IFLA_NET_NS_FD, peer_netns_fd))
        info = attr(IFLA_LINKINFO | NLA_F_NESTED,
                    attr(IFLA_INFO_KIND, b"veth")
                    + attr(IFLA_INFO_DATA | NLA_F_NESTED, attr(VETH_INFO_PEER, peer_msg)))
        self.request(RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
                     _IFINFO.pack(0, 0, 0, IFF_UP, IFF_UP) + _name(name)
                     + _u32(IFLA_MASTER, master) + info, f"create veth {name}")

    def set_link(self, index: int = 0, *, name: str | None = None, up: bool = False,
                 netns_fd: int | None = None, new_name: str | None = None,
                 what: str = "") -> None:
        """Change a link found by index (or by name): up, into a namespace, renamed."""
        flag = IFF_UP if up else 0
        body = _IFINFO.pack(0, 0, index, flag, flag)
        if name is not None:
            body += _name(name)
        if netns_fd is not None:
            body += _u32(IFLA_NET_NS_FD, netns_fd)
        if new_name is not None:
            body += _name(new_name)
        self.request(RTM_NEWLINK, NLM_F_ACK, body, what or f"set link {name or index}")

    def delete_link(self, name: str) -> bool:
        """Delete the link `name`; False when it does not exist."""
        try:
            self.request(RTM_DELLINK, NLM_F_ACK, _IFINFO.pack(0, 0, 0, 0, 0) + _name(name),
                         f"delete interface {name}")
        except NetlinkError as e:
            if e.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    # --- addresses and routes ---------------------------------------------------------------

    def addresses(self, index: int, family: int = AF_UNSPEC) -> list[Address]:
        """The addresses of link `index`: family, address, prefixlen, scope, flags."""
        reply = self.request(RTM_GETADDR, NLM_F_DUMP, _IFADDR.pack(family, 0, 0, 0, 0),
                             "list addresses")
        out: list[Address] = []
        for mtype, payload in reply:
            fam, prefixlen, flags, scope, idx = _IFADDR.unpack_from(payload)
            if mtype != RTM_NEWADDR or idx != index:
                continue
            attrs = parse_attrs(payload, _IFADDR.size)
            raw = attrs.get(IFA_ADDRESS) or attrs.get(IFA_LOCAL)
            if raw is None or fam not in (AF_INET, AF_INET6):
                continue
            if IFA_FLAGS in attrs:
                (flags,) = struct.unpack_from("I", attrs[IFA_FLAGS])
            out.append({"family": fam, "address": inet_ntop(fam, raw),
                        "prefixlen": prefixlen, "scope": scope, "flags": flags})
        return out

    def add_address(self, index: int, address: str, prefixlen: int,
                    family: int = AF_INET, what: str = "") -> None:
        raw = inet_pton(family, address)
        body = _IFADDR.pack(family, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        if family == AF_INET:
            body += attr(IFA_LOCAL, raw)
        body += attr(IFA_ADDRESS, raw)
        self.request(RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body,
                     what or f"add {address}/{prefixlen}")

    def add_default_route(self, gateway: str, oif: int) -> None:
        """0.0.0.0/0 via `gateway` out of link `oif`, in the main table (`ip route add default
        via GATEWAY dev IF` makes the same)."""
        body = (_RTMSG.pack(AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC,
                            RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
                + attr(RTA_GATEWAY, inet_pton(AF_INET, gateway))
                + _u32(RTA_OIF, oif))
        self.request(RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body,
                     f"add the default route via {gateway}")


def _ext_ack(payload: bytes, flags: int) -> str:
    """The kernel's message in an extended acknowledgement: after the error code and our
    request (its bare header when the kernel capped it, as NETLINK_CAP_ACK asks)."""
    if not flags & NLM_F_ACK_TLVS or len(payload) < 4 + _HDR.size:
        return ""
    echoed = _HDR.size if flags & NLM_F_CAPPED else _HDR.unpack_from(payload, 4)[0]
    msg = parse_attrs(payload, 4 + ((echoed + 3) & ~3)).get(NLMSGERR_ATTR_MSG, b"")
    return msg.rstrip(b"\0").decode(errors="replace")


def delete_link(name: str) -> bool:
    """Delete the interface `name` in this network namespace; False when it does not exist."""
    with Rtnl() as rt:
        return rt.delete_link(name)
