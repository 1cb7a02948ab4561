"""The container process: user, rlimits, capabilities, cwd, env and the executable."""

from __future__ import annotations

from pyrunc import capabilities
from pyrunc import instructions as ins
from pyrunc.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from pyrunc.instructions import Op
    from pyrunc.spec.compiled import Linux, POSIXRlimit, Process

RLIMITS: dict[str, int] = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip
DEFAULT_UMASK = 0o022


class _Root:
    """The user when the config names none."""

    uid = gid = 0
    umask = None
    additional_gids = ()


_ROOT = _Root()


def env_value(env: tuple[str, ...], name: str) -> str | None:
    prefix = name + "="
    for item in env:
        if item.startswith(prefix):
            return item[len(prefix) :]
    return None


PASSWD_LIMIT = 4 << 20  # a bigger /etc/passwd is unusable: HOME falls back to "/"


def home_of(rootfs: str, uid: int) -> str:
    """The user's home from the container's /etc/passwd, or "/" (runc's default for HOME).

    Read by the host side, so as S12 asks (see _linux.read_in_root): resolved inside the root,
    a regular file of bounded size; anything else there (missing, a device node, a FIFO, too
    big) is unusable and gives runc's fallback, "/" (runc, reading it from inside the
    container, ignores a passwd file it cannot open). pyrunc never reads /etc/group: the
    spec's ids are numeric, and runc reads it only to resolve group names.
    """
    from pyrunc import syscall

    data = syscall.get().read_in_root(rootfs, "/etc/passwd", PASSWD_LIMIT)
    text = (data or b"").decode(errors="replace")
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 6 and fields[2] == str(uid):
            return fields[5] or "/"
    return "/"


def environment(process: Process, rootfs: str) -> list[str]:
    """process.env, plus HOME when it is missing."""
    env = list(process.env or ())
    if env_value(tuple(env), "HOME") is None:
        env.append("HOME=" + home_of(rootfs, (process.user or _ROOT).uid))
    return env


def rlimit_ops(rlimits: tuple[POSIXRlimit, ...]) -> list[Op]:
    out: list[Op] = []
    for i, rl in enumerate(rlimits):
        number = RLIMITS.get(rl.type)
        if number is None:
            raise ConfigError(f"config.json: process.rlimits[{i}].type: unknown rlimit {rl.type!r}")
        out.append(ins.rlimit(number, rl.soft, rl.hard,
                              f"setrlimit {rl.type} (soft {rl.soft}, hard {rl.hard})"))
    return out


KEEP_ORIGINAL_GROUPS = "run.oci.keep_original_groups"


def keeps_original_groups(annotations: Mapping[str, str] | None) -> bool:
    """crun's annotation (podman's `--group-add keep-groups`): present and not "0", setgroups
    is skipped and the process keeps the runtime caller's supplementary groups."""
    value = (annotations or {}).get(KEEP_ORIGINAL_GROUPS)
    return value is not None and value != "0"


def identity_ops(process: Process, top: int, setgroups: bool | None = True) -> list[Op]:
    """Bounding set, groups, uid/gid and the final capability sets, in the order that works.

    `setgroups` False: denied in the user namespace; None: the caller's groups are kept
    (keeps_original_groups), whatever the config asks."""
    user = process.user or _ROOT
    caps = process.capabilities
    out: list[Op] = []
    if caps is not None:
        unknown: set[str] = set()
        sets = [
            capabilities.mask(getattr(caps, kind), top, unknown)
            for kind in ("bounding", "effective", "permitted", "inheritable", "ambient")
        ]
        bounding, effective, permitted, inheritable, ambient = sets
        capabilities.warn_unknown(unknown)
    else:
        bounding = effective = permitted = inheritable = ambient = 0
    if ambient & ~(permitted & inheritable):
        # the kernel only raises an ambient capability that is permitted and inheritable;
        # runc skips the others with a warning, and so do we
        from pyrunc.log import get_logger

        skipped = capabilities.names_of(ambient & ~(permitted & inheritable))
        get_logger().debug(f"ambient capabilities not inheritable, skipped: {skipped}")
        ambient &= permitted & inheritable
    out.append(ins.drop_bounding(bounding, top, "drop capabilities from the bounding set"))
    # the cwd first as root (a directory only root may enter), again after the drop (one only
    # the user may enter); stdio becomes the user's (runc's finalizeNamespace and setupUser)
    out.append(ins.chdir(process.cwd, ins.CHDIR_BEFORE_DROP,
                         f"chdir to cwd ({process.cwd}) set in config.json"))
    out.append(ins.fix_stdio(user.uid))
    if setgroups is None:
        pass  # the groups the runtime was started with stay (crun's keep_original_groups)
    elif setgroups:
        out.append(ins.setgroups(list(user.additional_gids or ())))
    elif user.additional_gids:
        raise ConfigError(
            "config.json: process.user.additionalGids: cannot set any additional groups in a "
            "rootless container (setgroups is denied in its user namespace: map the gids "
            "through /etc/subgid and newgidmap)"
        )
    out.append(ins.setuser(user.uid, user.gid, f"set user {user.uid}:{user.gid}"))
    out.append(ins.capset(effective, permitted, inheritable, ambient, top))
    return out


def exec_ops(process: Process) -> list[Op]:
    """umask, cwd, the executable lookup (so a missing one fails `create`)."""
    args = list(process.args or ())
    if not args:
        raise ConfigError("config.json: process.args: args must not be empty")
    env = list(process.env or ())
    umask = (process.user or _ROOT).umask
    return [
        ins.umask(DEFAULT_UMASK if umask is None else umask),
        ins.chdir(process.cwd, ins.CHDIR_AFTER_DROP,
                  f"chdir to cwd ({process.cwd}) set in config.json"),
        ins.find_exec(args[0], env_value(tuple(env), "PATH"), ins.LOOKUP_CONTAINER,
                      "find executable"),
    ]


SCHED_POLICIES = {
    "SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
    "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
}  # fmt: skip
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}  # fmt: skip
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
MPOL_MODES = {
    "MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6,
}  # fmt: skip
MPOL_FLAGS = {
    "MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14,
    "MPOL_F_NUMA_BALANCING": 1 << 13,
}  # fmt: skip
PERSONALITIES = {"LINUX": 0x0000, "LINUX32": 0x0008}


def parse_id_list(text: str, field: str) -> list[int]:
    """"0-3,7" -> [0, 1, 2, 3, 7] (cpu and NUMA node lists)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ConfigError(f"config.json: {field}: invalid list {text!r}")
        first, last = int(low), int(high or low)
        if last < first or last >= 8192:
            raise ConfigError(f"config.json: {field}: invalid range {part!r}")
        out.extend(range(first, last + 1))
    return out


def scheduling_ops(process: Process) -> list[Op]:
    """scheduler and ioPriority: set while the init still holds CAP_SYS_NICE."""
    out: list[Op] = []
    sched = process.scheduler
    if sched is not None:
        flags = 0
        for name in sched.flags:
            flags |= SCHED_FLAGS[name]
        out.append(ins.scheduler(SCHED_POLICIES[sched.policy], flags, sched.nice or 0,
                                 sched.priority or 0, sched.runtime or 0, sched.deadline or 0,
                                 sched.period or 0, f"sched_setattr {sched.policy}"))
    prio = process.io_priority
    if prio is not None:
        value = IOPRIO_CLASSES[prio.class_] << 13 | (prio.priority or 0)
        out.append(ins.ioprio(value, f"ioprio_set {prio.class_}"))
    return out


def affinity_op(cpus: str, which: str) -> Op:
    ids = parse_id_list(cpus, f"process.execCPUAffinity.{which}")
    return ins.affinity(ids, f"sched_setaffinity {which} ({cpus})")


def late_ops(process: Process, linux: Linux) -> list[Op]:
    """What is applied last before execve: final CPU affinity, memory policy, personality."""
    out: list[Op] = []
    affinity = process.exec_cpu_affinity
    if affinity is not None and affinity.final:
        out.append(affinity_op(affinity.final, "final"))
    policy = linux.memory_policy
    if policy is not None:
        mode = MPOL_MODES[policy.mode]
        for name in policy.flags:
            mode |= MPOL_FLAGS[name]
        nodes = parse_id_list(policy.nodes or "", "linux.memoryPolicy.nodes")
        out.append(ins.mempolicy(mode, nodes, f"set_mempolicy {policy.mode}"))
    persona = linux.personality
    if persona is not None:
        if persona.flags:
            raise ConfigError(
                f"config.json: linux.personality.flags: unknown flags {list(persona.flags)}"
            )
        out.append(ins.personality(PERSONALITIES[persona.domain],
                                   f"personality {persona.domain}"))
    return out
