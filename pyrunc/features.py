"""The `features` document (features.md, features-linux.md): only what pyrunc really does."""

from __future__ import annotations

from pyrunc import SPEC_VERSION, __version__, seccomp
from pyrunc.capabilities import CAPABILITIES
from pyrunc.hooks import KINDS
from pyrunc.namespaces import FLAGS
from pyrunc.rootfs import EXTENSIONS, FLAG_OPTIONS, PROPAGATION, RECURSIVE_OPTIONS


def features() -> dict:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(KINDS),
        "mountOptions": sorted(
            set(FLAG_OPTIONS) | set(PROPAGATION) | set(RECURSIVE_OPTIONS) | set(EXTENSIONS)
            | {"idmap", "ridmap"}
        ),
        "linux": {
            "namespaces": sorted(FLAGS),
            "capabilities": sorted("CAP_" + name for name in CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "seccomp": {
                "enabled": True,
                "actions": sorted(seccomp.ACTIONS),
                "operators": sorted(seccomp.OPERATORS),
                "archs": ["SCMP_ARCH_" + a for a in seccomp.ARCHES],
                "knownFlags": sorted(seccomp.FLAGS),
                "supportedFlags": sorted(seccomp.FLAGS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},
        },
        "annotations": {"org.pyrunc.version": __version__},
    }
