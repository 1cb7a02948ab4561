"""The container process: user, rlimits, capabilities, cwd, env and the executable."""

from __future__ import annotations

from pyrunc import capabilities, ops
from pyrunc.errors import ConfigError
from pyrunc.ops import Op, op

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


def rlimit_ops(rlimits: tuple) -> list[Op]:
    out = []
    for i, rl in enumerate(rlimits):
        number = RLIMITS.get(rl.type)
        if number is None:
            raise ConfigError(f"config.json: process.rlimits[{i}].type: unknown rlimit {rl.type!r}")
        out.append(op(ops.RLIMIT, f"setrlimit {rl.type} (soft {rl.soft}, hard {rl.hard})",
                      number, rl.soft, rl.hard))
    return out


def identity_ops(process: object, top: int) -> list[Op]:
    """Bounding set, groups, uid/gid and the final capability sets, in the order that works."""
    user = process.user or _ROOT
    caps = process.capabilities
    out: list[Op] = []
    if caps is not None:
        bounding = capabilities.mask(caps.bounding, "process.capabilities.bounding", top)
        effective = capabilities.mask(caps.effective, "process.capabilities.effective", top)
        permitted = capabilities.mask(caps.permitted, "process.capabilities.permitted", top)
        inheritable = capabilities.mask(caps.inheritable, "process.capabilities.inheritable", top)
        ambient = capabilities.mask(caps.ambient, "process.capabilities.ambient", top)
    else:
        bounding = effective = permitted = inheritable = ambient = 0
    if ambient & ~(permitted & inheritable):
        # the kernel only raises an ambient capability that is permitted and inheritable;
        # runc skips the others with a warning, and so do we
        from pyrunc.log import get_logger

        skipped = capabilities.names_of(ambient & ~(permitted & inheritable))
        get_logger().debug(f"ambient capabilities not inheritable, skipped: {skipped}")
        ambient &= permitted & inheritable
    out.append(op(ops.DROP_BOUNDING, "drop capabilities from the bounding set", bounding, top))
    out.append(op(ops.SETGROUPS, "setgroups", ids=list(user.additional_gids or ())))
    out.append(op(ops.SETUSER, f"set user {user.uid}:{user.gid}", user.uid, user.gid))
    out.append(op(ops.CAPSET, "set capabilities", effective, permitted, inheritable, ambient, top))
    return out


def exec_ops(process: object) -> list[Op]:
    """umask, cwd, the executable lookup (so a missing one fails `create`)."""
    args = list(process.args or ())
    if not args:
        raise ConfigError("config.json: process.args: args must not be empty")
    env = list(process.env or ())
    umask = (process.user or _ROOT).umask
    return [
        op(ops.UMASK, "umask", DEFAULT_UMASK if umask is None else umask),
        op(ops.CHDIR, f"chdir to cwd ({process.cwd}) set in config.json", s=(process.cwd,)),
        op(ops.FIND_EXEC, "find executable", s=(args[0], env_value(tuple(env), "PATH"))),
    ]
