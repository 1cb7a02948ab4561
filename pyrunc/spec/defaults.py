"""The config.json that `pyrunc spec` writes.

Plain dicts only, so `pyrunc spec` needs neither attrs nor cattrs.  The
content matches what runc writes, so tools and tutorials written against
`runc spec` keep working; only `ociVersion` names the spec version pyrunc
implements.
"""

from __future__ import annotations

from typing import Any

OCI_VERSION = "1.3.0"

_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_config() -> dict[str, Any]:
    """A fresh dict each call, so callers (e.g. a rootless variant) may edit it."""
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(_DEFAULT_CAPS),
                "effective": list(_DEFAULT_CAPS),
                "permitted": list(_DEFAULT_CAPS),
                "ambient": list(_DEFAULT_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }


def rootless_config(uid: int, gid: int) -> dict[str, Any]:
    """`spec --rootless`: the default config made runnable by an unprivileged user, as runc
    makes it (libcontainer/specconv ToRootless).

    A new user namespace mapping the caller's own uid and gid to 0 (the one mapping an
    unprivileged process may write itself); no network namespace (one without a veth, that the
    user could not make, would leave the container offline); /sys bound from the host, since
    sysfs can only be mounted by the owner of the network namespace; no uid=/gid= mount options
    (gid 5 is not mapped); no cgroup resources (the user may not write the host's cgroups).
    """
    config = default_config()
    linux = config["linux"]
    linux["namespaces"] = [
        ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")
    ] + [{"type": "user"}]
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    linux.pop("resources", None)
    mounts = []
    for mount in config["mounts"]:
        if mount["destination"].rstrip("/") == "/sys":
            mount = {
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
            }
        elif "options" in mount:
            mount["options"] = [
                o for o in mount["options"] if not o.startswith(("uid=", "gid="))
            ]
        mounts.append(mount)
    config["mounts"] = mounts
    # runc orders the keys of linux as its Go struct does: the mappings come first
    config["linux"] = {
        "uidMappings": linux.pop("uidMappings"),
        "gidMappings": linux.pop("gidMappings"),
        **linux,
    }
    return config
