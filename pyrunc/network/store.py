"""Networks and their address leases, under the state root (`<root>/.networks/NAME.json`).

Every change happens under one exclusive flock (`.networks/.lock`) and is written atomically
(temporary file, fsync, rename, fsync of the directory), so concurrent pyrunc processes never
hand out the same address and a crash leaves either the old file or the new one. A lease names
its container; a lease whose container directory is gone (a create killed before it could
record anything) is free again.
"""

from __future__ import annotations

import os
from _socket import AF_INET, inet_ntop, inet_pton

from pyrunc import jsonlite, syscall
from pyrunc.errors import PyruncError, StateCorrupt
from pyrunc.state import Locked, lock_file, read_file, write_file

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported for a networked create
    from typing import TypedDict, TypeGuard

    class NetworkRecord(TypedDict):
        """.networks/NAME.json, as create_network writes it and leases change it."""

        name: str
        subnet: str  # "A.B.C.0/N", N <= 30
        gateway: str
        bridge: str
        nat: bool
        created: str
        leases: dict[str, str]  # address -> container id

DIR = ".networks"
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")
IFNAME_MAX = 15


def valid_name(name: str) -> str:
    """1-64 of letters, digits, '_', '.', '-', starting with a letter or digit (no `re`: a
    networked create would import it, and enum with it, for this alone)."""
    if not (0 < len(name) <= 64 and name[0] in _ALNUM and _NAME_CHARS.issuperset(name)):
        raise PyruncError(f"invalid network name {name!r}: letters, digits, '_', '.', '-'")
    return name


def _v4(text: str) -> int:
    """A dotted quad as an int (inet_pton: as strict as ipaddress, no leading zeros); the
    lease needs nothing more, and ipaddress costs a create ~8 ms of imports."""
    return int.from_bytes(inet_pton(AF_INET, text), "big")


def _v4_text(value: int) -> str:
    return inet_ntop(AF_INET, value.to_bytes(4, "big"))


def valid_ifname(name: str, what: str) -> str:
    if not name or len(name) > IFNAME_MAX or name in (".", "..") or any(
        c in name for c in "/: \t\n"
    ):
        raise PyruncError(f"{what}: invalid interface name {name!r}")
    return name


def write_atomic(path: str, data: object, *, durable: bool = True, sync_dir: bool = True) -> None:
    """The state store's write: whole (short writes continued), fsync'ed, renamed, the directory
    fsync'ed; a full disk is one line naming the file and leaves no temporary file. Without
    `durable` (no fsync at all) or `sync_dir` (the rename may be lost in a crash, the file is
    then the old one, whole): for what a crash of the machine makes moot (see the callers)."""
    write_file(path, jsonlite.dumps(data, separators=(",", ":")).encode(), durable=durable,
               sync_dir=sync_dir)


def read_json(path: str) -> dict | None:
    """A record read as a state file is (never through a symlink, never blocking on a FIFO,
    regular and bounded) that must be a JSON object; None when missing."""
    try:
        data = jsonlite.loads(read_file(path, 1 << 20))
    except FileNotFoundError:
        return None
    except (ValueError, RecursionError) as e:
        raise StateCorrupt(f"{path} is corrupt: {e}") from None
    if not isinstance(data, dict):
        raise StateCorrupt(f"{path} is corrupt: not a JSON object")
    return data


def check_record(data: dict, name: str) -> str | None:
    """What is wrong with a loaded network record, or None: every field a command reads has
    the type and form it expects, so a damaged record is reported, not a traceback."""
    if data.get("name") != name:
        return f"name is {data.get('name')!r}, not {name!r}"
    for key in ("subnet", "gateway", "bridge", "created"):
        if not isinstance(data.get(key), str):
            return f"{key}: not a string"
    address, _, prefix = data["subnet"].partition("/")
    try:
        _v4(address)
        if not (prefix.isdigit() and int(prefix) <= 30):
            raise ValueError(prefix)
    except (OSError, ValueError):
        return f"subnet: {data['subnet']!r} is not an IPv4 CIDR of at most /30"
    try:
        _v4(data["gateway"])
    except (OSError, ValueError):  # ValueError: a NUL in it
        return f"gateway: {data['gateway']!r} is not an IPv4 address"
    if type(data.get("nat")) is not bool:
        return "nat: not a boolean"
    leases = data.get("leases")
    if not (isinstance(leases, dict) and all(isinstance(c, str) for c in leases.values())):
        return "leases: not an object of container ids"
    for address in leases:  # each goes into nft's batch and netlink as this container's
        try:
            _v4(address)
        except (OSError, ValueError):
            return f"leases: {address!r} is not an IPv4 address"
    return None


class DamagedRecord(StateCorrupt):
    """A record that is JSON but not a network record: what it says is kept (`data`), for the
    message of a `network rm --force` that removes it without acting on it."""

    def __init__(self, message: str, data: dict) -> None:
        super().__init__(message)
        self.data = data


def _is_record(data: dict, problem: str | None) -> TypeGuard[NetworkRecord]:
    return problem is None


class NetworkStore:
    """The networks of one state root; use as a context manager to hold the lock."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.dir = os.path.join(self.root, DIR)
        self._lock: Locked | None = None

    def __enter__(self) -> NetworkStore:
        sys_ = syscall.get()
        try:
            sys_.makedirs(self.dir, 0o700)
        except OSError as e:
            raise PyruncError(f"cannot create {self.dir}: {e.strerror}") from None
        self._lock = lock_file(os.path.join(self.dir, ".lock"),
                               os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        return self

    def __exit__(self, *exc: object) -> None:
        self.tidy()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def tidy(self) -> None:
        """No networks left: the directory goes too (the state root lists only containers)."""
        sys_ = syscall.get()
        try:
            names = sys_.listdir(self.dir)
        except FileNotFoundError:
            return
        if names == [".lock"]:
            try:
                sys_.unlink(os.path.join(self.dir, ".lock"))
                sys_.rmdir(self.dir)
            except OSError:
                pass

    def path(self, name: str) -> str:
        return os.path.join(self.dir, valid_name(name) + ".json")

    def names(self) -> list[str]:
        try:
            return sorted(n[:-5] for n in syscall.get().listdir(self.dir)
                          if n.endswith(".json"))
        except FileNotFoundError:
            return []

    def load(self, name: str) -> NetworkRecord:
        path = self.path(name)
        data = read_json(path)
        if data is None:
            raise PyruncError(f"network {name} does not exist")
        problem = check_record(data, name)
        if not _is_record(data, problem):
            raise DamagedRecord(f"{path} is corrupt: {problem}", data)
        return data

    def save(self, net: NetworkRecord, *, sync_dir: bool = True) -> None:
        write_atomic(self.path(net["name"]), net, sync_dir=sync_dir)

    def remove(self, name: str) -> None:
        path = self.path(name)
        try:
            syscall.get().unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:  # a directory in its place, say
            raise PyruncError(f"cannot remove {path}: {e.strerror}") from None

    def live_leases(self, net: NetworkRecord) -> dict[str, str]:
        """address -> container id, only for containers whose directory still exists."""
        return {ip: cid for ip, cid in net.get("leases", {}).items()
                if syscall.get().isdir(os.path.join(self.root, cid))}

    def lease(self, net: NetworkRecord, container_id: str, wanted: str | None) -> str:
        """Give the container an address (the one asked for, or the lowest free one)."""
        subnet = net["subnet"]  # as create_network wrote it: "A.B.C.0/N", N <= 30
        address, _, prefix = subnet.partition("/")
        size = 1 << (32 - int(prefix))
        first = _v4(address) & ~(size - 1)
        last = first + size - 1  # the broadcast address
        leases = self.live_leases(net)
        for ip, cid in leases.items():
            if cid == container_id:
                return ip
        gateway = _v4(net["gateway"])
        if wanted is not None:
            try:
                value = _v4(wanted)
            except OSError:
                raise PyruncError(f"ip={wanted}: not an IPv4 address") from None
            ip = _v4_text(value)
            if not first < value < last or value == gateway:
                raise PyruncError(f"ip={wanted}: not a free host address of {subnet}")
            if ip in leases:
                raise PyruncError(f"ip={wanted}: already leased to {leases[ip]}")
        else:
            ip = next((text for text in map(_v4_text, range(first + 1, last))
                       if text not in leases and text != net["gateway"]), "")
            if not ip:
                raise PyruncError(f"network {net['name']}: no free address in {subnet}")
        leases[ip] = container_id
        net["leases"] = leases
        # the record is fsync'ed (a crash leaves it old or new, whole), its rename is not: a
        # lease lost in a crash belonged to a container the crash killed (~3 ms a create)
        self.save(net, sync_dir=False)
        return ip

    def release(self, name: str, container_id: str) -> None:
        try:
            net = self.load(name)
        except PyruncError:
            return
        leases = net.get("leases", {})
        kept = {ip: cid for ip, cid in leases.items() if cid != container_id}
        if kept != leases:
            net["leases"] = kept
            self.save(net, sync_dir=False)  # a release lost in a crash: its directory is gone
