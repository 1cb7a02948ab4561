"""The two netlink requests `delete` needs, without pyroute2 (which costs 150+ ms to import):
delete a link by name. Everything else goes through pyroute2 (pyrunc.network.links)."""

from __future__ import annotations

import errno
import os
import socket
import struct

NETLINK_ROUTE = 0
RTM_DELLINK = 17
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
IFLA_IFNAME = 3


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)


def delete_link(name: str) -> bool:
    """Delete the interface `name` in this network namespace; False when it does not exist."""
    body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
    body += _attr(IFLA_IFNAME, name.encode() + b"\0")
    msg = struct.pack("IHHII", 16 + len(body), RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, 1, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       NETLINK_ROUTE) as s:
        s.send(msg)
        reply = s.recv(65536)
    _, kind = struct.unpack_from("IH", reply)
    if kind != NLMSG_ERROR:
        return True
    (code,) = struct.unpack_from("i", reply, 16)
    if code == 0:
        return True
    if -code in (errno.ENODEV, errno.ENOENT):
        return False
    raise OSError(-code, f"delete interface {name}: {os.strerror(-code)}")
