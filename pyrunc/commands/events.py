"""pyrunc events [--stats] [--interval 5s] ID"""

from __future__ import annotations

import argparse

from pyrunc.flags import ID, Command, Flag

ARGUMENTS = Command(
    Flag("--interval", value=True, default="5s", help="set the stats collection interval"),
    Flag("--stats", help="display the container's stats then exit"),
    args=(ID,),
)


def run(args: argparse.Namespace) -> int:
    from pyrunc.cgroups.events import parse_duration
    from pyrunc.lifecycle.events import events
    from pyrunc.state import StateStore

    interval = parse_duration(args.interval)
    events(StateStore(args.root), args.id, interval, args.stats)
    return 0
