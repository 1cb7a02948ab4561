"""pyrunc state ID: the OCI state JSON."""

from __future__ import annotations

import sys

from pyrunc import jsonlite
from pyrunc.flags import ID, Command

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse


ARGUMENTS = Command(args=(ID,), quick=True)


def run(args: argparse.Namespace) -> int:
    from pyrunc.state import StateStore

    lock, container = StateStore(args.root).lock(args.id, exclusive=False)
    with lock:
        state = container.oci_state()
    sys.stdout.write(jsonlite.dumps(state, indent=2) + "\n")
    return 0
