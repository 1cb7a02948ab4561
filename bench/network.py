#!/usr/bin/env python3
"""What joining a bridge network costs: pyrunc against podman/netavark and the CNI plugins.

    python3 bench/network.py [--rounds N]      (root; writes bench/NETWORK.md)

Three ways to give a container eth0 on a bridge, with NAT, measured on the same host in
interleaved rounds (medians, and the 25th-75th percentile):

- pyrunc: `pyrunc run --network NET ID` against `pyrunc run ID` (both with a new network
  namespace, process /bin/true); the difference is the whole network cost: importing pyroute2,
  the lease, the veth pair, addresses and routes, one nftables transaction, and the teardown
  in delete.
- podman 4 with netavark: `podman run --rm --network NET` against `--network none`, the same
  image (the busybox rootfs, imported), crun; the difference is netavark's setup and teardown.
- the CNI `bridge` plugin with `host-local` IPAM (Debian's containernetworking-plugins), run by
  hand as a CNI runtime would: ADD then DEL on a fresh namespace (`ip netns add`, not counted).

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


def pyrunc_cmd() -> list[str]:
    launcher = Path(sys.executable).with_name("pyrunc")
    return [str(launcher)] if launcher.exists() else [sys.executable, "-m", "pyrunc"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "bench" / "NETWORK.md"))
    opts = ap.parse_args()
    work = Path(f"/run/pyrunc-netbench-{os.getpid()}")
    work.mkdir(mode=0o700)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pyrunc = [*pyrunc_cmd(), "--root", str(work / "root")]
    podman_base = None
    cleanup: list[list[str]] = []
    try:
        bundle = work / "bundle"
        subprocess.run(["bash", str(REPO / "bundles" / "make-busybox.sh"), str(bundle)],
                       check=True, capture_output=True)
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

        for r in range(opts.rounds + 1):  # round 0 warms up and is dropped
            keep = r > 0
            t_plain, c_plain = cpu_timed([*pyrunc, "run", "--bundle", str(bundle),
                                          f"pnb{r}p"], env)
            t_net, c_net = cpu_timed([*pyrunc, "run", "--bundle", str(bundle), "--network",
                                      "bench", f"pnb{r}n"], env)
            t_port, c_port = cpu_timed([*pyrunc, "run", "--bundle", str(bundle), "--network",
                                        "bench", "--publish", "28080:80", f"pnb{r}q"], env)
            if keep:
                add("pyrunc run", t_plain, c_plain)
                add("pyrunc run --network", t_net, c_net)
                add("pyrunc run --network --publish", t_port, c_port)
                add("pyrunc network cost", t_net - t_plain, c_net - c_plain)
            if have_podman:
                t_none, c_none = cpu_timed([*podman_base, "run", "--rm", "--network", "none",
                                            "pyrtbench", "/bin/true"], penv)
                t_pnet, c_pnet = cpu_timed([*podman_base, "run", "--rm", "--network",
                                            "pyrtbench", "pyrtbench", "/bin/true"], penv)
                if keep:
                    add("podman run --network none", t_none, c_none)
                    add("podman run --network (netavark)", t_pnet, c_pnet)
                    add("podman network cost", t_pnet - t_none, c_pnet - c_none)
            if have_cni:
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
        imp = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pyroute2"],
                             capture_output=True, text=True).stderr.splitlines()[-1]
        lines = [
            "# Joining a bridge network: pyrunc, podman/netavark, CNI plugins",
            "",
            f"`python3 bench/network.py --rounds {opts.rounds}` on "
            f"{time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} CPUs shared with "
            "other jobs; ms, median (25th-75th percentile). \"network cost\" is the difference "
            "of the medians' runs, round by round: with the network minus without.",
            "",
            "| what | wall ms | CPU ms (user+sys, with children) |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {k} | {quantiles(v)} | {quantiles(CPU[k]) if k in CPU else ''} |"
                  for k, v in samples.items()]
        lines += ["", f"pyroute2's import alone: {int(imp.split('|')[1]) / 1000:.0f} ms "
                  "(cumulative, `-X importtime`).", ""]
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
