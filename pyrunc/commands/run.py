"""pyrunc run [--detach] [--keep] [create flags] ID"""

from __future__ import annotations

from pyrunc.commands.create import ARGUMENTS as CREATE_ARGUMENTS
from pyrunc.commands.create import create_options
from pyrunc.flags import Flag

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


ARGUMENTS = CREATE_ARGUMENTS.extended(
    Flag("-d", "--detach", help="detach from the container"),
    Flag("--keep", help="do not delete the container after exit"),
    # runc's run makes itself a child subreaper unless told not to; pyrunc's run never becomes
    # one (the init is its direct child), so the flag is accepted and changes nothing
    Flag("--no-subreaper",
         help="disable the use of the subreaper used to reap reparented processes"),
)


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.run import run as run_container
    from pyrunc.state import StateStore

    return run_container(
        StateStore(args.root), args.id, args.bundle, detach=args.detach, keep=args.keep,
        **create_options(args),
    )
