"""pyrunc state ID: the OCI state JSON."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", metavar="ID")


def run(args: argparse.Namespace) -> int:
    from pyrunc.state import StateStore

    lock, container = StateStore(args.root).lock(args.id, exclusive=False)
    with lock:
        state = container.oci_state()
    sys.stdout.write(json.dumps(state, indent=2) + "\n")
    return 0
