"""pyrunc kill [--all] ID [SIGNAL]"""

from __future__ import annotations

from pyrunc.flags import ID, OPTIONAL, Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


ARGUMENTS = Command(
    Flag("-a", "--all", help="send the signal to all processes"),
    args=(ID, Arg("signal", OPTIONAL, default="SIGTERM", metavar="SIGNAL")),
    quick=True,
)


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.kill import kill
    from pyrunc.signals import parse_signal
    from pyrunc.state import StateStore

    kill(StateStore(args.root), args.id, parse_signal(args.signal), args.all)
    return 0
