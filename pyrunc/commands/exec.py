"""pyrunc exec [--process FILE | flags] ID [COMMAND [ARG...]]: run a process in a container."""

from __future__ import annotations

from pyrunc import jsonlite
from pyrunc.commands.create import listen_fds
from pyrunc.errors import PyruncError
from pyrunc.flags import ID, REST, Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse

    from pyrunc.lifecycle.exec import ProcessJSON, UserJSON


ARGUMENTS = Command(
    Flag("-p", "--process", value=True, help="path to a process.json (overrides the flags)"),
    Flag("--console-socket", value=True, help="unix socket that receives the pty master"),
    Flag("--cwd", value=True, help="current working directory in the container"),
    Flag("-e", "--env", repeat=True, help="set an environment variable"),
    Flag("-t", "--tty", help="allocate a pseudo-TTY"),
    Flag("-u", "--user", value=True, help="UID[:GID]"),
    Flag("-g", "--additional-gids", repeat=True, type=int),
    Flag("-d", "--detach", help="detach from the process"),
    Flag("--pid-file", value=True, help="file to write the process id to"),
    Flag("--process-label", value=True, help="SELinux label for the process"),
    Flag("--apparmor", value=True, help="AppArmor profile for the process"),
    Flag("--no-new-privs", help="set no_new_privs"),
    Flag("-c", "--cap", repeat=True, help="add a capability"),
    Flag("--preserve-fds", type=int, default=0, help="pass N extra fds (from 3)"),
    Flag("--ignore-paused", help="allow exec in a paused container"),
    Flag("--cgroup", repeat=True,
         help="run the process in an (existing) sub-cgroup: [CONTROLLER:]PATH"),
    args=(ID, Arg("command", REST, metavar="COMMAND")),
    quick=True,
)


def process_from_flags(base: ProcessJSON, args: argparse.Namespace) -> ProcessJSON:
    """The container's own process spec, changed as the flags say (runc's rules)."""
    proc: ProcessJSON = {**base}  # what is changed below is copied first, not changed in place
    if not args.command:
        raise PyruncError("exec: no command given (use --process or ID COMMAND...)")
    proc["args"] = list(args.command)
    proc["terminal"] = args.tty
    env = {}
    for item in list(proc.get("env") or ()) + args.env:
        key, _, _ = item.partition("=")
        env[key] = item
    proc["env"] = list(env.values())
    if args.cwd:
        proc["cwd"] = args.cwd
    user: UserJSON = {**(proc.get("user") or {"uid": 0, "gid": 0})}
    if args.user:
        uid, _, gid = args.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise PyruncError(f"exec: --user: expected UID[:GID] as numbers, got {args.user!r}")
        user["uid"] = int(uid)
        if gid:
            user["gid"] = int(gid)
    if args.additional_gids:
        user["additionalGids"] = args.additional_gids
    proc["user"] = user
    if args.cap:
        caps = dict(proc.get("capabilities") or {})
        for kind in ("bounding", "effective", "permitted", "ambient"):
            caps[kind] = list(dict.fromkeys(list(caps.get(kind) or ()) + args.cap))
        proc["capabilities"] = caps
    if args.no_new_privs:
        proc["noNewPrivileges"] = True
    if args.apparmor:
        proc["apparmorProfile"] = args.apparmor
    if args.process_label:
        proc["selinuxLabel"] = args.process_label
    return proc


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.exec import container_config, exec_process
    from pyrunc.state import StateStore

    store = StateStore(args.root)
    try:
        config = None
        if args.process:
            with open(args.process, "rb") as f:
                process = jsonlite.loads(f.read())
        else:
            config = container_config(store, args.id)  # read once, for both
            process = process_from_flags(config.get("process", {}), args)
        preserve = args.preserve_fds + listen_fds()
        return exec_process(
            store, args.id, process, detach=args.detach, pid_file=args.pid_file,
            console_socket=args.console_socket, preserve_fds=preserve,
            ignore_paused=args.ignore_paused, sub_cgroups=args.cgroup, config=config,
        )
    except (PyruncError, OSError, ValueError) as e:
        # runc exits 255 when exec fails
        error = e if isinstance(e, PyruncError) else PyruncError(f"exec failed: {e}")
        error.exit_code = 255
        raise error from None
