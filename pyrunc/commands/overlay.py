"""pyrunc overlay show|remove: the protected interpreter overlays (S1, pyrunc/sealed.py).

The first create, run or exec from an interpreter mounts a read-only overlayfs of the
interpreter's whole directory (for Debian's Python, /usr/bin) under /run/pyrunc-exe/, and leaves
it until reboot so that later commands start from it directly. `show` lists them (mount point
and directory), `remove [DIRECTORY]` unmounts them (or the one of that directory).
"""

from __future__ import annotations

import sys

from pyrunc.flags import OPTIONAL, Arg, Command

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


ARGUMENTS = Command(
    args=(
        Arg("action", choices=("show", "remove"),
            help="show: list the overlays; remove: unmount them"),
        Arg("only", OPTIONAL, metavar="DIRECTORY",
            help="remove only the overlay of this interpreter directory (or mount point)"),
    )
)


def run(args: argparse.Namespace) -> int:
    from pyrunc import sealed

    if args.action == "show":
        for mountpoint, directory in sealed.overlays():
            sys.stdout.write(f"{mountpoint}\t{directory}\n")
    else:
        for mountpoint in sealed.remove_overlays(args.only):
            sys.stdout.write(f"removed {mountpoint}\n")
    return 0
