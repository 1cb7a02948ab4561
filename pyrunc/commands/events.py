"""pyrunc events [--stats] [--interval 5s] ID"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interval", default="5s", help="set the stats collection interval")
    p.add_argument("--stats", action="store_true", help="display the container's stats then exit")
    p.add_argument("id", metavar="ID")


def run(args: argparse.Namespace) -> int:
    from pyrunc.cgroups.events import parse_duration
    from pyrunc.lifecycle.events import events
    from pyrunc.state import StateStore

    interval = parse_duration(args.interval)
    events(StateStore(args.root), args.id, interval, args.stats)
    return 0
