"""pyrunc kill [--all] ID [SIGNAL]"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-a", "--all", action="store_true", help="send the signal to all processes")
    p.add_argument("id", metavar="ID")
    p.add_argument("signal", nargs="?", default="SIGTERM", metavar="SIGNAL")


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.kill import kill
    from pyrunc.signals import parse_signal
    from pyrunc.state import StateStore

    kill(StateStore(args.root), args.id, parse_signal(args.signal), args.all)
    return 0
