"""pyrunc ps [--format table|json] ID [ps options]"""

from __future__ import annotations

import argparse
import json
import sys

from pyrunc.flags import ID, REST, Arg, Command, Flag

ARGUMENTS = Command(
    Flag("-f", "--format", default="table", choices=("table", "json")),
    args=(ID, Arg("ps_args", REST, metavar="PS-OPTIONS", help="options for ps (default -ef)")),
)


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.ps import container_pids, ps_table
    from pyrunc.state import StateStore

    pids = container_pids(StateStore(args.root), args.id)
    if args.format == "json":
        sys.stdout.write(json.dumps(pids, separators=(",", ":")) + "\n")
        return 0
    ps_args = args.ps_args[1:] if args.ps_args[:1] == ["--"] else args.ps_args
    sys.stdout.write(ps_table(pids, ps_args))
    return 0
