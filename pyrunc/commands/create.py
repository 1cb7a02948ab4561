"""pyrunc create [--bundle DIR] [--pid-file F] [--console-socket S] ... ID"""

from __future__ import annotations

import os

from pyrunc.flags import ID, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


ARGUMENTS = Command(
    Flag("-b", "--bundle", value=True, default=".",
         help="path to the root of the bundle directory"),
    Flag("--pid-file", value=True, help="file to write the process id to"),
    Flag("--console-socket", value=True, help="unix socket that receives the pty master"),
    Flag("--no-pivot", help="do not use pivot_root"),
    Flag("--no-new-keyring", help="keep the caller's keyring"),
    Flag("--preserve-fds", type=int, default=0, help="pass N extra fds (from 3)"),
    Flag("--network", value=True, metavar="NAME[:ip=ADDRESS]",
         help="join a pyrunc bridge network (needs a new network namespace)"),
    Flag("--publish", repeat=True, metavar="HOSTPORT:PORT[/PROTO]",
         help="publish a container port on the host's addresses (with --network)"),
    args=(ID,),
    quick=True,
)


def listen_fds() -> int:
    """Socket-activation fds meant for us: only when LISTEN_PID names this process (S2)."""
    count = os.environ.get("LISTEN_FDS", "")
    if count.isdigit() and os.environ.get("LISTEN_PID") == str(os.getpid()):
        return int(count)
    return 0


def create_options(args: argparse.Namespace) -> dict:
    return {
        "listen_fds": listen_fds(),
        "pid_file": args.pid_file,
        "console_socket": args.console_socket,
        "no_pivot": args.no_pivot,
        "no_new_keyring": args.no_new_keyring,
        "preserve_fds": args.preserve_fds,
        "network": getattr(args, "network", None),
        "publish": getattr(args, "publish", None),
        "rootless": getattr(args, "rootless_cgroups", None),
    }


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.create import create
    from pyrunc.state import StateStore

    _, init = create(StateStore(args.root), args.id, args.bundle, **create_options(args))
    init.close()
    return 0
