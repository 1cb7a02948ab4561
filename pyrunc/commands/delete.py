"""pyrunc delete [--force] ID"""

from __future__ import annotations

from pyrunc.flags import ID, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


ARGUMENTS = Command(
    Flag("-f", "--force", help="kill the container if it runs"),
    args=(ID,),
    quick=True,
)


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.delete import delete
    from pyrunc.state import StateStore

    delete(StateStore(args.root), args.id, args.force)
    return 0
