"""pyrunc update [--resources FILE|-] [--memory N] [--cpu-shares N] ... ID

With `--resources` the document (LinuxResources JSON, `-` for stdin) is all that is applied and
the other flags are ignored, as runc does. The flags build the same document, so both go through
the spec's validation.
"""

from __future__ import annotations

import argparse
import re
import sys

from pyrunc.errors import PyruncError
from pyrunc.flags import ID, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# flag dest -> (section, field, parser)
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$", re.IGNORECASE)


def ram_in_bytes(text: str) -> int:
    """docker/go-units RAMInBytes, as runc parses --memory: `256m`, `1g`, `1.5GiB`, `1024`;
    and `-1` for unlimited."""
    if text.strip() == "-1":
        return -1
    m = _SIZE.match(text.strip())
    if not m:
        raise PyruncError(f"invalid size: {text!r}")
    scale = 1024 ** "bkmgtp".index((m.group(2) or "b").lower())
    return int(float(m.group(1)) * scale)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise PyruncError(f"invalid value {text!r}: expected an integer") from None


FLAGS: tuple[tuple[str, str, str, Callable[[str], object], str], ...] = (
    # option, section, field, parser, help
    ("--memory", "memory", "limit", ram_in_bytes, "memory limit (in bytes, or 256m, 1g)"),
    ("--memory-reservation", "memory", "reservation", ram_in_bytes, "memory soft limit"),
    ("--memory-swap", "memory", "swap", ram_in_bytes,
     "total memory usage (memory + swap); -1 for unlimited swap"),
    ("--kernel-memory", "memory", "kernel", ram_in_bytes, "kernel memory limit (ignored)"),
    ("--kernel-memory-tcp", "memory", "kernelTCP", ram_in_bytes, "kernel TCP buffer limit"),
    ("--cpu-shares", "cpu", "shares", _int, "CPU shares (relative weight)"),
    ("--cpu-period", "cpu", "period", _int, "CPU CFS period (in usecs)"),
    ("--cpu-quota", "cpu", "quota", _int, "CPU CFS hardcap limit (in usecs)"),
    ("--cpu-burst", "cpu", "burst", _int, "CPU CFS burst (in usecs)"),
    ("--cpu-rt-period", "cpu", "realtimePeriod", _int, "CPU realtime period (in usecs)"),
    ("--cpu-rt-runtime", "cpu", "realtimeRuntime", _int, "CPU realtime runtime (in usecs)"),
    ("--cpuset-cpus", "cpu", "cpus", str, "CPU(s) to use"),
    ("--cpuset-mems", "cpu", "mems", str, "memory node(s) to use"),
    ("--pids-limit", "pids", "limit", _int, "maximum number of pids (-1: no limit)"),
    ("--blkio-weight", "blockIO", "weight", _int, "per-cgroup block IO weight (10 to 1000)"),
)


ARGUMENTS = Command(
    Flag("-r", "--resources", value=True, help="LinuxResources JSON file, or - for stdin"),
    *(
        # runc also takes --cpu-share (its old spelling)
        Flag(option, *(["--cpu-share"] if option == "--cpu-shares" else []), value=True,
             help=text)
        for option, _section, _field, _parse, text in FLAGS
    ),
    Flag("--l3-cache-schema", value=True, help="the string of Intel RDT/CAT L3 cache schema"),
    Flag("--mem-bw-schema", value=True,
         help="the string of Intel RDT/MBA memory bandwidth schema"),
    args=(ID,),
)


def document_from_flags(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """The LinuxResources JSON the flags say ({section: {field: value}}), for the loader."""
    doc: dict[str, dict[str, object]] = {}
    for option, section, field, parse, _text in FLAGS:
        value = getattr(args, option[2:].replace("-", "_"))
        if value is not None:
            doc.setdefault(section, {})[field] = parse(value)
    return doc


def run(args: argparse.Namespace) -> int:
    from pyrunc.lifecycle.update import update
    from pyrunc.state import StateStore

    if args.l3_cache_schema or args.mem_bw_schema:
        # pyrunc has no intelRdt support: refused as runc refuses them on a host without it
        kind = "CAT: l3 cache" if args.l3_cache_schema else "MBA: memory bandwidth"
        raise PyruncError(f"Intel RDT/{kind} schema is not enabled")
    if args.resources:
        source = "stdin" if args.resources == "-" else args.resources
        try:
            if args.resources == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(args.resources, "rb") as f:
                    data = f.read()
        except OSError as e:
            raise PyruncError(f"read {source}: {(e.strerror or str(e)).lower()}") from None
    else:
        data = document_from_flags(args)
        source = "update flags"
    update(StateStore(args.root), args.id, data, source)
    return 0
