"""pyrunc network create|ls|inspect|rm: bridge networks (pyrunc.network)."""

from __future__ import annotations

import sys

from pyrunc.flags import ONE_OR_MORE, Arg, Command, Flag

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


_NAMES = Arg("names", ONE_OR_MORE, metavar="NAME")
ARGUMENTS = Command(
    actions=(
        ("create", (), "create a bridge network", Command(
            Flag("--subnet", value=True, help="IPv4 CIDR (default: a free /24 of 10.90.0.0/16)"),
            Flag("--gateway", value=True,
                 help="the bridge's address (default: the first host address)"),
            Flag("--bridge", value=True, help="bridge interface name (default: pyr-NAME)"),
            Flag("--no-nat", help="no masquerade for egress traffic"),
            args=(Arg("name", metavar="NAME"),),
        )),
        ("ls", ("list",), "list networks", Command(
            Flag("-q", "--quiet", help="names only"),
            Flag("-f", "--format", choices=("table", "json"), default="table"),
        )),
        ("inspect", (), "show a network as JSON", Command(args=(_NAMES,))),
        ("rm", ("remove",), "remove networks (not while in use)", Command(
            Flag("-f", "--force",
                 help="remove a damaged record too (the record only: what it names is left)"),
            args=(_NAMES,),
        )),
    )
)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import pyrunc.network as net
    from pyrunc import jsonlite

    if args.action == "create":
        net.create_network(args.name, args.subnet, args.gateway, args.bridge,
                           nat=not args.no_nat, root=args.root)
        sys.stdout.write(args.name + "\n")
    elif args.action in ("ls", "list"):
        nets = net.list_networks(args.root)
        if args.quiet:
            sys.stdout.write("".join(n["name"] + "\n" for n in nets))
        elif args.format == "json":
            sys.stdout.write(jsonlite.dumps(nets, indent=2) + "\n")
        else:
            rows = [("NAME", "SUBNET", "GATEWAY", "BRIDGE", "NAT", "CONTAINERS")]
            rows += [(n["name"], n["subnet"], n["gateway"], n["bridge"],
                      "yes" if n["nat"] else "no", str(len(n["containers"]))) for n in nets]
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for r in rows:
                line = "   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True))
                sys.stdout.write(line.rstrip() + "\n")
    elif args.action == "inspect":
        sys.stdout.write(jsonlite.dumps([net.inspect_network(n, args.root) for n in args.names],
                                        indent=2) + "\n")
    else:
        for name in args.names:
            net.remove_network(name, args.root, force=args.force)
            sys.stdout.write(name + "\n")
    return 0
