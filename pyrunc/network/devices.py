"""linux.netDevices (config-linux.md "Network Devices"): host interfaces moved into the
container's new network namespace at create, renamed when asked, addresses kept, set up.
Never moved back at delete: the kernel returns physical devices (and destroys virtual ones)
when the namespace goes, as the spec requires."""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError, PyruncError
from pyrunc.network.store import valid_ifname


def targets(devices: dict) -> dict[str, str]:
    """host name -> name in the container; every name checked, the JSON path in each error."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for host, dev in devices.items():
        field = f"config.json: linux.netDevices.{host}"
        try:
            valid_ifname(host, field)
        except PyruncError as e:
            raise ConfigError(str(e)) from None
        name = (dev.name if dev is not None else None) or host
        try:
            valid_ifname(name, field + ".name")
        except PyruncError as e:
            raise ConfigError(str(e)) from None
        if name.count("%") > (1 if "%d" in name else 0):
            raise ConfigError(f"{field}.name: {name!r}: only one %d template is allowed")
        if name == "lo":
            raise ConfigError(f"{field}.name: lo already exists in the container")
        if "%d" not in name and name in seen:
            raise ConfigError(f"{field}.name: {name} is also the name of {seen[name]}")
        seen[name] = host
        out[host] = name
    return out


def check_devices(devices: dict) -> None:
    """Before the init is cloned: the names are valid and each host device exists."""
    for host in targets(devices):
        if not os.path.exists(f"/sys/class/net/{host}"):
            raise ConfigError(
                f"config.json: linux.netDevices.{host}: no such network device on the host"
            )


def move_devices(pid: int, devices: dict) -> None:
    from pyrunc.network.links import move_devices as move

    move(pid, targets(devices))
