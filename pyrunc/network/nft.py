"""nftables through libnftables (ctypes): one atomic batch per change, in-process.

Why nftables and not iptables: a container's rules are elements of one map and two sets in a
table of pyrunc's own (`ip pyrunc`), so adding or removing one container is a single atomic
transaction that touches nothing else (no rule handles to find, no rule order to keep), and
the library call costs a fraction of forking `iptables` once per rule (iptables 1.8 here is the
nf_tables backend anyway). The table coexists with iptables-nft's tables (podman's netavark,
docker): each base chain is its own hook.
"""

from __future__ import annotations

import ctypes
import os

from pyrunc.errors import PyruncError

TABLE = "ip pyrunc"
_LOCK = "/run/lock/pyrunc-nft.lock"  # one table for every state root: rebuilds take turns
_SKELETON = "/run/lock/pyrunc-nft.base"  # how nft printed the table we made (see _apply)

_lib: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libnftables.so.1")
        except OSError:
            raise PyruncError("nftables: libnftables.so.1 is missing (apt-get install nftables)") \
                from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        _lib = lib
    return _lib


NFT_CTX_OUTPUT_JSON = 1 << 4


def run(commands: str, *, as_json: bool = False) -> str:
    """Run one batch (atomic: all of it or nothing); its output, or a PyruncError."""
    lib = _library()
    ctx = lib.nft_ctx_new(0)
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        if as_json:
            lib.nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)
        rc = lib.nft_run_cmd_from_buffer(ctx, commands.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        if rc != 0:
            err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
            first = next((line for line in err.splitlines() if line.startswith("Error")), err)
            raise PyruncError(f"nftables: {first.strip() or 'failed'}")
        return out
    finally:
        lib.nft_ctx_free(ctx)


# The fixed part, rewritten whole by every change (flush + add in one transaction: idempotent,
# and it heals a table someone flushed). Published ports are found by (protocol, port) in the
# `ports` map on any local address (127.0.0.1 too: route_localnet on the bridge, and the
# loopback source masqueraded); egress from a NAT subnet to anything outside our subnets is
# masqueraded; hairpin (a container to a published port of its own bridge) too.
_DNAT = "dnat ip addr . port to meta l4proto . th dport map @ports"
_BASE = f"""add table {TABLE}
add set {TABLE} subnets {{ type ipv4_addr; flags interval; }}
add set {TABLE} natsubnets {{ type ipv4_addr; flags interval; }}
add map {TABLE} ports {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
add chain {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add chain {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
flush chain {TABLE} prerouting
flush chain {TABLE} output
flush chain {TABLE} postrouting
add rule {TABLE} prerouting fib daddr type local {_DNAT}
add rule {TABLE} output fib daddr type local {_DNAT}
add rule {TABLE} postrouting ip saddr 127.0.0.0/8 ip daddr @subnets masquerade
add rule {TABLE} postrouting ct status dnat ip saddr @subnets ip daddr @subnets masquerade
add rule {TABLE} postrouting ip saddr @natsubnets ip daddr != @subnets masquerade
"""


class Locked:
    def __enter__(self) -> Locked:
        import fcntl

        os.makedirs(os.path.dirname(_LOCK), exist_ok=True)
        self.fd = os.open(_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _skeleton() -> str | None:
    """The table as nft prints it, without the set and map elements (`elements = { ... }`,
    over several lines when long); None when it is missing."""
    try:
        text = run(f"list table {TABLE}")
    except PyruncError:
        return None
    kept, inside = [], False
    for line in text.splitlines():
        if not inside and line.lstrip().startswith("elements = {"):
            inside = True
        if not inside:
            kept.append(line)
        elif line.rstrip().endswith("}"):
            inside = False
    return "\n".join(kept)


def _apply(elements: str) -> None:
    """Add elements, in one transaction with the fixed part when the table is not as we made
    it. Rewriting the fixed part (flush + add rules) costs the kernel 8-16 ms a commit, adding
    elements 0.5 ms: the printed skeleton of the table we made last is kept in _SKELETON with
    the _BASE it came from, and when the table prints the same (none flushed, deleted or
    changed a chain, a rule or a set) only the elements are added. Under Locked()."""
    try:
        with open(_SKELETON) as f:
            known = f.read()
    except OSError:
        known = ""
    current = _skeleton()
    if current is not None and known == _BASE + "\0" + current:
        run(elements)
        return
    run(_BASE + elements)
    current = _skeleton()
    if current is not None:
        from pyrunc.state import write_file

        try:
            write_file(_SKELETON, (_BASE + "\0" + current).encode(), durable=False)
        except PyruncError:
            pass  # the next change rewrites the fixed part again: slower, not wrong


def _elements(name: str) -> list:
    import json  # only here: a create adds elements without reading any

    try:
        out = run(f"list set {TABLE} {name}" if name != "ports" else f"list map {TABLE} ports",
                  as_json=True)
    except PyruncError:
        return []
    for item in json.loads(out).get("nftables", []):
        body = item.get("set") or item.get("map")
        if body is not None:
            return body.get("elem", [])
    return []


def remove_network(subnet: str) -> None:
    """Take the subnet out of the sets; the table goes with the last network of any root."""
    with Locked():
        lines = []
        for name in ("subnets", "natsubnets"):
            if any(_prefix_text(e) == subnet for e in _elements(name)):
                lines.append(f"delete element {TABLE} {name} {{ {subnet} }}")
        if lines:
            run("\n".join(lines) + "\n")
        if not _elements("subnets") and not _elements("ports"):
            try:
                run(f"delete table {TABLE}")
            except PyruncError:
                pass


def _prefix_text(elem: object) -> str:
    if isinstance(elem, dict) and "prefix" in elem:
        return f"{elem['prefix']['addr']}/{elem['prefix']['len']}"
    return str(elem)


def attach(subnet: str, nat: bool, ports: list[tuple[str, int, int]], address: str) -> None:
    """One transaction for a container: its network's subnet in the sets, its ports mapped."""
    batch = f"add element {TABLE} subnets {{ {subnet} }}\n"
    if nat:
        batch += f"add element {TABLE} natsubnets {{ {subnet} }}\n"
    if ports:
        elems = ", ".join(f"{proto} . {host} : {address} . {port}" for proto, host, port in ports)
        batch += f"create element {TABLE} ports {{ {elems} }}\n"
    with Locked():
        try:
            _apply(batch)
        except PyruncError as e:
            if ports and "exists" in str(e).lower():
                taken = ", ".join(f"{h}/{p}" for p, h, _ in ports)
                raise PyruncError(f"publish {taken}: host port already published") from None
            raise


def unpublish(ports: list[tuple[str, int, int]], address: str) -> None:
    """Remove exactly our elements: a host port now mapped to another address stays."""
    if not ports:
        return
    with Locked():
        ours = []
        for elem in _elements("ports"):
            try:
                key, value = elem[0]["concat"], elem[1]["concat"]
            except (KeyError, TypeError, IndexError):
                continue
            if value[0] == address and (key[0], int(key[1])) in {(p, h) for p, h, _ in ports}:
                ours.append(f"{key[0]} . {key[1]}")
        if ours:
            run(f"delete element {TABLE} ports {{ {', '.join(ours)} }}\n")
