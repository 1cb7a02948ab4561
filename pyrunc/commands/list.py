"""pyrunc list [--format table|json] [--quiet]"""

from __future__ import annotations

import sys

from pyrunc import jsonlite
from pyrunc.flags import Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:  # argparse is not imported when the command line is parsed quickly
    import argparse

    from pyrunc.state import OciState


ARGUMENTS = Command(
    Flag("-f", "--format", default="table", choices=("table", "json")),
    Flag("-q", "--quiet", help="display only container IDs"),
    quick=True,
)


def table(rows: list[OciState]) -> str:
    """runc's layout: tab-separated columns padded to at least 12, 3 spaces apart."""
    header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    lines = [header] + [
        [r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"] or "root"]
        for r in rows
    ]
    widths = [max(12, max(len(line[i]) for line in lines) + 3) for i in range(len(header) - 1)]
    return "".join(
        "".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)) + line[-1] + "\n"
        for line in lines
    )


def run(args: argparse.Namespace) -> int:
    from pyrunc.state import StateStore

    containers = StateStore(args.root).containers()
    if args.quiet:  # ids only: no status to derive
        sys.stdout.write("".join(c.id + "\n" for c in containers))
        return 0
    rows = [c.oci_state() for c in containers]
    if args.format == "json":
        # runc prints compact JSON, `null` for an empty list, and the owner's name
        for row in rows:
            row["owner"] = row["owner"] or "root"
        text = jsonlite.dumps(rows, separators=(",", ":")) if rows else "null"
        sys.stdout.write(text + "\n")
    else:
        sys.stdout.write(table(rows))
    return 0
