"""pyrunc spec [--bundle DIR]: write a default config.json (the same as runc's)."""

from __future__ import annotations

import argparse
import json
import os

from pyrunc.errors import PyruncError
from pyrunc.flags import Command, Flag

ARGUMENTS = Command(
    Flag("-b", "--bundle", value=True, default=".",
         help="path to the root of the bundle directory"),
    Flag("--rootless", help="a spec for a rootless container"),
)


def run(args: argparse.Namespace) -> int:
    from pyrunc.spec.defaults import default_config, rootless_config

    path = os.path.join(args.bundle, "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first")
    config = rootless_config(os.geteuid(), os.getegid()) if args.rootless else default_config()
    with open(path, "w") as f:
        f.write(json.dumps(config, indent="\t") + "\n")
    return 0
