"""Tests for pyrunc.spec: loading, validation messages, round trips and defaults."""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from pyrunc.errors import ConfigError
from pyrunc.spec import model
from pyrunc.spec.converter import (
    load_config,
    load_config_file,
    load_process,
    load_resources,
    unstructure_config,
)
from pyrunc.spec.defaults import default_config

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
SPEC_TESTS = SHARED / "runtime-spec" / "schema" / "test" / "config"

needs_shared = pytest.mark.skipif(
    not SPEC_TESTS.is_dir(), reason=f"runtime-spec test documents not found at {SPEC_TESTS}"
)


def _docs(kind: str) -> list[Path]:
    return sorted((SPEC_TESTS / kind).glob("*.json")) if SPEC_TESTS.is_dir() else []


# --- the spec's own test documents -------------------------------------------------


@needs_shared
@pytest.mark.parametrize("path", _docs("good"), ids=lambda p: p.name)
def test_good_documents_load(path: Path) -> None:
    spec = load_config_file(path)
    assert isinstance(spec, model.Spec)


# What each known bad document gets wrong, as the JSON path the error must name.
BAD_PATHS = {
    "freebsd-vnet-disable.json": "freebsd-vnet-disable.json: freebsd.jail.vnet: ",
    "invalid-json.json": "invalid-json.json: invalid JSON: ",
    "linux-hugepage.json": "linux-hugepage.json: linux.resources.hugepageLimits[0].pageSize: ",
    "linux-netdevice.json": "linux-netdevice.json: linux.netDevices.eth0.name: ",
    "linux-rdma.json": "linux-rdma.json: linux.resources.rdma.mlx5_1.hcaHandles: ",
}


@needs_shared
@pytest.mark.parametrize("path", _docs("bad"), ids=lambda p: p.name)
def test_bad_documents_rejected(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(BAD_PATHS.get(path.name, f"{path.name}: ")), message


@needs_shared
def test_bad_document_messages() -> None:
    def error(name: str) -> str:
        with pytest.raises(ConfigError) as info:
            load_config_file(SPEC_TESTS / "bad" / name)
        return str(info.value)

    assert error("freebsd-vnet-disable.json") == (
        'freebsd-vnet-disable.json: freebsd.jail.vnet: invalid value "disable" (expected one of '
        "inherit, new)"
    )
    assert error("linux-rdma.json") == (
        'linux-rdma.json: linux.resources.rdma.mlx5_1.hcaHandles: expected integer, got "not a '
        'uint32"'
    )
    assert (
        error("linux-netdevice.json")
        == "linux-netdevice.json: linux.netDevices.eth0.name: expected string, got 23"
    )


@needs_shared
def test_spec_example_round_trip() -> None:
    original = json.loads((SPEC_TESTS / "good" / "spec-example.json").read_text())
    out = unstructure_config(load_config(copy.deepcopy(original)))
    # The example has a stray process-level property inside resources; unknown
    # properties are ignored, so it cannot survive the trip.
    del original["linux"]["resources"]["oomScoreAdj"]
    assert out == original


@needs_shared
@pytest.mark.parametrize(
    "name", ["minimal.json", "minimal-for-start.json", "linux-rdma.json", "zos-example.json"]
)
def test_other_round_trips(name: str) -> None:
    original = json.loads((SPEC_TESTS / "good" / name).read_text())
    assert unstructure_config(load_config(copy.deepcopy(original))) == original


# --- exact messages for wrong types, missing properties and bad values --------------

DELETE = object()

BASE: dict[str, Any] = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs"},
    "process": {"cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}},
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
}


def _with(*changes: tuple[str, Any]) -> dict[str, Any]:
    """BASE with each dotted path set to a value (or deleted); numbers index lists."""
    doc = copy.deepcopy(BASE)
    for dotted, value in changes:
        *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
        node: Any = doc
        for part in parents:
            if isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return doc


CASES: list[tuple[dict[str, Any], str]] = [
    # required properties
    (_with(("ociVersion", DELETE)), "ociVersion: required property missing"),
    (_with(("root", DELETE)), "root: required property missing"),
    (_with(("root.path", DELETE)), "root.path: required property missing"),
    (_with(("process.cwd", DELETE)), "process.cwd: required property missing"),
    (_with(("process.user.gid", DELETE)), "process.user.gid: required property missing"),
    (_with(("mounts", [{"type": "tmpfs"}])), "mounts[0].destination: required property missing"),
    (
        _with(("linux.namespaces.1", {"path": "/proc/1/ns/net"})),
        "linux.namespaces[1].type: required property missing",
    ),
    (
        _with(("hooks", {"poststop": [{"args": ["x"]}]})),
        "hooks.poststop[0].path: required property missing",
    ),
    (
        _with(("linux.seccomp", {"syscalls": []})),
        "linux.seccomp.defaultAction: required property missing",
    ),
    (
        _with(("linux.resources", {"hugepageLimits": [{"pageSize": "2MB"}]})),
        "linux.resources.hugepageLimits[0].limit: required property missing",
    ),
    (
        _with(("linux.devices", [{"type": "c", "path": "/dev/x", "minor": 1}])),
        'linux.devices[0].major: required property missing (type is "c")',
    ),
    (
        _with(("linux.uidMappings", [{"containerID": 0, "hostID": 1000}])),
        "linux.uidMappings[0].size: required property missing",
    ),
    (
        _with(
            (
                "mounts",
                [
                    {
                        "destination": "/m",
                        "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                    }
                ],
            )
        ),
        "mounts[0].gidMappings: required property missing (uidMappings is set)",
    ),
    (
        _with(("process.ioPriority", {"priority": 1})),
        "process.ioPriority.class: required property missing",
    ),
    (_with(("linux.personality", {})), "linux.personality.domain: required property missing"),
    # wrong JSON types, never coerced
    (
        _with(("linux.resources", {"memory": {"limit": "1g"}})),
        'linux.resources.memory.limit: expected integer, got "1g"',
    ),
    (_with(("process.args", ["sh", "-c", 5])), "process.args[2]: expected string, got 5"),
    (_with(("process.args", "sh")), 'process.args: expected array, got "sh"'),
    (_with(("process.user.uid", True)), "process.user.uid: expected integer, got true"),
    (_with(("process.user.uid", 1.0)), "process.user.uid: expected integer, got 1.0"),
    (_with(("process.user.uid", "0")), 'process.user.uid: expected integer, got "0"'),
    (_with(("process.terminal", 1)), "process.terminal: expected boolean, got 1"),
    (_with(("process.terminal", "true")), 'process.terminal: expected boolean, got "true"'),
    (_with(("hostname", 7)), "hostname: expected string, got 7"),
    (_with(("root", "rootfs")), 'root: expected object, got "rootfs"'),
    (_with(("root.path", None)), "root.path: expected string, got null"),
    (_with(("mounts", {"destination": "/x"})), "mounts: expected array, got object"),
    (_with(("annotations", {"a": 1})), "annotations.a: expected string, got 1"),
    (
        _with(("linux.sysctl", {"net.ipv4.ip_forward": 1})),
        'linux.sysctl["net.ipv4.ip_forward"]: expected string, got 1',
    ),
    (_with(("solaris", [])), "solaris: expected object, got array"),
    # integer ranges
    (
        _with(("process.user.uid", -1)),
        "process.user.uid: expected uint32 (0 to 4294967295), got -1",
    ),
    (
        _with(("process.user.gid", 2**32)),
        "process.user.gid: expected uint32 (0 to 4294967295), got 4294967296",
    ),
    (
        _with(("linux.resources", {"rdma": {"mlx5_1": {"hcaHandles": 2**32}}})),
        "linux.resources.rdma.mlx5_1.hcaHandles: expected uint32 (0 to 4294967295), got 4294967296",
    ),
    (
        _with(("linux.resources", {"memory": {"limit": 2**63}})),
        (
            "linux.resources.memory.limit: expected int64 (-9223372036854775808 to "
            "9223372036854775807), got 9223372036854775808"
        ),
    ),
    (
        _with(("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 1}])),
        "process.rlimits[0].soft: expected uint64 (0 to 18446744073709551615), got -1",
    ),
    (
        _with(("linux.resources", {"blockIO": {"weight": 65536}})),
        "linux.resources.blockIO.weight: expected uint16 (0 to 65535), got 65536",
    ),
    (
        _with(("process.consoleSize", {"height": -1, "width": 80})),
        "process.consoleSize.height: expected uint64 (0 to 18446744073709551615), got -1",
    ),
    (
        _with(("hooks", {"poststart": [{"path": "/bin/true", "timeout": 0}]})),
        "hooks.poststart[0].timeout: must be greater than zero, got 0",
    ),
    (_with(("process.oomScoreAdj", 1001)), "process.oomScoreAdj: expected -1000 to 1000, got 1001"),
    (
        _with(("process.ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 8})),
        "process.ioPriority.priority: expected 0 to 7, got 8",
    ),
    (
        _with(("linux.resources", {"memory": {"swappiness": 101}})),
        "linux.resources.memory.swappiness: expected 0 to 100, got 101",
    ),
    (
        _with(("process.scheduler", {"policy": "SCHED_OTHER", "nice": 2**31})),
        "process.scheduler.nice: expected int32 (-2147483648 to 2147483647), got 2147483648",
    ),
    # enumerations
    (
        _with(("linux.namespaces.1.type", "foo")),
        (
            'linux.namespaces[1].type: invalid value "foo" (expected one of cgroup, ipc, mount, '
            "network, pid, time, user, uts)"
        ),
    ),
    (
        _with(("linux.namespaces.1.type", "pid")),
        'linux.namespaces[1].type: duplicate namespace type "pid"',
    ),
    (_with(("linux.namespaces.0.type", 3)), "linux.namespaces[0].type: expected string, got 3"),
    (
        _with(("linux.rootfsPropagation", "bogus")),
        (
            'linux.rootfsPropagation: invalid value "bogus" (expected one of private, rprivate, '
            "rshared, rslave, runbindable, shared, slave, unbindable)"
        ),
    ),
    (
        _with(
            (
                "linux.seccomp",
                {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
            )
        ),
        (
            'linux.seccomp.architectures[0]: invalid value "SCMP_ARCH_Z80" (expected one of '
            "SCMP_ARCH_AARCH64, SCMP_ARCH_ARM, SCMP_ARCH_LOONGARCH64, SCMP_ARCH_M68K, "
            "SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPSEL, "
            "SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PARISC, SCMP_ARCH_PARISC64, "
            "SCMP_ARCH_PPC, SCMP_ARCH_PPC64, SCMP_ARCH_PPC64LE, SCMP_ARCH_RISCV64, "
            "SCMP_ARCH_S390, SCMP_ARCH_S390X, SCMP_ARCH_SH, SCMP_ARCH_SHEB, SCMP_ARCH_X32, "
            "SCMP_ARCH_X86, SCMP_ARCH_X86_64)"
        ),
    ),
    (
        _with(("linux.seccomp", {"defaultAction": "SCMP_ACT_DENY"})),
        (
            'linux.seccomp.defaultAction: invalid value "SCMP_ACT_DENY" (expected one of '
            "SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, "
            "SCMP_ACT_KILL_THREAD, SCMP_ACT_LOG, SCMP_ACT_NOTIFY, SCMP_ACT_TRACE, SCMP_ACT_TRAP)"
        ),
    ),
    (
        _with(
            (
                "linux.seccomp",
                {
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [
                        {
                            "names": ["kill"],
                            "action": "SCMP_ACT_ERRNO",
                            "args": [{"index": 0, "value": 9, "op": "EQ"}],
                        }
                    ],
                },
            )
        ),
        (
            'linux.seccomp.syscalls[0].args[0].op: invalid value "EQ" (expected one of '
            "SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_LE, SCMP_CMP_LT, "
            "SCMP_CMP_MASKED_EQ, SCMP_CMP_NE)"
        ),
    ),
    (
        _with(
            (
                "linux.seccomp",
                {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_X"]},
            )
        ),
        (
            'linux.seccomp.flags[0]: invalid value "SECCOMP_FILTER_FLAG_X" (expected one of '
            "SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_TSYNC, "
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)"
        ),
    ),
    (
        _with(("linux.devices", [{"type": "x", "path": "/dev/x"}])),
        'linux.devices[0].type: invalid value "x" (expected one of b, c, p, u)',
    ),
    (
        _with(("linux.resources", {"devices": [{"allow": True, "type": "u"}]})),
        'linux.resources.devices[0].type: invalid value "u" (expected one of a, b, c)',
    ),
    (
        _with(("linux.resources", {"devices": [{"allow": True, "access": "rwx"}]})),
        (
            'linux.resources.devices[0].access: invalid value "rwx" (must be a combination of r, '
            "w and m)"
        ),
    ),
    (
        _with(("process.ioPriority", {"class": "IOPRIO_CLASS_NONE"})),
        (
            'process.ioPriority.class: invalid value "IOPRIO_CLASS_NONE" (expected one of '
            "IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE, IOPRIO_CLASS_RT)"
        ),
    ),
    (
        _with(("process.scheduler", {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]})),
        (
            'process.scheduler.flags[0]: invalid value "SCHED_FLAG_X" (expected one of '
            "SCHED_FLAG_DL_OVERRUN, SCHED_FLAG_KEEP_PARAMS, SCHED_FLAG_KEEP_POLICY, "
            "SCHED_FLAG_RECLAIM, SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_UTIL_CLAMP_MAX, "
            "SCHED_FLAG_UTIL_CLAMP_MIN)"
        ),
    ),
    (
        _with(("linux.memoryPolicy", {"mode": "MPOL_SOMETIMES"})),
        (
            'linux.memoryPolicy.mode: invalid value "MPOL_SOMETIMES" (expected one of MPOL_BIND, '
            "MPOL_DEFAULT, MPOL_INTERLEAVE, MPOL_LOCAL, MPOL_PREFERRED, MPOL_PREFERRED_MANY, "
            "MPOL_WEIGHTED_INTERLEAVE)"
        ),
    ),
    (
        _with(("linux.memoryPolicy", {"mode": "MPOL_BIND", "flags": ["MPOL_F_X"]})),
        (
            'linux.memoryPolicy.flags[0]: invalid value "MPOL_F_X" (expected one of '
            "MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES)"
        ),
    ),
    (
        _with(("linux.personality", {"domain": "LINUX64"})),
        'linux.personality.domain: invalid value "LINUX64" (expected one of LINUX, LINUX32)',
    ),
    # string shapes
    (
        _with(("ociVersion", "1.0")),
        'ociVersion: invalid value "1.0" (must be a SemVer 2.0.0 version such as 1.3.0)',
    ),
    (
        _with(("ociVersion", "v1.0.0")),
        'ociVersion: invalid value "v1.0.0" (must be a SemVer 2.0.0 version such as 1.3.0)',
    ),
    (
        _with(("ociVersion", "01.0.0")),
        'ociVersion: invalid value "01.0.0" (must be a SemVer 2.0.0 version such as 1.3.0)',
    ),
    (_with(("ociVersion", 1)), "ociVersion: expected string, got 1"),
    (
        _with(("process.cwd", "root")),
        'process.cwd: invalid value "root" (must be an absolute path)',
    ),
    (
        _with(("hooks", {"prestart": [{"path": "hook.sh"}]})),
        'hooks.prestart[0].path: invalid value "hook.sh" (must be an absolute path)',
    ),
    (
        _with(("linux.namespaces.0.path", "proc/1/ns/pid")),
        'linux.namespaces[0].path: invalid value "proc/1/ns/pid" (must be an absolute path)',
    ),
    (
        _with(("linux.maskedPaths", ["/proc/kcore", "proc/keys"])),
        'linux.maskedPaths[1]: invalid value "proc/keys" (must be an absolute path)',
    ),
    (
        _with(("process.capabilities", {"bounding": ["CAP_KILL", "chown"]})),
        (
            'process.capabilities.bounding[1]: invalid value "chown" (must be a capability name '
            "such as CAP_CHOWN)"
        ),
    ),
    (
        _with(("process.rlimits", [{"type": "NOFILE", "soft": 1, "hard": 1}])),
        (
            'process.rlimits[0].type: invalid value "NOFILE" (must be an rlimit name such as '
            "RLIMIT_NOFILE)"
        ),
    ),
    (
        _with(("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2)),
        'process.rlimits[1].type: duplicate rlimit type "RLIMIT_NOFILE"',
    ),
    (
        _with(("linux.resources", {"hugepageLimits": [{"pageSize": "2M", "limit": 1}]})),
        (
            'linux.resources.hugepageLimits[0].pageSize: invalid value "2M" (must be a page size '
            "such as 64KB, 2MB or 1GB)"
        ),
    ),
    (
        _with(("process.execCPUAffinity", {"final": "all"})),
        'process.execCPUAffinity.final: invalid value "all" (must be a CPU list such as 0-3,7)',
    ),
    (
        _with(("linux.intelRdt", {"memBwSchema": "L3:0=1"})),
        (
            'linux.intelRdt.memBwSchema: invalid value "L3:0=1" (must start with MB: and be a '
            "single line)"
        ),
    ),
    (
        _with(("linux.intelRdt", {"schemata": ["L3:0=1\nMB:0=2"]})),
        'linux.intelRdt.schemata[0]: invalid value "L3:0=1\\nMB:0=2" (must be a single line)',
    ),
    # rules across fields
    (_with(("annotations", {"": "x"})), 'annotations[""]: keys must not be empty'),
    (
        _with(
            (
                "linux.seccomp",
                {
                    "defaultAction": "SCMP_ACT_ALLOW",
                    "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}],
                },
            )
        ),
        "linux.seccomp.syscalls[0].names: must contain at least one entry",
    ),
    (
        _with(("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"})),
        "linux.seccomp.listenerMetadata: must not be set without listenerPath",
    ),
    (
        _with(("linux.resources", {"rdma": {"rxe3": {}}})),
        "linux.resources.rdma.rxe3: at least one of hcaHandles or hcaObjects is required",
    ),
    (
        _with(("linux.resources", {"blockIO": {"weightDevice": [{"major": 8, "minor": 0}]}})),
        "linux.resources.blockIO.weightDevice[0]: at least one of weight or leafWeight is required",
    ),
    (
        _with(("linux.timeOffsets", {"realtime": {"secs": 1}})),
        (
            'linux.timeOffsets.realtime: invalid clock "realtime" (expected one of boottime, '
            "monotonic)"
        ),
    ),
]


@pytest.mark.parametrize(("doc", "expected"), CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_error_messages(doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(json.dumps(doc))
    assert str(info.value) == f"config.json: {expected}"


def test_base_document_is_valid() -> None:
    load_config(BASE)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            "{]",
            (
                "config.json: invalid JSON: Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1)"
            ),
        ),
        ("", "config.json: invalid JSON: Expecting value: line 1 column 1 (char 0)"),
        ('{"ociVersion": NaN}', "config.json: invalid JSON: NaN is not valid JSON"),
        ("[]", "config.json: expected object, got array"),
        ('"config"', 'config.json: expected object, got "config"'),
        ("null", "config.json: expected object, got null"),
    ],
)
def test_document_level_errors(data: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(data)
    assert str(info.value) == expected


def test_source_name_prefixes_message() -> None:
    with pytest.raises(
        ConfigError, match=r"^bundle/config\.json: ociVersion: required property missing$"
    ):
        load_config(b'{"root": {"path": "r"}}', source="bundle/config.json")


# --- leniency the spec requires ------------------------------------------------------


def test_unknown_properties_ignored() -> None:
    doc = _with(
        ("futureTopLevel", {"anything": [1, 2]}),
        ("root.futureRoot", True),
        ("process.futureProcess", "x"),
        ("process.user.futureUser", 1),
        ("linux.futureLinux", None),
        ("linux.namespaces.0.futureNamespace", {}),
        ("linux.resources", {"memory": {"limit": 1, "futureMemory": "y"}, "futureController": {}}),
    )
    spec = load_config(doc)
    assert spec.linux is not None and spec.linux.resources is not None
    assert spec.linux.resources.memory == model.LinuxMemory(limit=1)
    assert "futureTopLevel" not in unstructure_config(spec)


def test_null_means_absent_for_optional_properties() -> None:
    spec = load_config(_with(("hostname", None), ("linux", None), ("process.env", None)))
    assert spec.hostname is None and spec.linux is None
    assert spec.process is not None and spec.process.env == ()


def test_relative_mount_destination_allowed() -> None:
    spec = load_config(
        _with(("mounts", [{"destination": "data", "type": "tmpfs", "source": "tmpfs"}]))
    )
    assert spec.mounts[0].destination == "data"


def test_recursive_rootfs_propagation_accepted() -> None:
    spec = load_config(_with(("linux.rootfsPropagation", "rslave")))
    assert spec.linux is not None and spec.linux.rootfs_propagation == "rslave"


def test_fifo_device_needs_no_numbers() -> None:
    load_config(_with(("linux.devices", [{"type": "p", "path": "/dev/fifo"}])))


# --- the model ------------------------------------------------------------------------


def test_model_values() -> None:
    spec = load_config(
        _with(
            ("process.ioPriority", {"class": "IOPRIO_CLASS_RT", "priority": 2}),
            (
                "linux.resources",
                {
                    "cpu": {"quota": -1},
                    "blockIO": {"throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 5}]},
                },
            ),
        )
    )
    assert spec.oci_version == "1.3.0"
    assert spec.root == model.Root(path="rootfs")
    assert spec.process is not None
    assert spec.process.args == ("sh",)
    assert spec.process.io_priority == model.LinuxIOPriority(class_="IOPRIO_CLASS_RT", priority=2)
    assert spec.linux is not None and spec.linux.resources is not None
    assert spec.linux.namespaces[1] == model.LinuxNamespace(type="mount")
    assert spec.linux.resources.cpu == model.LinuxCPU(quota=-1)
    assert spec.linux.resources.block_io is not None
    assert spec.linux.resources.block_io.throttle_read_iops_device == (
        model.LinuxThrottleDevice(major=8, minor=0, rate=5),
    )
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.hostname = "x"  # type: ignore[misc]


def test_unstructure_uses_json_names_and_omits_absent() -> None:
    spec = model.Spec(
        oci_version=model.SemVer("1.3.0"),
        root=model.Root(path="rootfs"),
        linux=model.Linux(
            uid_mappings=(
                model.LinuxIDMapping(
                    container_id=model.Uint32(0), host_id=model.Uint32(1000), size=model.Uint32(1)
                ),
            ),
            resources=model.LinuxResources(network=model.LinuxNetwork(class_id=model.Uint32(7))),
        ),
    )
    assert unstructure_config(spec) == {
        "ociVersion": "1.3.0",
        "root": {"path": "rootfs"},
        "linux": {
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "resources": {"network": {"classID": 7}},
        },
    }


def test_load_resources() -> None:
    resources = load_resources(
        b'{"memory": {"limit": 1048576, "swap": -1}, "pids": {"limit": 0}, "unknown": 1}', "update"
    )
    assert resources.memory == model.LinuxMemory(limit=1048576, swap=-1)
    assert resources.pids == model.LinuxPids(limit=0)
    with pytest.raises(ConfigError) as info:
        load_resources('{"cpu": {"shares": "1024"}}', "update")
    assert str(info.value) == 'update: cpu.shares: expected integer, got "1024"'


def test_load_process() -> None:
    process = load_process('{"cwd": "/", "args": ["ls"], "terminal": false}')
    assert process.args == ("ls",) and process.terminal is False
    with pytest.raises(ConfigError, match=r"^process\.json: cwd: required property missing$"):
        load_process("{}")


def test_load_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BASE))
    assert load_config_file(path).root.path == "rootfs"
    path.write_text('{"ociVersion": "1.3.0"}')
    with pytest.raises(ConfigError, match=r"^config\.json: root: required property missing$"):
        load_config_file(str(path))
    with pytest.raises(ConfigError, match=r"^missing\.json: cannot read .*missing\.json: "):
        load_config_file(tmp_path / "missing.json")


# --- defaults ---------------------------------------------------------------------------

# What `runc spec` (runc 1.1.5) writes, re-wrapped to fit the line length.
RUNC_SPEC = """{
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": true,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {
            "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": true
    },
    "root": {"path": "rootfs", "readonly": true},
    "hostname": "runc",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
    ],
    "linux": {
        "resources": {"devices": [{"allow": false, "access": "rwm"}]},
        "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "mount"}],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
            "/sys/firmware", "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    }
}"""


def test_default_config_matches_runc() -> None:
    expected = json.loads(RUNC_SPEC)
    expected["ociVersion"] = "1.3.0"
    config = default_config()
    assert config == expected
    # Same key order too, so the written file reads like runc's.
    assert json.dumps(config) == json.dumps(expected)


def test_default_config_loads_and_round_trips() -> None:
    config = default_config()
    assert unstructure_config(load_config(config)) == config
    assert default_config() is not default_config()


def test_defaults_import_is_cheap() -> None:
    code = (
        "import sys, pyrunc.spec.defaults; sys.exit(bool({'attrs', 'cattrs'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


# --- mutation fuzzing ---------------------------------------------------------------------

JUNK: list[Any] = [
    None,
    0,
    -1,
    1,
    2**32,
    2**64,
    1.5,
    True,
    False,
    "",
    "x",
    "/abs",
    "CAP_KILL",
    "RLIMIT_CORE",
    "2MB",
    [],
    [1],
    ["x"],
    [{}],
    {},
    {"x": 1},
    {"type": "pid"},
]


def _slots(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key-or-index) in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _slots(value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _slots(value)


def _mutate(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        slots = list(_slots(doc))
        if not slots:
            break
        container, key = rng.choice(slots)
        roll = rng.random()
        if roll < 0.6:
            container[key] = copy.deepcopy(rng.choice(JUNK))
        elif roll < 0.8:
            del container[key]
        elif isinstance(container, dict):
            container[rng.choice(["x", "type", "path", "limit", ""])] = copy.deepcopy(
                rng.choice(JUNK)
            )
        else:
            container.append(copy.deepcopy(rng.choice(JUNK)))
    return doc


@needs_shared
def test_random_mutations_load_or_raise_config_error() -> None:
    original = json.loads((SPEC_TESTS / "good" / "spec-example.json").read_text())
    rng = random.Random(1234)
    outcomes = {"loaded": 0, "rejected": 0}
    for _ in range(400):
        doc = _mutate(original, rng)
        try:
            spec = load_config(json.dumps(doc))
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith("config.json: ") and "\n" not in message, message
            outcomes["rejected"] += 1
        else:
            assert isinstance(spec, model.Spec)
            unstructure_config(spec)
            outcomes["loaded"] += 1
    assert outcomes["loaded"] > 20 and outcomes["rejected"] > 20, outcomes
