"""pyrunc create [--bundle DIR] [--pid-file F] [--console-socket S] ... ID"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


def add_create_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-b", "--bundle", default=".", help="path to the root of the bundle directory")
    p.add_argument("--pid-file", help="file to write the process id to")
    p.add_argument("--console-socket", help="unix socket that receives the pty master")
    p.add_argument("--no-pivot", action="store_true", help="do not use pivot_root")
    p.add_argument("--no-new-keyring", action="store_true", help="keep the caller's keyring")
    p.add_argument("--preserve-fds", type=int, default=0, help="pass N extra fds (from 3)")
    p.add_argument("--network", metavar="NAME[:ip=ADDRESS]",
                   help="join a pyrunc bridge network (needs a new network namespace)")
    p.add_argument("--publish", action="append", default=[], metavar="HOSTPORT:PORT[/PROTO]",
                   help="publish a container port on the host's addresses (with --network)")
    p.add_argument("id", metavar="ID")


add_arguments = add_create_arguments


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
