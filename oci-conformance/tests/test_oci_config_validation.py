"""Configs the runtime must refuse, and the unknown things it must ignore.

config.md#valid-values: "Runtimes MUST generate an error when invalid or unsupported values are
encountered." Each case below breaks one REQUIRED property or one MUST about a value and expects
`create` to fail without leaving a container behind. A runtime that accepts the config fails the
requirement the case names (its container is force-deleted afterwards).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from harness import Case, ConsoleSocket

req = pytest.mark.req
Config = dict[str, Any]


def _drop(path: str) -> Callable[[Config, Case], None]:
    """Remove the dotted key PATH (creating nothing)."""

    def mutate(config: Config, case: Case) -> None:
        *parents, last = path.split(".")
        node = config
        for p in parents:
            node = node[p]
        node.pop(last, None)

    return mutate


def _set(path: str, value: Any) -> Callable[[Config, Case], None]:
    def mutate(config: Config, case: Case) -> None:
        *parents, last = path.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    return mutate


def _linux(key: str, value: Any) -> Callable[[Config, Case], None]:
    return _set(f"linux.{key}", value)


def _resources(key: str, value: Any) -> Callable[[Config, Case], None]:
    return _set(f"linux.resources.{key}", value)


def _userns(mapping: dict[str, int]) -> Callable[[Config, Case], None]:
    def mutate(config: Config, case: Case) -> None:
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [mapping]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    return mutate


def _rootfs_file(config: Config, case: Case) -> None:
    plain = case.dir / "rootfs-file"
    plain.write_text("")
    config["root"]["path"] = str(plain)


def _mount(extra: dict[str, Any]) -> Callable[[Config, Case], None]:
    def mutate(config: Config, case: Case) -> None:
        m = {"destination": "/mnt/a", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
        m.update(extra)
        for k in [k for k, v in m.items() if v is None]:
            del m[k]
        config["mounts"].append(m)

    return mutate


def _hook(kind: str, entry: dict[str, Any]) -> Callable[[Config, Case], None]:
    def mutate(config: Config, case: Case) -> None:
        full = {"path": "/bin/true", **entry}
        for k in [k for k, v in full.items() if v is None]:
            del full[k]
        config.setdefault("hooks", {})[kind] = [full]

    return mutate


def _rlimits(entries: list[dict[str, Any]]) -> Callable[[Config, Case], None]:
    return _set("process.rlimits", entries)


def _seccomp(**overrides: Any) -> Callable[[Config, Case], None]:
    def mutate(config: Config, case: Case) -> None:
        seccomp: dict[str, Any] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
        }
        for key, value in overrides.items():
            if key.startswith("rule_"):
                rule = seccomp["syscalls"][0]
                if value is None:
                    rule.pop(key[5:], None)
                else:
                    rule[key[5:]] = value
            elif value is None:
                seccomp.pop(key, None)
            else:
                seccomp[key] = value
        config["linux"]["seccomp"] = seccomp

    return mutate


ALL_RWM = {"allow": False, "access": "rwm"}
# name -> (requirement ids, mutation)
INVALID: dict[str, tuple[tuple[str, ...], Callable[[Config, Case], None]]] = {
    # config.md
    "ociVersion-missing": (("config.md#specification-version-1",), _drop("ociVersion")),
    "ociVersion-not-semver": (("config.md#specification-version-1",), _set("ociVersion", "one")),
    "root-missing": (("config.md#root-3",), _drop("root")),
    "root.path-missing": (("config.md#root-4",), _drop("root.path")),
    "root.path-nonexistent": (("config.md#root-6",), _set("root.path", "/nonexistent/rootfs")),
    "root.path-is-a-file": (("config.md#root-6",), _rootfs_file),
    "mount.destination-missing": (("config.md#mounts-2",), _mount({"destination": None})),
    "mount.uidMappings-alone": (
        ("config.md#posix-platform-mounts-1",),
        _mount({"uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "options": ["size=1m", "idmap"]}),
    ),  # fmt: skip
    "mount.gidMappings-alone": (
        ("config.md#posix-platform-mounts-2",),
        _mount({"gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "options": ["size=1m", "idmap"]}),
    ),  # fmt: skip
    "process.consoleSize.height-missing": (
        ("config.md#process-3",),
        _set("process.consoleSize", {"width": 80}),
    ),
    "process.consoleSize.width-missing": (
        ("config.md#process-4",),
        _set("process.consoleSize", {"height": 25}),
    ),
    "process.cwd-missing": (("config.md#process-5",), _drop("process.cwd")),
    "process.cwd-relative": (("config.md#process-6",), _set("process.cwd", "conformance")),
    "process.args-empty": (("config.md#process-7",), _set("process.args", [])),
    "process.args-missing": (("config.md#process-7",), _drop("process.args")),
    "rlimit.type-missing": (("config.md#posix-process-1",), _rlimits([{"soft": 1, "hard": 1}])),
    "rlimit.type-unknown": (
        ("config.md#posix-process-2", "config.md#valid-values-1"),
        _rlimits([{"type": "RLIMIT_NO_SUCH_LIMIT", "soft": 1, "hard": 1}]),
    ),
    "rlimit.soft-missing": (
        ("config.md#posix-process-4",),
        _rlimits([{"type": "RLIMIT_NOFILE", "hard": 100}]),
    ),
    "rlimit.hard-missing": (
        ("config.md#posix-process-6",),
        _rlimits([{"type": "RLIMIT_NOFILE", "soft": 100}]),
    ),
    "rlimit-duplicate": (
        ("config.md#posix-process-8",),
        _rlimits([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
                  {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]),
    ),  # fmt: skip
    "scheduler.policy-missing": (
        ("config.md#linux-process-4",),
        _set("process.scheduler", {"nice": 1}),
    ),
    "ioPriority.class-missing": (
        ("config.md#linux-process-5",),
        _set("process.ioPriority", {"priority": 4}),
    ),
    "ioPriority.priority-missing": (
        ("config.md#linux-process-6",),
        _set("process.ioPriority", {"class": "IOPRIO_CLASS_BE"}),
    ),
    "user.uid-missing": (("config.md#posix-platform-user-1",), _set("process.user", {"gid": 0})),
    "user.gid-missing": (("config.md#posix-platform-user-2",), _set("process.user", {"uid": 0})),
    "prestart.path-missing": (
        ("config.md#posix-platform-hooks-1",),
        _hook("prestart", {"path": None, "args": ["true"]}),
    ),
    "prestart.path-relative": (
        ("config.md#posix-platform-hooks-2",),
        _hook("prestart", {"path": "bin/true"}),
    ),
    "prestart.timeout-zero": (
        ("config.md#posix-platform-hooks-3",),
        _hook("prestart", {"timeout": 0}),
    ),
    "prestart.timeout-negative": (
        ("config.md#posix-platform-hooks-3",),
        _hook("prestart", {"timeout": -1}),
    ),
    "createRuntime.path-missing": (
        ("config.md#posix-platform-hooks-6",),
        _hook("createRuntime", {"path": None, "args": ["true"]}),
    ),
    "createRuntime.path-relative": (
        ("config.md#posix-platform-hooks-7",),
        _hook("createRuntime", {"path": "bin/true"}),
    ),
    "createRuntime.timeout-zero": (
        ("config.md#posix-platform-hooks-8",),
        _hook("createRuntime", {"timeout": 0}),
    ),
    "annotations-not-a-map": (("config.md#annotations-1",), _set("annotations", ["a", "b"])),
    "annotations-empty-key": (("config.md#annotations-3",), _set("annotations", {"": "x"})),
    "annotations-value-not-string": (
        ("config.md#annotations-15",),
        _set("annotations", {"com.example.n": 1}),
    ),
    # config-linux.md
    "namespace.type-missing": (
        ("config-linux.md#namespaces-1",),
        _linux("namespaces", [{"type": "mount"}, {"path": "/proc/self/ns/net"}]),
    ),
    "namespace.type-unknown": (
        ("config.md#valid-values-1",),
        _linux("namespaces", [{"type": "mount"}, {"type": "no-such-namespace"}]),
    ),
    "idmapping.containerID-missing": (
        ("config-linux.md#user-namespace-mappings-1",),
        _userns({"hostID": 100000, "size": 65536}),
    ),
    "idmapping.hostID-missing": (
        ("config-linux.md#user-namespace-mappings-2",),
        _userns({"containerID": 0, "size": 65536}),
    ),
    "idmapping.size-missing": (
        ("config-linux.md#user-namespace-mappings-3",),
        _userns({"containerID": 0, "hostID": 100000}),
    ),
    "device.type-missing": (
        ("config-linux.md#devices-2",),
        _linux("devices", [{"path": "/dev/oc", "major": 1, "minor": 3}]),
    ),
    "device.type-unknown": (
        ("config.md#valid-values-1",),
        _linux("devices", [{"path": "/dev/oc", "type": "x", "major": 1, "minor": 3}]),
    ),
    "device.path-missing": (
        ("config-linux.md#devices-3",),
        _linux("devices", [{"type": "c", "major": 1, "minor": 3}]),
    ),
    "device.major-missing": (
        ("config-linux.md#devices-5",),
        _linux("devices", [{"path": "/dev/oc", "type": "c", "minor": 3}]),
    ),
    "device.minor-missing": (
        ("config-linux.md#devices-5",),
        _linux("devices", [{"path": "/dev/oc", "type": "c", "major": 1}]),
    ),
    "cgroup-device.allow-missing": (
        ("config-linux.md#allowed-device-list-2",),
        _resources("devices", [ALL_RWM, {"type": "c", "major": 1, "minor": 3, "access": "r"}]),
    ),
    "weightDevice.major-missing": (
        ("config-linux.md#block-io-1",),
        _resources("blockIO", {"weightDevice": [{"minor": 0, "weight": 100}]}),
    ),
    "weightDevice.no-weight": (
        ("config-linux.md#block-io-2",),
        _resources("blockIO", {"weightDevice": [{"major": 7, "minor": 0}]}),
    ),
    "throttleReadBpsDevice.minor-missing": (
        ("config-linux.md#block-io-3",),
        _resources("blockIO", {"throttleReadBpsDevice": [{"major": 7, "rate": 1000}]}),
    ),
    "throttleReadBpsDevice.rate-missing": (
        ("config-linux.md#block-io-4",),
        _resources("blockIO", {"throttleReadBpsDevice": [{"major": 7, "minor": 0}]}),
    ),
    "throttleReadIOPSDevice.major-missing": (
        ("config-linux.md#block-io-5",),
        _resources("blockIO", {"throttleReadIOPSDevice": [{"minor": 0, "rate": 10}]}),
    ),
    "throttleReadIOPSDevice.rate-missing": (
        ("config-linux.md#block-io-6",),
        _resources("blockIO", {"throttleReadIOPSDevice": [{"major": 7, "minor": 0}]}),
    ),
    "hugepageLimit.pageSize-missing": (
        ("config-linux.md#huge-page-limits-1",),
        _resources("hugepageLimits", [{"limit": 2097152}]),
    ),
    "hugepageLimit.limit-missing": (
        ("config-linux.md#huge-page-limits-2",),
        _resources("hugepageLimits", [{"pageSize": "2MB"}]),
    ),
    "network.priority.name-missing": (
        ("config-linux.md#network-1",),
        _resources("network", {"priorities": [{"priority": 1}]}),
    ),
    "network.priority.priority-missing": (
        ("config-linux.md#network-2",),
        _resources("network", {"priorities": [{"name": "lo"}]}),
    ),
    "rdma-entry-empty": (("config-linux.md#rdma-1",), _resources("rdma", {"mlx5_1": {}})),
    "memoryPolicy.mode-missing": (
        ("config-linux.md#memory-policy-1",),
        _linux("memoryPolicy", {"nodes": "0"}),
    ),
    "seccomp.defaultAction-missing": (
        ("config-linux.md#seccomp-1",),
        _seccomp(defaultAction=None),
    ),
    "seccomp.defaultAction-unknown": (
        ("config.md#valid-values-1",),
        _seccomp(defaultAction="SCMP_ACT_NO_SUCH_ACTION"),
    ),
    "seccomp.listenerMetadata-without-path": (
        ("config-linux.md#seccomp-8",),
        _seccomp(listenerMetadata="meta"),
    ),
    "seccomp.names-missing": (("config-linux.md#seccomp-9",), _seccomp(rule_names=None)),
    "seccomp.names-empty": (("config-linux.md#seccomp-10",), _seccomp(rule_names=[])),
    "seccomp.action-missing": (("config-linux.md#seccomp-11",), _seccomp(rule_action=None)),
    "seccomp.arg.index-missing": (
        ("config-linux.md#seccomp-13",),
        _seccomp(rule_args=[{"value": 1, "op": "SCMP_CMP_EQ"}]),
    ),
    "seccomp.arg.value-missing": (
        ("config-linux.md#seccomp-14",),
        _seccomp(rule_args=[{"index": 0, "op": "SCMP_CMP_EQ"}]),
    ),
    "seccomp.arg.op-missing": (
        ("config-linux.md#seccomp-15",),
        _seccomp(rule_args=[{"index": 0, "value": 1}]),
    ),
    "maskedPaths-relative": (
        ("config-linux.md#masked-paths-1",),
        _linux("maskedPaths", ["proc/kcore"]),
    ),
    "readonlyPaths-relative": (
        ("config-linux.md#readonly-paths-1",),
        _linux("readonlyPaths", ["proc/sys"]),
    ),
    "personality.domain-missing": (
        ("config-linux.md#personality-1",),
        _linux("personality", {"flags": []}),
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=req(*ids)) for name, (ids, _) in INVALID.items()]
)
def test_invalid_config_rejected(case: Case, name: str) -> None:
    """create fails, and no container is left behind."""
    _, mutate = INVALID[name]
    case.set_args("/bin/true")
    mutate(case.config, case)
    extra: list[str] = []
    if name.startswith("process.consoleSize"):
        # consoleSize only matters with a terminal, which needs a console socket
        console = ConsoleSocket(case.dir / "console.sock")
        case.cleanups.append(console.close)
        case.config["process"]["terminal"] = True
        extra = ["--console-socket", str(case.dir / "console.sock")]
    cid, res = case.create(extra=extra)
    assert not res.ok, f"create accepted the invalid config ({name})"
    assert case.rt.status(cid) is None, "the failed create left a container"


@req("config.md#extensibility-1", "config.md#annotations-14")
def test_unknown_properties_ignored(case: Case) -> None:
    """Unknown properties (top level, process, linux, a mount) and annotation keys are ignored."""
    case.config["org.example.unknown"] = {"x": 1}
    case.config["process"]["orgExampleUnknown"] = True
    case.config["linux"]["orgExampleUnknown"] = [1, 2]
    case.config["mounts"][0]["orgExampleUnknown"] = "y"
    case.config["annotations"] = {"com.example.unknown-key": "value", "org.example.empty": ""}
    case.set_args("/bin/true")
    cid, res = case.create()
    assert res.ok, f"create refused a config with unknown properties: {res}"
    case.must_start(cid)
    assert case.wait_stopped(cid) == "stopped"


@req("config.md#linux-process-1")
def test_unknown_capability_is_reported(case: Case) -> None:
    """A capability the kernel does not know is logged as a warning (or refused), not dropped
    silently: the run either fails naming it, or succeeds with it on stderr or in the log."""
    bogus = "CAP_OCI_CONFORMANCE_BOGUS"
    for cset in ("bounding", "effective", "permitted"):
        case.config["process"]["capabilities"][cset].append(bogus)
    case.set_args("/bin/true")
    log = case.dir / "runtime.log"
    case.write_config()
    cid = case.new_id()
    res = case.rt("--log", str(log), "create", "--bundle", str(case.bundle), cid)
    logged = res.err + (log.read_text() if log.exists() else "")
    assert bogus in logged, (
        f"create {'succeeded' if res.ok else 'failed'} without naming {bogus} "
        f"(stderr {res.err.strip()[:200]!r})"
    )
