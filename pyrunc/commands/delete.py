"""pyrunc delete [--force] ID"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true", help="kill the container if it runs")
    p.add_argument("id", metavar="ID")


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.delete import delete
    from pyrunc.state import StateStore

    delete(StateStore(args.root), args.id, args.force)
    return 0
