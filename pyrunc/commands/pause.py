"""pyrunc pause ID"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="ID")


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.pause import pause
    from pyrunc.state import StateStore

    pause(StateStore(args.root), args.id)
    return 0
