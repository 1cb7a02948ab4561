"""pyrunc run [--detach] [--keep] [create flags] ID"""

from __future__ import annotations

from pyrunc.commands.create import add_create_arguments, create_options

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_create_arguments(p)
    p.add_argument("-d", "--detach", action="store_true", help="detach from the container")
    p.add_argument("--keep", action="store_true", help="do not delete the container after exit")
    # runc's run makes itself a child subreaper unless told not to; pyrunc's run never becomes
    # one (the init is its direct child), so the flag is accepted and changes nothing
    p.add_argument("--no-subreaper", action="store_true",
                   help="disable the use of the subreaper used to reap reparented processes")


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.run import run as run_container
    from pyrunc.state import StateStore

    return run_container(
        StateStore(args.root), args.id, args.bundle, detach=args.detach, keep=args.keep,
        **create_options(args),
    )
