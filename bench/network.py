#!/usr/bin/env python3
"""What joining a bridge network costs: pyrunc against podman/netavark and the CNI plugins.

    python3 bench/network.py [--rounds N]      (root; writes bench/NETWORK.md)

Three ways to give a container eth0 on a bridge, with NAT, measured on the same host in
interleaved rounds (medians, and the 25th-75th percentile):

- pyrunc: `pyrunc run --network NET ID` against `pyrunc run ID` (both with a new network
  namespace, process /bin/true); the difference is the whole network cost: importing the
  network code, the lease, the veth pair, addresses and routes (rtnetlink), the nftables
  elements, and the teardown in delete. pyrunc is this checkout's compiled launcher (built as
  bench/bench.py builds it), with bytecode caches.
- podman 4 with netavark: `podman run --rm --network NET` against `--network none`, the same
  image (the busybox rootfs, imported), crun; the difference is netavark's setup and teardown.
- the CNI `bridge` plugin with `host-local` IPAM (Debian's containernetworking-plugins), run by
  hand as a CNI runtime would: ADD then DEL on a fresh namespace (`ip netns add`, not counted).

The order of the three rotates from round to round. Then a breakdown of pyrunc's join:
`run --network` with timers around the network functions (the same CLI code, the timers
installed from outside by PHASES below), and what importing the network modules adds to a
create that already imported everything else (`-X importtime`).

Everything lives under /run/pyrunc-netbench-<pid> and in 10.231.240-242.0/24 with bridges
named pyrtnb*; all of it is removed at the end, also after an error. No traffic is sent.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CNI_PATH = "/usr/lib/cni"


CPU: dict[str, list[float]] = {}


def timed(args: list[str], env: dict | None = None, stdin: bytes | None = None) -> float:
    """Wall ms; the CPU ms (user+system of the process and what it reaped) go to CPU_LAST."""
    global CPU_LAST
    t = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if stdin:
        proc.stdin.write(stdin)
        proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = (time.perf_counter() - t) * 1000
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, args)
    CPU_LAST = (usage.ru_utime + usage.ru_stime) * 1000
    return wall


CPU_LAST = 0.0


def quantiles(xs: list[float]) -> str:
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return f"{statistics.median(xs):.1f} ({q[0]:.1f}-{q[2]:.1f})"


def pyrunc_cmd(work: Path) -> tuple[list[str], str]:
    """This checkout's launcher, as bench/bench.py builds it (never the one on PATH, which
    may run another checkout)."""
    sys.path.insert(0, str(REPO / "bench"))
    import bench

    bench.WORK = str(work)
    launcher, how = bench.build_launcher()
    if launcher:
        return [launcher], f"src/launcher.c built for this checkout ({how})"
    return [sys.executable, "-s", "-S", "-P", "-m", "pyrunc"], f"python -m pyrunc ({how})"


# `run --network` with timers around the network functions, from outside: argv is the CLI's
PHASES = r"""
import json, os, sys, time
t0 = time.perf_counter()
from pyrunc import sealed
sealed.running_sealed = lambda: True  # no re-exec from the sealed copy: the timers stay
from pyrunc.cli import main
from pyrunc.network import attach, links, nft, rtnl, store
T = dict.fromkeys(["prepare: lease, network.json",
    "setup: bridge up, gateway address (rtnetlink)",
    "setup: veth pair, eth0 address, route, lo (rtnetlink)", "setup: nftables elements",
    "setup: total", "teardown: nftables elements", "teardown: delete the veth (rtnetlink)",
    "teardown: release the lease", "teardown: total"], 0.0)
def timed(key, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            T[key] = T.get(key, 0) + (time.perf_counter() - t) * 1000
    return wrapper
attach.prepare = timed("prepare: lease, network.json", attach.prepare)
links.ensure_bridge = timed("setup: bridge up, gateway address (rtnetlink)", links.ensure_bridge)
links.attach = timed("setup: veth pair, eth0 address, route, lo (rtnetlink)", links.attach)
nft.attach = timed("setup: nftables elements", nft.attach)
attach.setup = timed("setup: total", attach.setup)
nft.unpublish = timed("teardown: nftables elements", nft.unpublish)
rtnl.delete_link = timed("teardown: delete the veth (rtnetlink)", rtnl.delete_link)
store.NetworkStore.release = timed("teardown: release the lease", store.NetworkStore.release)
attach.teardown = timed("teardown: total", attach.teardown)
try:
    main(sys.argv[1:])
finally:
    T["the whole command"] = (time.perf_counter() - t0) * 1000
    with open(os.environ["PHASES_OUT"], "a") as f:
        f.write(json.dumps(T) + "\n")
"""

# the network modules' import on top of what a create imports anyway
IMPORTS = ("import sys, pyrunc.cli, pyrunc.lifecycle.run, pyrunc.lifecycle.create, "
           "pyrunc.lifecycle.delete; sys.stderr.write('--\\n'); "
           "import pyrunc.network.attach, pyrunc.network.links, pyrunc.network.nft")


def import_ms(stderr: str) -> float:
    """The self times of every module imported after the marker."""
    after = stderr.split("--\n", 1)[1]
    return sum(int(line.split("|")[0].split(":")[1]) for line in after.splitlines()
               if line.startswith("import time:") and "|" in line) / 1000


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "bench" / "NETWORK.md"))
    opts = ap.parse_args()
    work = Path(f"/run/pyrunc-netbench-{os.getpid()}")
    work.mkdir(mode=0o700)
    load_start = loadavg()
    # bytecode caches as an install has them (this sandbox sets PYTHONDONTWRITEBYTECODE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    launcher, how = pyrunc_cmd(work)
    pyrunc = [*launcher, "--root", str(work / "root")]
    podman_base = None
    cleanup: list[list[str]] = []
    try:
        bundle = work / "bundle"
        # its `pyrunc spec` is this checkout's launcher (bench.build_launcher's bin), not PATH's
        subprocess.run(["bash", str(REPO / "bundles" / "make-busybox.sh"), str(bundle)],
                       check=True, capture_output=True,
                       env={**env, "PATH": f"{work / 'bin'}:{env.get('PATH', '')}"})
        config = json.loads((bundle / "config.json").read_text())
        config["process"]["args"] = ["/bin/true"]
        (bundle / "config.json").write_text(json.dumps(config))
        subprocess.run([*pyrunc, "network", "create", "--subnet", "10.231.240.0/24",
                        "--bridge", "pyrtnb0", "bench"], env=env, check=True,
                       capture_output=True)
        cleanup.append([*pyrunc, "network", "rm", "bench"])

        # podman, private (its own storage, run root and network configs)
        have_podman = shutil.which("podman") is not None
        if have_podman:
            conf = work / "containers.conf"
            conf.write_text(
                "[containers]\n"
                'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
                "[network]\n"
                'network_backend = "netavark"\n'
                f'network_config_dir = "{work / "networks"}"\n'
                "[engine]\n"
                'cgroup_manager = "cgroupfs"\n'
                'events_logger = "file"\n'
                f'events_logfile_path = "{work / "events.log"}"\n'
                f'tmp_dir = "{work / "tmpdir"}"\n'
            )
            penv = {**os.environ, "CONTAINERS_CONF": str(conf)}
            podman_base = ["podman", "--root", str(work / "proot"), "--runroot",
                           str(work / "prun"), "--cgroup-manager", "cgroupfs"]
            tar = work / "rootfs.tar"
            subprocess.run(["tar", "-C", str(bundle / "rootfs"), "-cf", str(tar), "."],
                           check=True)
            subprocess.run([*podman_base, "import", "--quiet", str(tar), "pyrtbench"],
                           env=penv, check=True, capture_output=True)
            # podman 4.3 has no --interface-name: the network's config file, as it writes them
            (work / "networks").mkdir(exist_ok=True)
            (work / "networks" / "pyrtbench.json").write_text(json.dumps({
                "name": "pyrtbench", "id": os.urandom(32).hex(), "driver": "bridge",
                "network_interface": "pyrtnb1", "created": "2026-01-01T00:00:00Z",
                "subnets": [{"subnet": "10.231.241.0/24", "gateway": "10.231.241.1"}],
                "ipv6_enabled": False, "internal": False, "dns_enabled": False,
                "ipam_options": {"driver": "host-local"},
            }))

        cni_conf = json.dumps({
            "cniVersion": "1.0.0", "name": "pyrtbench", "type": "bridge", "bridge": "pyrtnb2",
            "isGateway": True, "ipMasq": True,
            "ipam": {"type": "host-local", "subnet": "10.231.242.0/24",
                     "dataDir": str(work / "cni")},
        }).encode()
        have_cni = os.access(f"{CNI_PATH}/bridge", os.X_OK)

        samples: dict[str, list[float]] = {}

        def add(key: str, ms: float, cpu: float | None = None) -> None:
            samples.setdefault(key, []).append(ms)
            if cpu is not None:
                CPU.setdefault(key, []).append(cpu)

        def cpu_timed(*args: object, **kwargs: object) -> tuple[float, float]:
            wall = timed(*args, **kwargs)
            return wall, CPU_LAST

        def pyrunc_round(r: int, keep: bool) -> None:
            runs = [("p", []), ("n", ["--network", "bench"]),
                    ("q", ["--network", "bench", "--publish", "28080:80"])]
            got = {}
            for tag, extra in runs[r % 3:] + runs[:r % 3]:  # no run always follows another
                got[tag] = cpu_timed([*pyrunc, "run", "--bundle", str(bundle), *extra,
                                      f"pnb{r}{tag}"], env)
            (t_plain, c_plain), (t_net, c_net), (t_port, c_port) = got["p"], got["n"], got["q"]
            if keep:
                add("pyrunc run", t_plain, c_plain)
                add("pyrunc run --network", t_net, c_net)
                add("pyrunc run --network --publish", t_port, c_port)
                add("pyrunc network cost", t_net - t_plain, c_net - c_plain)

        def podman_round(r: int, keep: bool) -> None:
            t_none, c_none = cpu_timed([*podman_base, "run", "--rm", "--network", "none",
                                        "pyrtbench", "/bin/true"], penv)
            t_pnet, c_pnet = cpu_timed([*podman_base, "run", "--rm", "--network",
                                        "pyrtbench", "pyrtbench", "/bin/true"], penv)
            if keep:
                add("podman run --network none", t_none, c_none)
                add("podman run --network (netavark)", t_pnet, c_pnet)
                add("podman network cost", t_pnet - t_none, c_pnet - c_none)

        def cni_round(r: int, keep: bool) -> None:
            ns = f"pyrtnbns{r}"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            try:
                cenv = {**os.environ, "CNI_CONTAINERID": f"pyrtnb{r}",
                        "CNI_NETNS": f"/run/netns/{ns}", "CNI_IFNAME": "eth0",
                        "CNI_PATH": CNI_PATH}
                t_add, c_add = cpu_timed([f"{CNI_PATH}/bridge"],
                                         {**cenv, "CNI_COMMAND": "ADD"}, cni_conf)
                t_del, c_del = cpu_timed([f"{CNI_PATH}/bridge"],
                                         {**cenv, "CNI_COMMAND": "DEL"}, cni_conf)
            finally:
                subprocess.run(["ip", "netns", "del", ns], check=False)
            if keep:
                add("CNI bridge+host-local ADD", t_add, c_add)
                add("CNI bridge+host-local DEL", t_del, c_del)
                add("CNI network cost (ADD+DEL)", t_add + t_del, c_add + c_del)

        kinds = [pyrunc_round] + ([podman_round] if have_podman else []) \
            + ([cni_round] if have_cni else [])
        for r in range(opts.rounds + 1):  # round 0 warms up and is dropped
            for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:
                kind(r, r > 0)

        # where pyrunc's join goes: timers around the network functions, same CLI code
        variants = {"`run --network`": [], "`run --network --publish`": ["--publish", "28080:80"]}
        phase_rows: dict[str, list[dict]] = {}
        for r in range(opts.rounds + 1):
            for v, extra in enumerate(variants.values()):
                out = work / f"phases{v}.jsonl"
                subprocess.run([sys.executable, "-s", "-S", "-c", PHASES, *pyrunc[1:], "run",
                                "--bundle", str(bundle), "--network", "bench", *extra,
                                f"pnbx{r}v{v}"],
                               env={**env, "PHASES_OUT": str(out), "PYTHONPATH": str(REPO)},
                               check=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for v, name in enumerate(variants):
            rows = (work / f"phases{v}.jsonl").read_text().splitlines()
            phase_rows[name] = [json.loads(line) for line in rows][1:]
        imports = []
        for _ in range(opts.rounds):
            err = subprocess.run([sys.executable, "-s", "-S", "-X", "importtime", "-c",
                                  IMPORTS], env={**env, "PYTHONPATH": str(REPO)},
                                 capture_output=True, text=True, check=True).stderr
            imports.append(import_ms(err))
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        lines = [
            "# Joining a bridge network: pyrunc, podman/netavark, CNI plugins",
            "",
            f"`python3 bench/network.py --rounds {opts.rounds}` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, pyrunc at {head} ({how}), "
            f"{os.cpu_count()} CPUs shared with other jobs: load average {load_start} at the "
            f"start, {loadavg()} at the end. ms, median (25th-75th percentile). \"network "
            "cost\" is the median of the differences, round by round: with the network minus "
            "without (the runs of one round follow each other; the order of pyrunc, podman and "
            "CNI rotates).",
            "",
            "| what | wall ms | CPU ms (user+sys, with children) |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {k} | {quantiles(v)} | {quantiles(CPU[k]) if k in CPU else ''} |"
                  for k, v in samples.items()]
        names = list(phase_rows)
        keys = list(dict.fromkeys(k for rows in phase_rows.values() for row in rows for k in row))
        lines += ["", "Where pyrunc's join goes (wall ms, median (25th-75th percentile) of "
                  f"{opts.rounds} runs each, timers around the network functions; a create's "
                  "own work is the rest of the whole):", "",
                  "| phase | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names),
                  "| importing the network modules (-X importtime, on top of what a create "
                  "imports anyway) | " + " | ".join(quantiles(imports) for _ in names) + " |"]
        lines += ["| " + k + " | " + " | ".join(
            quantiles([row.get(k, 0.0) for row in phase_rows[n]]) for n in names) + " |"
            for k in keys]
        lines += [""]
        Path(opts.out).write_text("\n".join(lines))
        print("\n".join(lines))
    finally:
        for cmd in cleanup:
            subprocess.run(cmd, env=env, capture_output=True)
        if podman_base is not None:
            subprocess.run([*podman_base, "network", "rm", "-f", "pyrtbench"], env=penv,
                           capture_output=True)
            subprocess.run([*podman_base, "system", "reset", "-f"], env=penv,
                           capture_output=True)
        for link in ("pyrtnb0", "pyrtnb1", "pyrtnb2"):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        # DEL removes the CNI bridge plugin's masquerade chain; a run cut short may leave it
        out = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                             text=True).stdout
        for line in out.splitlines():
            if line.startswith("-A POSTROUTING") and "pyrtbench" in line:
                subprocess.run(["iptables", "-t", "nat", "-D", *line.split()[1:]],
                               capture_output=True)
        subprocess.run(["umount", "-R", str(work / "proot")], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
