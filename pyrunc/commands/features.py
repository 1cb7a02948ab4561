"""pyrunc features: what this build supports, as features.md describes."""

from __future__ import annotations

import argparse
import json
import sys

from pyrunc.flags import Command

ARGUMENTS = Command()


def run(args: argparse.Namespace) -> int:
    from pyrunc.features import features

    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0
