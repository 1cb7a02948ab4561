"""pyrunc start ID"""

from __future__ import annotations

from pyrunc.flags import ID, Command

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


ARGUMENTS = Command(args=(ID,), quick=True)


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.start import start
    from pyrunc.state import StateStore

    start(StateStore(args.root), args.id)
    return 0
