"""pyrunc network create|ls|inspect|rm: bridge networks (pyrunc.network)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("create", help="create a bridge network")
    c.add_argument("--subnet", help="IPv4 CIDR (default: a free /24 of 10.90.0.0/16)")
    c.add_argument("--gateway", help="the bridge's address (default: the first host address)")
    c.add_argument("--bridge", help="bridge interface name (default: pyr-NAME)")
    c.add_argument("--no-nat", action="store_true", help="no masquerade for egress traffic")
    c.add_argument("name", metavar="NAME")
    ls = sub.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="names only")
    ls.add_argument("-f", "--format", choices=("table", "json"), default="table")
    i = sub.add_parser("inspect", help="show a network as JSON")
    i.add_argument("names", metavar="NAME", nargs="+")
    r = sub.add_parser("rm", aliases=["remove"], help="remove networks (not while in use)")
    r.add_argument("names", metavar="NAME", nargs="+")


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
            net.remove_network(name, args.root)
            sys.stdout.write(name + "\n")
    return 0
