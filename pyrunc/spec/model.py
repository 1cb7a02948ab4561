"""The OCI runtime-spec v1.3.0 container configuration as immutable values.

The classes mirror config.md and config-linux.md one object per class so the
rest of pyrunc can rely on types instead of re-checking raw JSON.  They know
nothing about JSON: names, parsing and validation live in
`pyrunc.spec.converter` (and in `pyrunc.spec.compiled`, generated from this
module by `pyrunc.spec.codegen` for the runtime's hot path).  Constrained
scalars are `NewType`s and `Literal`s so the constraint is visible in the
annotation; the converter enforces them.

Optional scalars default to None (absent), never to the spec's default value,
so that writing a loaded config back out reproduces what was read.  Lists
default to an empty tuple and maps to an empty dict wherever the spec gives
absence and emptiness the same meaning.
"""

from __future__ import annotations

from typing import Any, Literal, NewType

import attrs

# Integer widths from the spec; the converter checks the ranges.
Int32 = NewType("Int32", int)
Int64 = NewType("Int64", int)
Uint8 = NewType("Uint8", int)
Uint16 = NewType("Uint16", int)
Uint32 = NewType("Uint32", int)
Uint64 = NewType("Uint64", int)
FileMode = NewType("FileMode", int)  # permission bits only, 0..0o777
OomScoreAdj = NewType("OomScoreAdj", int)  # the kernel's -1000..1000
IOPriorityLevel = NewType("IOPriorityLevel", int)  # 0 (highest) .. 7
Swappiness = NewType("Swappiness", int)  # 0..100
HookTimeout = NewType("HookTimeout", int)  # seconds, > 0

# Strings with a required shape; the converter checks the patterns.
SemVer = NewType("SemVer", str)
AbsPath = NewType("AbsPath", str)
CapabilityName = NewType("CapabilityName", str)  # CAP_*
RlimitType = NewType("RlimitType", str)  # RLIMIT_*
HugePageSize = NewType("HugePageSize", str)  # e.g. 2MB
CPUList = NewType("CPUList", str)  # e.g. 0-3,7
MemBwSchema = NewType("MemBwSchema", str)  # MB:...
SchemataLine = NewType("SchemataLine", str)  # no newline
DeviceAccess = NewType("DeviceAccess", str)  # subset of "rwm"

NamespaceType = Literal["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
DeviceType = Literal["c", "b", "u", "p"]
CgroupDeviceType = Literal["a", "b", "c"]
# The spec lists four values; the recursive forms are accepted too because
# widely used engines write them (see RootfsPropagation in the report).
RootfsPropagation = Literal[
    "private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable"
]
IOPriorityClass = Literal["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"]
SchedulerPolicy = Literal[
    "SCHED_OTHER",
    "SCHED_FIFO",
    "SCHED_RR",
    "SCHED_BATCH",
    "SCHED_ISO",
    "SCHED_IDLE",
    "SCHED_DEADLINE",
]
SchedulerFlag = Literal[
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
    "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
]
MemoryPolicyMode = Literal[
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
]
MemoryPolicyFlag = Literal["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
PersonalityDomain = Literal["LINUX", "LINUX32"]
SeccompAction = Literal[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
]
SeccompArch = Literal[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
]
SeccompFlag = Literal[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
]
SeccompOperator = Literal[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
]
FreeBSDSharing = Literal["disable", "new", "inherit"]
FreeBSDSharingNoDisable = Literal["new", "inherit"]


# --- config.md -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Root:
    """The rootfs; `path` may be relative to the bundle, resolved by the caller."""

    path: str
    readonly: bool | None = None


@attrs.frozen(kw_only=True)
class LinuxIDMapping:
    """One uid/gid range; shared by user namespaces and idmapped mounts."""

    container_id: Uint32
    host_id: Uint32
    size: Uint32


@attrs.frozen(kw_only=True)
class Mount:
    """`destination` may be relative on Linux (deprecated, meaning relative to /)."""

    destination: str
    source: str | None = None
    options: tuple[str, ...] = ()
    type: str | None = None
    uid_mappings: tuple[LinuxIDMapping, ...] = ()
    gid_mappings: tuple[LinuxIDMapping, ...] = ()


@attrs.frozen(kw_only=True)
class ConsoleSize:
    """Only meaningful when `terminal` is true; the runtime ignores it otherwise."""

    height: Uint64
    width: Uint64


@attrs.frozen(kw_only=True)
class User:
    """Numeric ids only: name lookup is the caller's job (spec note on POSIX users)."""

    uid: Uint32
    gid: Uint32
    umask: Uint32 | None = None
    additional_gids: tuple[Uint32, ...] = ()
    username: str | None = None  # Windows only; kept so such configs round-trip


@attrs.frozen(kw_only=True)
class LinuxCapabilities:
    """Names are checked for shape only; unknown ones are warned about, not fatal."""

    bounding: tuple[CapabilityName, ...] = ()
    effective: tuple[CapabilityName, ...] = ()
    inheritable: tuple[CapabilityName, ...] = ()
    permitted: tuple[CapabilityName, ...] = ()
    ambient: tuple[CapabilityName, ...] = ()


@attrs.frozen(kw_only=True)
class POSIXRlimit:
    """Both limits are required so the runtime never has to guess one."""

    type: RlimitType
    hard: Uint64
    soft: Uint64


@attrs.frozen(kw_only=True)
class LinuxIOPriority:
    """ioprio_set(2) for the process; `priority` is REQUIRED by config.md."""

    class_: IOPriorityClass
    priority: IOPriorityLevel


@attrs.frozen(kw_only=True)
class LinuxScheduler:
    """Unset numbers mean 0 to the runtime; None keeps absence visible."""

    policy: SchedulerPolicy
    nice: Int32 | None = None
    priority: Int32 | None = None
    flags: tuple[SchedulerFlag, ...] = ()
    runtime: Uint64 | None = None
    deadline: Uint64 | None = None
    period: Uint64 | None = None


@attrs.frozen(kw_only=True)
class CPUAffinity:
    """For `exec` only: where the runtime's helper runs before and after joining the cgroup."""

    initial: CPUList | None = None
    final: CPUList | None = None


@attrs.frozen(kw_only=True)
class Process:
    """`args` may be empty here because only `start` requires it; the runtime checks."""

    cwd: AbsPath
    terminal: bool | None = None
    console_size: ConsoleSize | None = None
    user: User | None = None
    args: tuple[str, ...] = ()
    command_line: str | None = None
    env: tuple[str, ...] = ()
    capabilities: LinuxCapabilities | None = None
    rlimits: tuple[POSIXRlimit, ...] = ()
    no_new_privileges: bool | None = None
    apparmor_profile: str | None = None
    oom_score_adj: OomScoreAdj | None = None
    selinux_label: str | None = None
    io_priority: LinuxIOPriority | None = None
    scheduler: LinuxScheduler | None = None
    exec_cpu_affinity: CPUAffinity | None = None


@attrs.frozen(kw_only=True)
class Hook:
    """`args` includes argv[0], like execv; an empty `args` means just `path`."""

    path: AbsPath
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: HookTimeout | None = None


@attrs.frozen(kw_only=True)
class Hooks:
    """Kept per lifecycle point, in the order they must run."""

    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


# --- config-linux.md -------------------------------------------------------


@attrs.frozen(kw_only=True)
class LinuxNamespace:
    """Without `path` a new namespace is created; with it, that one is joined."""

    type: NamespaceType
    path: AbsPath | None = None


@attrs.frozen(kw_only=True)
class LinuxTimeOffset:
    """Offset applied to one clock of a new time namespace."""

    secs: Int64 | None = None
    nanosecs: Uint32 | None = None


@attrs.frozen(kw_only=True)
class LinuxDevice:
    """A node to create; major/minor are required unless `type` is "p" (FIFO)."""

    type: DeviceType
    path: AbsPath
    major: Int64 | None = None
    minor: Int64 | None = None
    file_mode: Uint32 | None = None
    uid: Uint32 | None = None
    gid: Uint32 | None = None


@attrs.frozen(kw_only=True)
class LinuxNetDevice:
    """The host interface is the map key; `name` renames it inside the container."""

    name: str | None = None


@attrs.frozen(kw_only=True)
class LinuxDeviceCgroup:
    """One allow/deny rule; unset type/major/minor mean "all" (`a`, `*`)."""

    allow: bool
    type: CgroupDeviceType | None = None
    major: Int64 | None = None
    minor: Int64 | None = None
    access: DeviceAccess | None = None


@attrs.frozen(kw_only=True)
class LinuxMemory:
    """Byte limits use -1 for unlimited, hence signed."""

    limit: Int64 | None = None
    reservation: Int64 | None = None
    swap: Int64 | None = None
    kernel: Int64 | None = None
    kernel_tcp: Int64 | None = None
    swappiness: Swappiness | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


@attrs.frozen(kw_only=True)
class LinuxCPU:
    """Covers both the cpu and cpuset controllers, as the spec groups them."""

    shares: Uint64 | None = None
    quota: Int64 | None = None
    burst: Uint64 | None = None
    period: Uint64 | None = None
    realtime_runtime: Int64 | None = None
    realtime_period: Uint64 | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: Int64 | None = None


@attrs.frozen(kw_only=True)
class LinuxWeightDevice:
    """At least one of the two weights must be given (checked by the converter)."""

    major: Int64
    minor: Int64
    weight: Uint16 | None = None
    leaf_weight: Uint16 | None = None


@attrs.frozen(kw_only=True)
class LinuxThrottleDevice:
    """A per-device rate; bytes or IOs per second depending on the list it is in."""

    major: Int64
    minor: Int64
    rate: Uint64


@attrs.frozen(kw_only=True)
class LinuxBlockIO:
    """blkio (v1) / io (v2) settings; the cgroup driver picks what applies."""

    weight: Uint16 | None = None
    leaf_weight: Uint16 | None = None
    weight_device: tuple[LinuxWeightDevice, ...] = ()
    throttle_read_bps_device: tuple[LinuxThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[LinuxThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[LinuxThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[LinuxThrottleDevice, ...] = ()


@attrs.frozen(kw_only=True)
class LinuxHugepageLimit:
    """`page_size` keeps the spec's spelling (2MB) since it names cgroup files."""

    page_size: HugePageSize
    limit: Uint64


@attrs.frozen(kw_only=True)
class LinuxInterfacePriority:
    """net_prio entry for one host interface."""

    name: str
    priority: Uint32


@attrs.frozen(kw_only=True)
class LinuxNetwork:
    """net_cls/net_prio: cgroup v1 only, kept so v1 hosts can honour it."""

    class_id: Uint32 | None = None
    priorities: tuple[LinuxInterfacePriority, ...] = ()


@attrs.frozen(kw_only=True)
class LinuxPids:
    """`limit` -1 means max; 0 is a real limit, so absence is None."""

    limit: Int64 | None = None


@attrs.frozen(kw_only=True)
class LinuxRdma:
    """At least one of the two must be given (checked by the converter)."""

    hca_handles: Uint32 | None = None
    hca_objects: Uint32 | None = None


@attrs.frozen(kw_only=True)
class LinuxResources:
    """Also the document `update --resources` reads, so it stands on its own."""

    devices: tuple[LinuxDeviceCgroup, ...] = ()
    memory: LinuxMemory | None = None
    cpu: LinuxCPU | None = None
    pids: LinuxPids | None = None
    block_io: LinuxBlockIO | None = None
    hugepage_limits: tuple[LinuxHugepageLimit, ...] = ()
    network: LinuxNetwork | None = None
    rdma: dict[str, LinuxRdma] = attrs.field(factory=dict)
    unified: dict[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class LinuxIntelRdt:
    """resctrl settings; its presence alone obliges the runtime to use resctrl."""

    clos_id: str | None = None
    l3_cache_schema: str | None = None
    mem_bw_schema: MemBwSchema | None = None
    schemata: tuple[SchemataLine, ...] = ()
    enable_monitoring: bool | None = None


@attrs.frozen(kw_only=True)
class LinuxMemoryPolicy:
    """NUMA policy for set_mempolicy(2); node/mode compatibility is the kernel's call."""

    mode: MemoryPolicyMode
    nodes: str | None = None
    flags: tuple[MemoryPolicyFlag, ...] = ()


@attrs.frozen(kw_only=True)
class LinuxPersonality:
    """No flags are defined yet; the runtime decides what to do with any given."""

    domain: PersonalityDomain
    flags: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class LinuxSeccompArg:
    """One argument comparison; `value_two` is only used by SCMP_CMP_MASKED_EQ."""

    index: Uint32
    value: Uint64
    op: SeccompOperator
    value_two: Uint64 | None = None


@attrs.frozen(kw_only=True)
class LinuxSyscall:
    """A rule; syscall names stay unchecked since they vary by arch and libseccomp."""

    names: tuple[str, ...]
    action: SeccompAction
    errno_ret: Uint32 | None = None
    args: tuple[LinuxSeccompArg, ...] = ()


@attrs.frozen(kw_only=True)
class LinuxSeccomp:
    """The filter; `listener_metadata` is only valid together with `listener_path`."""

    default_action: SeccompAction
    default_errno_ret: Uint32 | None = None
    architectures: tuple[SeccompArch, ...] = ()
    flags: tuple[SeccompFlag, ...] = ()
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: tuple[LinuxSyscall, ...] = ()


@attrs.frozen(kw_only=True)
class Linux:
    """Everything under `linux`; the only platform section pyrunc acts on."""

    namespaces: tuple[LinuxNamespace, ...] = ()
    uid_mappings: tuple[LinuxIDMapping, ...] = ()
    gid_mappings: tuple[LinuxIDMapping, ...] = ()
    time_offsets: dict[str, LinuxTimeOffset] = attrs.field(factory=dict)
    devices: tuple[LinuxDevice, ...] = ()
    net_devices: dict[str, LinuxNetDevice] = attrs.field(factory=dict)
    cgroups_path: str | None = None
    resources: LinuxResources | None = None
    intel_rdt: LinuxIntelRdt | None = None
    memory_policy: LinuxMemoryPolicy | None = None
    sysctl: dict[str, str] = attrs.field(factory=dict)
    seccomp: LinuxSeccomp | None = None
    rootfs_propagation: RootfsPropagation | None = None
    masked_paths: tuple[AbsPath, ...] = ()
    readonly_paths: tuple[AbsPath, ...] = ()
    mount_label: str | None = None
    personality: LinuxPersonality | None = None


# --- config-freebsd.md (validated only, never acted on) --------------------


@attrs.frozen(kw_only=True)
class FreeBSDDevice:
    """Modelled only so that invalid FreeBSD sections are rejected like the schema does."""

    path: str | None = None
    mode: FileMode | None = None


@attrs.frozen(kw_only=True)
class FreeBSDJailAllow:
    """Modelled only for validation; pyrunc is Linux-only."""

    set_hostname: bool | None = None
    raw_sockets: bool | None = None
    chflags: bool | None = None
    mount: tuple[str, ...] = ()
    quotas: bool | None = None
    socket_af: bool | None = None
    mlock: bool | None = None
    reserved_ports: bool | None = None
    suser: bool | None = None


@attrs.frozen(kw_only=True)
class FreeBSDJail:
    """Modelled only for validation; pyrunc is Linux-only."""

    parent: str | None = None
    host: FreeBSDSharingNoDisable | None = None
    ip4: FreeBSDSharing | None = None
    ip4_addr: tuple[str, ...] = ()
    ip6: FreeBSDSharing | None = None
    ip6_addr: tuple[str, ...] = ()
    vnet: FreeBSDSharingNoDisable | None = None
    interface: str | None = None
    vnet_interfaces: tuple[str, ...] = ()
    sysvmsg: FreeBSDSharing | None = None
    sysvsem: FreeBSDSharing | None = None
    sysvshm: FreeBSDSharing | None = None
    enforce_statfs: Uint8 | None = None
    allow: FreeBSDJailAllow | None = None


@attrs.frozen(kw_only=True)
class FreeBSD:
    """Modelled only for validation; pyrunc is Linux-only."""

    devices: tuple[FreeBSDDevice, ...] = ()
    jail: FreeBSDJail | None = None


# --- the document ------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Spec:
    """A whole config.json.

    solaris, windows, vm and zos stay raw JSON objects: pyrunc is Linux-only.
    """

    oci_version: SemVer
    root: Root
    mounts: tuple[Mount, ...] = ()
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    hooks: Hooks | None = None
    annotations: dict[str, str] = attrs.field(factory=dict)
    linux: Linux | None = None
    solaris: dict[str, Any] | None = None
    windows: dict[str, Any] | None = None
    vm: dict[str, Any] | None = None
    zos: dict[str, Any] | None = None
    freebsd: FreeBSD | None = None
