"""A container on a bridge network: what create asks for, records, makes; what delete undoes.

Order (lifecycle/create.py): `prepare` before the init is cloned (lease, the intent file
`network.json` in the container's state directory, resolv.conf/hosts for bind mounts), `setup`
at the init's namespaces sync point (the veth pair, addresses, routes, nftables elements),
`teardown` at delete, after a failed create and at `delete --force` after a killed one: it
removes exactly what the intent file names, each step harmless when already undone.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, PyruncError
from pyrunc.network.store import NetworkStore, read_json, valid_name, write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported for a networked create
    from typing import TypedDict

    class AttachRecord(TypedDict, total=False):
        """network.json: what a create leased and makes, for teardown to undo exactly that
        (written first with the first five keys, before the lease; then whole)."""

        network: str
        root: str
        id: str
        host_veth: str
        ports: list[tuple[str, int, int]]  # (proto, host port, container port): JSON arrays
        ip: str
        subnet: str
        gateway: str
        bridge: str
        nat: bool

    class StateFileMount(TypedDict):
        """A bind mount of a state-directory file over /etc/NAME (config.json's shape)."""

        destination: str
        type: str
        source: str
        options: list[str]

INTENT = "network.json"
ANNOTATION = "org.pyrunc.network"
ANNOTATION_IP = "org.pyrunc.network.ip"
ANNOTATION_PORTS = "org.pyrunc.network.ports"
ANNOTATION_DNS = "org.pyrunc.network.dns"
ANNOTATION_HOSTS = "org.pyrunc.network.hosts"


class Request:
    """--network NAME[:ip=A.B.C.D] --publish H:P[/proto] ..., or the same as annotations."""

    __slots__ = ("network", "ip", "ports", "dns", "hosts", "source")

    def __init__(self, network: str, ip: str | None = None,
                 ports: list[tuple[str, int, int]] | None = None, dns: list[str] | None = None,
                 hosts: bool = False, source: str = "--network") -> None:
        self.network = network
        self.ip = ip
        self.ports = ports or []
        self.dns = dns
        self.hosts = hosts
        self.source = source


def parse_port(text: str, field: str) -> tuple[str, int, int]:
    """HOSTPORT:PORT[/tcp|udp] -> (proto, hostport, port)."""
    spec, _, proto = text.strip().partition("/")
    proto = proto or "tcp"
    host, sep, port = spec.partition(":")
    if proto not in ("tcp", "udp") or not sep or not host.isdigit() or not port.isdigit() \
            or not 0 < int(host) < 65536 or not 0 < int(port) < 65536:
        raise ConfigError(f"{field}: {text!r}: expected HOSTPORT:PORT[/tcp|udp]")
    return proto, int(host), int(port)


def parse_network(text: str, field: str) -> tuple[str, str | None]:
    """NAME[:ip=A.B.C.D]"""
    name, _, opts = text.partition(":")
    ip = None
    for opt in filter(None, opts.split(",")):
        key, eq, value = opt.partition("=")
        if key != "ip" or not eq:
            raise ConfigError(f"{field}: {text!r}: unknown option {opt!r} (expected ip=ADDRESS)")
        ip = value
    try:
        valid_name(name)
    except PyruncError as e:
        raise ConfigError(f"{field}: {e}") from None
    return name, ip


def request_from(network: str | None, publish: list[str] | None,
                 annotations: dict[str, str]) -> Request | None:
    """The command line wins over the bundle's annotations."""
    dns_text = annotations.get(ANNOTATION_DNS)
    dns = [s.strip() for s in dns_text.split(",") if s.strip()] if dns_text else None
    hosts = annotations.get(ANNOTATION_HOSTS, "").lower() in ("1", "true", "yes")
    if network:
        name, ip = parse_network(network, "--network")
        ports = [parse_port(p, "--publish") for p in publish or ()]
        return Request(name, ip, ports, dns, hosts)
    if publish:
        raise ConfigError("--publish: needs --network")
    if ANNOTATION not in annotations:
        for key in (ANNOTATION_IP, ANNOTATION_PORTS):
            if key in annotations:
                raise ConfigError(f"config.json: annotations.{key}: needs {ANNOTATION}")
        return None
    field = f"config.json: annotations.{ANNOTATION}"
    name, ip = parse_network(annotations[ANNOTATION], field)
    if ANNOTATION_IP in annotations:
        ip = annotations[ANNOTATION_IP]
    ports_field = f"config.json: annotations.{ANNOTATION_PORTS}"
    ports = [parse_port(p, ports_field)
             for p in annotations.get(ANNOTATION_PORTS, "").split(",") if p.strip()]
    return Request(name, ip, ports, dns, hosts, source=field)


def host_veth_name(root: str, container_id: str) -> str:
    """15 characters at most (IFNAMSIZ): a hash of the state root and the id."""
    try:
        from _sha256 import sha256  # the C module itself: hashlib would load OpenSSL
    except ImportError:  # Python >= 3.12 names it _sha2
        from hashlib import sha256

    return "pyr" + sha256(f"{root}\0{container_id}".encode()).hexdigest()[:12]


class Attachment:
    """What `prepare` decided and recorded; `setup` makes it."""

    def __init__(self, record: AttachRecord, mounts: list[StateFileMount]) -> None:
        self.record = record
        self.mounts = mounts


def prepare(root: str, container_id: str, state_dir: str, req: Request,
            hostname: str | None) -> Attachment:
    intent_path = os.path.join(state_dir, INTENT)
    record: AttachRecord = {"network": req.network, "root": root, "id": container_id,
                    "host_veth": host_veth_name(root, container_id),
                    "ports": list(req.ports)}
    with NetworkStore(root) as store:
        try:
            net = store.load(req.network)
        except PyruncError as e:
            raise ConfigError(f"{req.source}: {e}") from None
        # recorded before the lease: a create killed in between still gives it back at delete.
        # Not fsync'ed (two fsyncs were ~25 ms of a join): it has to survive our being killed,
        # which the rename alone gives; a crash of the machine takes the veth and the nftables
        # elements it names, and frees the lease with the container (its directory goes at
        # delete), so a record a crash left empty is one with nothing to undo (teardown).
        write_atomic(intent_path, record, durable=False, sync_dir=False)
        try:
            ip = store.lease(net, container_id, req.ip)
        except PyruncError as e:
            raise ConfigError(f"{req.source}: {e}") from None
    record.update({"ip": ip, "subnet": net["subnet"], "gateway": net["gateway"],
                   "bridge": net["bridge"], "nat": bool(net.get("nat", True))})
    write_atomic(intent_path, record, durable=False, sync_dir=False)
    mounts: list[StateFileMount] = []
    if req.dns is not None:
        mounts.append(_state_file(state_dir, "resolv.conf", _resolv_conf(req.dns)))
    if req.hosts:
        name = hostname or container_id
        text = (f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                f"{ip}\t{name}\n{net['gateway']}\thost.containers.internal\n")
        mounts.append(_state_file(state_dir, "hosts", text))
    return Attachment(record, mounts)


def _resolv_conf(servers: list[str]) -> str:
    if servers == ["host"]:
        try:
            with open("/etc/resolv.conf") as f:
                return f.read()
        except OSError:
            return ""
    return "".join(f"nameserver {s}\n" for s in servers)


def _state_file(state_dir: str, name: str, text: str) -> StateFileMount:
    """A file in the state directory, bind-mounted over /etc/NAME: the image is not written."""
    path = os.path.join(state_dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return {"destination": f"/etc/{name}", "type": "bind", "source": path,
            "options": ["bind", "ro", "nosuid", "nodev", "noexec"]}


def setup(att: Attachment, pid: int) -> None:
    """At the init's namespaces sync point: bridge, veth, eth0, routes, NAT and DNAT."""
    from pyrunc.network import links, nft

    r = att.record
    prefixlen = int(r["subnet"].split("/")[1])
    with links.Rtnl() as rt:
        links.ensure_bridge(rt, r["bridge"], r["gateway"], prefixlen, r["nat"])
        links.attach(rt, pid, r["bridge"], r["host_veth"], r["ip"], prefixlen, r["gateway"])
    nft.attach(r["subnet"], r["nat"], list(r["ports"]), r["ip"])


def teardown(state_dir: str) -> None:
    """Undo what the intent file records."""
    path = os.path.join(state_dir, INTENT)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if st.st_size == 0 and (st.st_mode & 0o170000) == 0o100000:
        return  # only a crash of the machine empties it (prepare), and took all it named
    record = read_json(path)
    if record is None:
        return
    ports = record.get("ports") or []
    if not all(isinstance(record.get(k), str) for k in ("host_veth", "root", "network", "id")) \
            or not isinstance(ports, list) or not all(
                isinstance(p, list) and len(p) == 3 for p in ports):
        raise PyruncError(f"{path} is corrupt: not a network record")
    from pyrunc.network import nft, rtnl

    errors = []
    if record.get("ip") and record.get("ports"):
        try:
            nft.unpublish([tuple(p) for p in record["ports"]], record["ip"])
        except PyruncError as e:
            errors.append(str(e))
    try:
        rtnl.delete_link(record["host_veth"])
    except OSError as e:
        errors.append(str(e))
    with NetworkStore(record["root"]) as store:
        store.release(record["network"], record["id"])
    if errors:
        raise PyruncError("network teardown: " + "; ".join(errors))
