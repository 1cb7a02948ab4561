"""Networking: linux.netDevices and pyrunc's bridge networks, with real namespaces and traffic.

Everything here is made by the tests and named for them: subnets in 10.231.0.0/16, bridges,
veths and namespaces starting with `pyrt`. Traffic only ever goes to addresses inside those
(the containers, their bridge, and a network namespace the test makes as "the internet").
Teardown deletes the containers, the networks (bridges, nftables elements), the test veths and
namespaces, also after a failure.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import REPO, Bundle, Pyrunc, new_id

from pyrunc.procfs import process_alive, read_proc_stat

_seq = itertools.count((os.getpid() % 40) * 5 + 10)


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def nft_ports() -> str:
    proc = sh("nft", "list", "map", "ip", "pyrunc", "ports", check=False)
    return proc.stdout


class Net:
    """One test's names (subnet 10.231.N.0/24, bridge pyrtbN, ...) and what to tear down."""

    def __init__(self, pyrunc: Pyrunc) -> None:
        self.pyrunc = pyrunc
        self.n = next(_seq) % 100 + 10
        self.links: list[str] = []
        self.netns: list[str] = []
        self.networks: list[str] = []

    def subnet(self, k: int = 0) -> str:
        return f"10.231.{self.n + k}.0/24"

    def create(self, name: str, k: int = 0, *extra: str) -> dict:
        bridge = f"pyrtb{os.getpid() % 1000}x{self.n + k}"
        self.networks.append(name)
        self.pyrunc("network", "create", "--subnet", self.subnet(k), "--bridge", bridge,
                    *extra, name, check=True)
        return self.inspect(name)

    def inspect(self, name: str) -> dict:
        return json.loads(self.pyrunc("network", "inspect", name, check=True).stdout)[0]

    def internet(self) -> tuple[str, str, str]:
        """A namespace playing "the internet" behind the host: (netns, host address, its
        address) on a /30 of the test's own, and no route back to any container subnet."""
        ns, host_end = f"pyrti{os.getpid() % 1000}x{self.n}", f"pyrth{os.getpid() % 1000}x{self.n}"
        sh("ip", "netns", "add", ns)
        self.netns.append(ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        self.links.append(host_end)
        host_ip, far_ip = f"10.231.{self.n + 130}.1", f"10.231.{self.n + 130}.2"
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_end)
        sh("ip", "link", "set", host_end, "up")
        sh("ip", "-n", ns, "addr", "add", f"{far_ip}/30", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns, host_ip, far_ip

    def teardown(self) -> list[str]:
        problems = []
        root = self.pyrunc.root
        for cid in sorted(os.listdir(root)) if root.is_dir() else []:
            if not cid.startswith("."):
                proc = self.pyrunc("delete", "--force", cid)
                if proc.returncode:
                    problems.append(f"delete -f {cid}: {proc.stderr.strip()}")
        for name in self.networks:
            proc = self.pyrunc("network", "rm", name)
            if proc.returncode and "does not exist" not in proc.stderr:
                problems.append(f"network rm {name}: {proc.stderr.strip()}")
        for link in self.links:
            sh("ip", "link", "del", link, check=False)
        for ns in self.netns:
            sh("ip", "netns", "del", ns, check=False)
        return problems


@pytest.fixture
def net(pyrunc: Pyrunc) -> Iterator[Net]:
    n = Net(pyrunc)
    try:
        yield n
    finally:
        problems = n.teardown()
    assert not problems, problems


def net_bundle(bundle: Bundle) -> Bundle:
    """The busybox bundle with CAP_NET_RAW (busybox ping uses a raw socket)."""
    caps = bundle.process["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind] = sorted(set(caps[kind]) | {"CAP_NET_RAW"})
    bundle.write()
    return bundle


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def container_pid(pyrunc: Pyrunc, cid: str) -> int:
    return json.loads(pyrunc("state", cid, check=True).stdout)["pid"]


def in_container_netns(pid: int, *cmd: str) -> subprocess.CompletedProcess[str]:
    return sh("nsenter", "-t", str(pid), "-n", *cmd, check=False)


# --- bridge networks -------------------------------------------------------------------------


def test_two_containers_ping_each_other(net: Net, bundle: Bundle, pyrunc: Pyrunc) -> None:
    info = net.create("pair")
    net_bundle(bundle).set_args("sleep", "60")
    first = new_id("n")
    pyrunc("run", "-d", "--bundle", bundle.path, "--network", "pair", first, check=True)
    ip = net.inspect("pair")["containers"][first]
    assert ip.startswith(info["subnet"].rsplit(".", 1)[0])
    bundle.sh(f"ip -4 -o addr show eth0; ip route; ping -c1 -W3 {ip}")
    proc = pyrunc("run", "--bundle", bundle.path, "--network", "pair", new_id("n"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"default via {info['gateway']} dev eth0" in proc.stdout
    assert "1 packets received" in proc.stdout


def test_gateway_and_nat_beyond_it(net: Net, bundle: Bundle, pyrunc: Pyrunc) -> None:
    ns, _, far = net.internet()
    nat = net.create("natnet", 0)
    plain = net.create("plainnet", 1, "--no-nat")
    net_bundle(bundle).sh(f"ping -c1 -W2 $GW && ping -c1 -W2 {far}")
    for name, info, reaches in (("natnet", nat, True), ("plainnet", plain, False)):
        bundle.process["env"].append(f"GW={info['gateway']}")
        bundle.write()
        proc = pyrunc("run", "--bundle", bundle.path, "--network", name, new_id("n"))
        bundle.process["env"].pop()
        out = proc.stdout + proc.stderr
        assert f"PING {info['gateway']}" in out and out.count("1 packets received") >= 1, out
        # without NAT "the internet" sees the container's own address and has no route back
        assert (proc.returncode == 0) == reaches, out


def wait_http(url: str, deadline: float = 10) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def test_published_port_answers_on_loopback_and_host_addresses(
    net: Net, bundle: Bundle, pyrunc: Pyrunc
) -> None:
    ns, host_ip, far = net.internet()
    net.create("web")
    www = bundle.rootfs / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from the container\n")
    bundle.set_args("httpd", "-f", "-p", "8000", "-h", "/www")
    port = 20000 + net.n * 10 + os.getpid() % 10
    cid = new_id("web")
    pyrunc("run", "-d", "--bundle", bundle.path, "--network", "web",
           "--publish", f"{port}:8000/tcp", cid, check=True)
    assert f"tcp . {port} : " in nft_ports()
    # from this host: loopback, and an address of the host's own (on the test's veth)
    assert wait_http(f"http://127.0.0.1:{port}/") == "hello from the container\n"
    assert wait_http(f"http://{host_ip}:{port}/") == "hello from the container\n"
    # from outside the host ("the internet" namespace) to the host's address: prerouting
    fetch = f"import urllib.request as u; print(u.urlopen({f'http://{host_ip}:{port}/'!r}, " \
            "timeout=5).read().decode(), end='')"
    proc = sh("ip", "netns", "exec", ns, sys.executable, "-c", fetch, check=False)
    assert proc.stdout == "hello from the container\n", proc.stderr
    # a second container cannot take the same host port: one line, and nothing left of it
    other = new_id("web")
    proc = pyrunc("run", "-d", "--bundle", bundle.path, "--network", "web",
                  "--publish", f"{port}:8000", other)
    assert "already published" in error_line(proc)
    assert not os.path.exists(pyrunc.root / other)
    assert other not in net.inspect("web")["containers"]
    # hairpin: a container on the bridge reaches the published port at the host's address
    bundle.sh(f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {host_ip} {port}")
    proc = pyrunc("run", "--bundle", bundle.path, "--network", "web", new_id("web"))
    assert "200 OK" in proc.stdout and "hello from the container" in proc.stdout, proc.stderr
    pyrunc("delete", "--force", cid, check=True)
    assert f"tcp . {port} : " not in nft_ports()
    assert far


def test_annotations_resolv_conf_and_hosts(net: Net, bundle: Bundle, pyrunc: Pyrunc) -> None:
    info = net.create("annot")
    before = sorted(os.listdir(bundle.rootfs / "etc"))
    hosts_before = (bundle.rootfs / "etc" / "hosts").read_text()
    bundle.config["annotations"] = {
        "org.pyrunc.network": "annot",
        "org.pyrunc.network.ip": info["gateway"].rsplit(".", 1)[0] + ".77",
        "org.pyrunc.network.dns": "10.231.255.53",
        "org.pyrunc.network.hosts": "true",
    }
    bundle.sh("ip -4 -o addr show eth0; cat /etc/resolv.conf /etc/hosts")
    proc = pyrunc("run", "--bundle", bundle.path, new_id("a"))
    assert proc.returncode == 0, proc.stderr
    ip = info["gateway"].rsplit(".", 1)[0] + ".77"
    assert f"inet {ip}/24" in proc.stdout
    assert "nameserver 10.231.255.53" in proc.stdout
    assert f"{ip}\tpyrunc" in proc.stdout  # the bundle's hostname
    # the image is not written: /etc/hosts is unchanged, resolv.conf at most an empty mountpoint
    assert (bundle.rootfs / "etc" / "hosts").read_text() == hosts_before
    assert set(os.listdir(bundle.rootfs / "etc")) <= set(before) | {"resolv.conf"}
    resolv = bundle.rootfs / "etc" / "resolv.conf"
    assert not resolv.exists() or resolv.read_text() == ""


def test_fifty_containers_eight_at_a_time_get_distinct_addresses(
    net: Net, bundle: Bundle, pyrunc: Pyrunc
) -> None:
    net.create("many")
    bundle.set_args("sleep", "60")
    ids = [new_id("m") for _ in range(50)]

    def create(cid: str) -> subprocess.CompletedProcess[str]:
        return pyrunc("create", "--bundle", bundle.path, "--network", "many", cid, timeout=120)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, ids))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    leases = net.inspect("many")["containers"]
    assert sorted(leases) == sorted(ids)
    assert len(set(leases.values())) == 50
    # and each container really has its address on eth0
    for cid in ids[:: 7]:
        out = in_container_netns(container_pid(pyrunc, cid), "ip", "-4", "-o", "addr", "show",
                                 "eth0").stdout
        assert f"inet {leases[cid]}/24" in out


def test_delete_leaves_no_veth_lease_or_rule(net: Net, bundle: Bundle, pyrunc: Pyrunc) -> None:
    info = net.create("gone")
    bundle.set_args("sleep", "60")
    cid = new_id("g")
    port = 21000 + net.n * 10 + os.getpid() % 10
    pyrunc("create", "--bundle", bundle.path, "--network", "gone", "--publish", f"{port}:80/udp",
           cid, check=True)
    record = json.loads((pyrunc.root / cid / "network.json").read_text())
    veth = record["host_veth"]
    assert link_exists(veth) and link_exists(info["bridge"])
    assert f"udp . {port} : {record['ip']} . 80" in nft_ports()
    assert net.inspect("gone")["containers"] == {cid: record["ip"]}
    proc = pyrunc("network", "rm", "gone")
    assert "in use" in error_line(proc)
    pyrunc("delete", cid, check=True)
    assert not link_exists(veth)
    assert f"udp . {port} :" not in nft_ports()
    assert net.inspect("gone")["containers"] == {}
    pyrunc("network", "rm", "gone", check=True)
    assert not link_exists(info["bridge"])
    assert info["subnet"] not in sh("nft", "list", "ruleset").stdout
    assert "gone" not in pyrunc("network", "ls", "-q", check=True).stdout.split()


def test_failed_create_removes_its_veth_lease_and_rules(
    net: Net, bundle: Bundle, pyrunc: Pyrunc
) -> None:
    net.create("failed")
    # the createRuntime hook fails after the network was made: create undoes all of it
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.set_args("true")
    cid = new_id("f")
    port = 23000 + net.n * 10 + os.getpid() % 10
    from pyrunc.network.attach import host_veth_name

    veth = host_veth_name(str(pyrunc.root), cid)  # (other pyrunc runs on the host make theirs)
    proc = pyrunc("create", "--bundle", bundle.path, "--network", "failed", "--publish",
                  f"{port}:80", cid)
    assert "createRuntime" in error_line(proc)
    assert not os.path.exists(pyrunc.root / cid)
    assert not link_exists(veth)
    assert f"tcp . {port} :" not in nft_ports()
    assert net.inspect("failed")["containers"] == {}


def test_sigkilled_create_leaves_nothing_after_delete_force(
    net: Net, bundle: Bundle, pyrunc: Pyrunc, tmp_path: Path
) -> None:
    net.create("killed")
    marker = tmp_path / "hook-ran"
    # the createRuntime hook runs after the network is made and before state.json is written
    bundle.config["hooks"] = {"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"echo $$ > {marker}; exec sleep 60"]}]}
    bundle.set_args("true")
    cid = new_id("k")
    port = 22000 + net.n * 10 + os.getpid() % 10
    running = pyrunc.start_background("create", "--bundle", bundle.path, "--network", "killed",
                                      "--publish", f"{port}:80", cid)
    end = time.monotonic() + 20
    while not (marker.exists() and marker.read_text().strip()):
        assert time.monotonic() < end and running.proc.poll() is None, "the hook never ran"
        time.sleep(0.05)
    hook_pid = int(marker.read_text())
    record = json.loads((pyrunc.root / cid / "network.json").read_text())
    assert link_exists(record["host_veth"])
    hook_start = read_proc_stat(hook_pid)
    assert hook_start is not None
    os.kill(running.pid, signal.SIGKILL)
    running.wait()
    assert not (pyrunc.root / cid / "state.json").exists()
    try:
        # a delete --force killed after its network teardown, before it removed the directory:
        # the next one tears down again (idempotent) and finishes
        from pyrunc.network.attach import teardown

        teardown(str(pyrunc.root / cid))
        assert not link_exists(record["host_veth"])
        pyrunc("delete", "--force", cid, check=True)
        assert not process_alive(hook_pid, hook_start[1]), "the create's hook outlived delete -f"
    finally:
        if process_alive(hook_pid, hook_start[1]):
            os.kill(hook_pid, signal.SIGKILL)
    assert not os.path.exists(pyrunc.root / cid)
    pyrunc("delete", "--force", cid, check=True)  # nothing left: still exit 0, as runc
    assert not link_exists(record["host_veth"])
    assert f"tcp . {port} :" not in nft_ports()
    assert net.inspect("killed")["containers"] == {}


def test_network_commands_and_refusals(net: Net, bundle: Bundle, pyrunc: Pyrunc) -> None:
    net.create("cmds")
    listed = pyrunc("network", "ls", check=True).stdout
    assert "cmds" in listed and net.subnet() in listed
    assert "already exists" in error_line(pyrunc("network", "create", "cmds"))
    assert "--subnet" in error_line(pyrunc("network", "create", "--subnet", net.subnet(), "x2"))
    assert "--subnet" in error_line(pyrunc("network", "create", "--subnet", "nonsense", "x3"))
    assert "--gateway" in error_line(
        pyrunc("network", "create", "--subnet", net.subnet(1), "--gateway", "10.0.0.1", "x4"))
    assert "--bridge" in error_line(pyrunc("network", "create", "--bridge", "lo", "x5"))
    assert "does not exist" in error_line(pyrunc("network", "rm", "nope"))
    bundle.set_args("true")
    b = str(bundle.path)
    for args, words in (
        (("--network", "nope"), ("--network", "does not exist")),
        (("--network", "cmds:ip=10.1.2.3"), ("ip=10.1.2.3",)),
        (("--network", "cmds:mtu=9000"), ("--network", "mtu=9000")),
        (("--network", "cmds", "--publish", "80"), ("--publish", "HOSTPORT:PORT")),
        (("--network", "cmds", "--publish", "70000:80"), ("--publish",)),
        (("--network", "cmds", "--publish", "8080:80/sctp"), ("--publish",)),
        (("--publish", "8080:80"), ("--publish", "--network")),
    ):
        cid = new_id("r")
        message = error_line(pyrunc("create", "--bundle", b, *args, cid))
        for word in words:
            assert word in message, (args, message)
        assert not os.path.exists(pyrunc.root / cid)
    bundle.config["annotations"] = {"org.pyrunc.network": "cmds",
                                    "org.pyrunc.network.ports": "8080:80,bad"}
    bundle.write()
    message = error_line(pyrunc("create", "--bundle", b, new_id("r")))
    assert "annotations.org.pyrunc.network.ports" in message
    bundle.config["annotations"] = {"org.pyrunc.network.ip": "10.1.1.1"}
    bundle.write()
    message = error_line(pyrunc("create", "--bundle", b, new_id("r")))
    assert "annotations.org.pyrunc.network.ip" in message
    # no network namespace of its own
    bundle.config["annotations"] = {"org.pyrunc.network": "cmds"}
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "network"]
    bundle.write()
    message = error_line(pyrunc("create", "--bundle", b, new_id("r")))
    assert "annotations.org.pyrunc.network" in message and "network namespace" in message
    message = error_line(pyrunc("create", "--bundle", b, "--network", "cmds", new_id("r")))
    assert "--network" in message and "network namespace" in message
    assert net.inspect("cmds")["containers"] == {}
    assert os.listdir(pyrunc.root) == [".networks"]
    # the network records are not a container: delete --force leaves them alone
    pyrunc("delete", "--force", ".networks", check=True)
    assert net.inspect("cmds")["name"] == "cmds"


# --- linux.netDevices ------------------------------------------------------------------------


@pytest.fixture
def veth(net: Net) -> tuple[str, str]:
    """A veth pair made by the test, one end with IPv4 and IPv6 global addresses."""
    a, b = f"pyrtd{os.getpid() % 1000}x{net.n}", f"pyrte{os.getpid() % 1000}x{net.n}"
    net.links += [a, b]
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    sh("ip", "addr", "add", f"10.231.{net.n}.5/24", "dev", a)
    sh("ip", "addr", "add", f"fd00:231:{net.n}::5/64", "dev", a, "nodad")
    sh("ip", "link", "set", b, "up")
    return a, b


@pytest.mark.parametrize("new_name", ["ext0", "ext%d", None])
def test_net_devices_moves_renames_keeps_addresses_and_up(
    veth: tuple[str, str], net: Net, bundle: Bundle, pyrunc: Pyrunc, new_name: str | None
) -> None:
    dev, peer = veth
    bundle.config["linux"]["netDevices"] = {dev: {"name": new_name} if new_name else {}}
    shown = (new_name or dev).replace("%d", "0")
    bundle.set_args("sleep", "60")
    cid = new_id("d")
    pyrunc("run", "-d", "--bundle", bundle.path, cid, check=True)
    assert not link_exists(dev)  # gone from the host
    pid = container_pid(pyrunc, cid)
    out = in_container_netns(pid, "ip", "-o", "addr", "show", "dev", shown).stdout
    assert f"inet 10.231.{net.n}.5/24" in out, out
    assert f"inet6 fd00:231:{net.n}::5/64" in out, out
    flags = in_container_netns(pid, "ip", "-o", "link", "show", "dev", shown).stdout
    assert ",UP" in flags.split(">")[0], flags
    assert json.loads(pyrunc("features", check=True).stdout)["linux"]["netDevices"] == {
        "enabled": True}
    pyrunc("delete", "--force", cid, check=True)
    # not moved back (the spec forbids it): a veth dies with the namespace, and its peer too
    end = time.monotonic() + 10
    while link_exists(peer) and time.monotonic() < end:
        time.sleep(0.05)
    assert not link_exists(dev) and not link_exists(peer)


def test_net_devices_refusals_name_their_field(
    veth: tuple[str, str], bundle: Bundle, pyrunc: Pyrunc
) -> None:
    dev, peer = veth
    b = str(bundle.path)
    cases = [
        ({"pyrtnosuchdev": {}}, "linux.netDevices.pyrtnosuchdev", "no such network device"),
        ({dev: {"name": "a-name-far-too-long"}}, f"linux.netDevices.{dev}.name", "invalid"),
        ({dev: {"name": "lo"}}, f"linux.netDevices.{dev}.name", "exists"),
        ({dev: {"name": "x0"}, peer: {"name": "x0"}}, f"linux.netDevices.{peer}.name", "x0"),
        ({"bad/name": {}}, "linux.netDevices.bad/name", "invalid"),
    ]
    bundle.set_args("true")
    for devices, field, word in cases:
        bundle.config["linux"]["netDevices"] = devices
        bundle.write()
        cid = new_id("dr")
        message = error_line(pyrunc("create", "--bundle", b, cid))
        assert field in message and word in message, (devices, message)
        assert not os.path.exists(pyrunc.root / cid)
        assert link_exists(dev) and link_exists(peer)  # nothing was moved
    bundle.config["linux"]["netDevices"] = {dev: {}}
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] != "network"]
    bundle.write()
    message = error_line(pyrunc("create", "--bundle", b, new_id("dr")))
    assert "linux.netDevices" in message and "network namespace" in message
    assert link_exists(dev)


# --- the rtnetlink module (pyrunc.network.rtnl, links) against real devices -----------------


@pytest.fixture
def rtns(net: Net) -> Iterator[tuple[str, int]]:
    """A network namespace of the test's own, as (name, fd)."""
    ns = f"pyrtr{os.getpid() % 1000}x{net.n}"
    sh("ip", "netns", "add", ns)
    net.netns.append(ns)
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield ns, fd
    finally:
        os.close(fd)


def test_rtnl_veth_bridge_address_route_as_ip_shows_them(
    net: Net, rtns: tuple[str, int]
) -> None:
    from pyrunc.network import rtnl

    ns, fd = rtns
    tag = f"{os.getpid() % 1000}x{net.n}"
    bridge, host = f"pyrtq{tag}", f"pyrtv{tag}"
    net.links += [host, bridge]
    home = os.stat("/proc/thread-self/ns/net").st_ino
    with rtnl.Rtnl() as rt, rtnl.Rtnl(fd) as inside:
        assert os.stat("/proc/thread-self/ns/net").st_ino == home  # back in our namespace
        assert inside.link_indexes() == [1]  # a new namespace: only lo
        rt.add_bridge(bridge)
        br = rt.link_index(bridge)
        assert br is not None and rt.link_index(f"pyrtnone{tag}") is None
        rt.add_address(br, f"10.231.{net.n}.1", 24)
        assert [(a["address"], a["prefixlen"]) for a in rt.addresses(br, rtnl.AF_INET)] == [
            (f"10.231.{net.n}.1", 24)]
        rt.add_veth(host, "eth7", fd, br)
        assert not link_exists("eth7") and rt.link_index("eth7") != inside.link_index("eth7")
        eth = inside.link_index("eth7")
        assert eth is not None
        inside.set_link(name="lo", up=True)
        inside.add_address(eth, f"10.231.{net.n}.9", 24)
        inside.set_link(eth, up=True)
        inside.add_default_route(f"10.231.{net.n}.1", eth)
    assert f"master {bridge} state UP" in sh("ip", "link", "show", host).stdout
    assert f"inet 10.231.{net.n}.9/24 scope global eth7" in sh(
        "ip", "-n", ns, "addr", "show", "eth7").stdout
    assert sh("ip", "-n", ns, "route", "show", "default").stdout.strip() == (
        f"default via 10.231.{net.n}.1 dev eth7 proto static")
    assert "UP" in sh("ip", "-n", ns, "link", "show", "lo").stdout.split(">")[0]


def test_rtnl_errors_are_one_line_and_leave_nothing(
    net: Net, rtns: tuple[str, int]
) -> None:
    from pyrunc.errors import PyruncError
    from pyrunc.network import links, rtnl

    ns, fd = rtns
    tag = f"{os.getpid() % 1000}x{net.n}"
    bridge, host, other = f"pyrtq{tag}", f"pyrtv{tag}", f"pyrtw{tag}"
    net.links += [host, bridge, other]
    sh("ip", "link", "add", other, "type", "veth", "peer", "name", "eth0", "netns", ns)
    with rtnl.Rtnl() as rt:
        # a bridge that does not exist, before anything is made
        with pytest.raises(PyruncError, match=f"^bridge {bridge} does not exist$"):
            links.attach(rt, os.getpid(), bridge, host, "10.231.0.2", 24, "10.231.0.1")
        rt.add_bridge(bridge)
        br = rt.link_index(bridge)
        assert br is not None
        with pytest.raises(rtnl.NetlinkError) as clash:  # the name is taken
            rt.add_bridge(bridge)
        assert clash.value.errno == errno.EEXIST
        assert str(clash.value).endswith(f"create bridge {bridge}: file exists")
        # the host end's name is taken by another link: refused, nothing made in the netns
        with pytest.raises(rtnl.NetlinkError, match=f"create veth {other}: file exists"):
            rt.add_veth(other, "eth1", fd, br)
        # the peer's name is taken in the container: refused, and the host end is not left
        with pytest.raises(rtnl.NetlinkError, match=f"create veth {host}: file exists"):
            rt.add_veth(host, "eth0", fd, br)
        assert not link_exists(host)
        with rtnl.Rtnl(fd) as inside:
            assert inside.link_index("eth1") is None
            eth0 = inside.link_index("eth0")
            assert eth0 is not None
            inside.add_address(eth0, f"10.231.{net.n}.3", 24)
            with pytest.raises(rtnl.NetlinkError, match="file exists") as twice:
                inside.add_address(eth0, f"10.231.{net.n}.3", 24)
            assert twice.value.errno == errno.EEXIST
            with pytest.raises(rtnl.NetlinkError) as gone:  # a link index that is not there
                inside.set_link(9999, up=True, what="set it up")
            assert gone.value.errno == errno.ENODEV and "set it up: no such device" in str(
                gone.value)
        # a master that is not a bridge: the kernel's refusal, one line
        with pytest.raises(rtnl.NetlinkError) as master:
            rt.add_veth(host, "eth2", fd, rt.link_index(other) or 0)
        assert "\n" not in str(master.value) and f"create veth {host}: " in str(master.value)
        assert not link_exists(host)
        assert rt.delete_link(bridge) is True and rt.delete_link(bridge) is False
    assert rtnl.delete_link(f"pyrtnone{tag}") is False


def test_veth_name_clash_at_create_is_one_line_and_undone(
    net: Net, bundle: Bundle, pyrunc: Pyrunc
) -> None:
    """The host end's name (a hash of the root and the id) is taken: one line, no container,
    no lease. (The teardown then deletes the link of that name, as it would a leftover of the
    same container: the name is the container's.)"""
    from pyrunc.network.attach import host_veth_name

    net.create("clash")
    bundle.set_args("true")
    cid = new_id("c")
    taken = host_veth_name(str(pyrunc.root), cid)
    net.links.append(taken)
    peer = f"pyrtp{net.n}x{os.getpid()}"[:15]
    sh("ip", "link", "add", taken, "type", "veth", "peer", "name", peer)
    message = error_line(pyrunc("create", "--bundle", bundle.path, "--network", "clash", cid))
    assert f"create veth {taken}: file exists" in message, message
    assert not os.path.exists(pyrunc.root / cid)
    assert net.inspect("clash")["containers"] == {}


def test_nft_fixed_part_written_once_and_healed_when_changed(
    net: Net, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A join adds only elements while the table prints as pyrunc made it; a flushed chain, a
    deleted set or a missing table gets the fixed part rewritten in the same transaction. On a
    table of the test's own (the shared `ip pyrunc` is left alone)."""
    from pyrunc.network import nft

    table = f"ip pyrtn{os.getpid() % 100000}x{net.n}"
    monkeypatch.setattr(nft, "_BASE", nft._BASE.replace(nft.TABLE, table))
    monkeypatch.setattr(nft, "TABLE", table)
    monkeypatch.setattr(nft, "_SKELETON", str(tmp_path / "skeleton"))
    batches: list[str] = []
    real_run = nft.run

    def run(commands: str, **kw: object) -> str:
        batches.append(commands)
        return real_run(commands, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(nft, "run", run)

    def join(k: int) -> bool:
        """attach one address; True when the fixed part was (re)written."""
        del batches[:]
        nft.attach(net.subnet(), True, [("tcp", 24000 + k, 80)], f"10.231.{net.n}.{k}")
        return any("flush chain" in b for b in batches)

    def rules() -> str:
        return sh("nft", "list", "chain", *table.split(), "postrouting").stdout

    try:
        assert join(2)  # no table yet
        assert rules().count("masquerade") == 3
        assert not join(3)  # as we made it: elements only
        sh("nft", "flush", "chain", *table.split(), "postrouting")
        assert join(4) and rules().count("masquerade") == 3  # healed
        assert not join(5)
        sh("nft", "delete", "set", *table.split(), "natsubnets", check=False)
        sh("nft", "delete", "table", *table.split())
        assert join(6) and rules().count("masquerade") == 3
        ports = sh("nft", "list", "map", *table.split(), "ports").stdout
        assert f"tcp . 24006 : 10.231.{net.n}.6 . 80" in ports and "24005" not in ports
    finally:
        sh("nft", "delete", "table", *table.split(), check=False)


def test_names_and_leases_without_ipaddress(tmp_path: Path) -> None:
    """The store's own checks (it no longer imports re or ipaddress): names, and leases of a
    /30 (one host besides the gateway) and of a /24, asked-for addresses refused by field."""
    from pyrunc.errors import PyruncError
    from pyrunc.network import create_network
    from pyrunc.network.store import NetworkStore, valid_name

    for good in ("a", "A.b_c-9", "x" * 64):
        assert valid_name(good) == good
    for bad in ("", "-a", ".a", "a/b", "a b", "a\n", "x" * 65, "é"):
        with pytest.raises(PyruncError, match="invalid network name"):
            valid_name(bad)
    root = str(tmp_path)
    create_network("tiny", subnet="10.231.199.4/30", bridge="pyrtnolink0", root=root)
    create_network("wide", subnet="10.231.198.0/24", gateway="10.231.198.7",
                   bridge="pyrtnolink1", root=root)
    for cid in ("c1", "c2", "c3"):
        (tmp_path / cid).mkdir()
    with NetworkStore(root) as store:
        tiny, wide = store.load("tiny"), store.load("wide")
        assert store.lease(tiny, "c1", None) == "10.231.199.6"  # .5 is the gateway
        with pytest.raises(PyruncError, match="no free address in 10.231.199.4/30"):
            store.lease(tiny, "c2", None)
        assert store.lease(tiny, "c1", None) == "10.231.199.6"  # the same container: again
        assert [store.lease(wide, c, None) for c in ("c1", "c2")] == [
            "10.231.198.1", "10.231.198.2"]
        assert store.lease(wide, "c3", "10.231.198.254") == "10.231.198.254"
        for wanted, word in (("10.231.198.7", "not a free host"), ("10.231.198.255", "not a free"),
                             ("10.231.198.0", "not a free"), ("10.231.197.9", "not a free"),
                             ("10.231.198.2", "already leased to c2"),
                             ("10.231.198.08", "not an IPv4 address"),
                             ("10.231.198", "not an IPv4 address")):
            with pytest.raises(PyruncError, match=f"ip={wanted}: {word}"):
                store.lease(wide, "c9", wanted)
        store.release("wide", "c2")
        assert store.lease(store.load("wide"), "c9", None) == "10.231.198.2"


# --- the API and the imports -----------------------------------------------------------------


def test_python_api(net: Net, bundle: Bundle, pyrunc: Pyrunc) -> None:
    bundle.set_args("sleep", "60")
    cid = new_id("api")
    subnet = net.subnet()
    bridge = f"pyrtb{os.getpid() % 1000}y{net.n}"
    code = f"""
import json, sys
import pyrunc.network as network
from pyrunc.api import Runtime
root = {str(pyrunc.root)!r}
network.create_network("apinet", subnet={subnet!r}, bridge={bridge!r}, root=root)
rt = Runtime(root, allow_writable_interpreter=True)
pid = rt.create({cid!r}, {str(bundle.path)!r}, network="apinet", publish=["23456:80"]).pid
info = network.inspect_network("apinet", root=root)
print(json.dumps([pid, info, [n["name"] for n in network.list_networks(root=root)]]))
"""
    net.networks.append("apinet")
    out = pyrunc.root.parent / "api.out"
    err = pyrunc.root.parent / "api.err"
    with open(out, "w") as f, open(err, "w") as e:  # files: the created init keeps its stdio
        proc = subprocess.run([sys.executable, "-c", code], stdout=f, stderr=e,
                              stdin=subprocess.DEVNULL, cwd=REPO, timeout=60)
    assert proc.returncode == 0, err.read_text()
    pid, info, names = json.loads(out.read_text())
    assert pid > 0 and names == ["apinet"] and cid in info["containers"]
    assert f"tcp . 23456 : {info['containers'][cid]} . 80" in nft_ports()
    pyrunc("delete", "--force", cid, check=True)
    code = f"import pyrunc.network as n; n.remove_network('apinet', root={str(pyrunc.root)!r})"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)
    assert not link_exists(bridge)


def test_sandbox_network(net: Net, busybox_bundle: Path, pyrunc: Pyrunc) -> None:
    from pyrunc import sandbox

    info = net.create("sbnet")
    parent = Path(tempfile.mkdtemp(prefix="pyrt-sandbox-"))
    try:
        os.chmod(parent, 0o755)  # the sandbox's root is an unprivileged host uid
        subprocess.run(["cp", "-a", str(busybox_bundle / "rootfs"), str(parent)], check=True)
        r = sandbox.run(["sh", "-c", "ip -4 -o addr show eth0; ip route; id -u"],
                        rootfs=str(parent / "rootfs"), network="sbnet", capture_output=True,
                        text=True, timeout=30, root=str(pyrunc.root))
    finally:
        shutil.rmtree(parent)
    assert r.returncode == 0, r.stderr
    prefix = info["gateway"].rsplit(".", 1)[0]
    assert f"inet {prefix}." in r.stdout
    assert f"default via {info['gateway']} dev eth0" in r.stdout
    assert net.inspect("sbnet")["containers"] == {}  # deleted with its lease


def imports(root: Path, *args: str) -> set[str]:
    """The modules one CLI command imports (-X importtime, in the interpreter it runs in)."""
    code = ("import sys; from pyrunc.cli import main; from pyrunc import sealed; "
            "sealed.running_sealed = lambda: True; main(sys.argv[1:])")
    with open(root.parent / "importtime.err", "w+") as err:
        subprocess.run([sys.executable, "-X", "importtime", "-c", code, "--root", str(root),
                        *args], stdout=subprocess.DEVNULL, stderr=err, cwd=REPO, timeout=60,
                       stdin=subprocess.DEVNULL)
        err.seek(0)
        text = err.read()
    return {line.rsplit("|", 1)[1].strip() for line in text.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_only_a_networked_create_imports_the_netlink_code(
    net: Net, bundle: Bundle, pyrunc: Pyrunc
) -> None:
    """pyroute2 is imported by nothing (the join speaks rtnetlink itself); the netlink and
    nftables modules only by a networked create and by the delete that undoes one."""
    net.create("imp")
    bundle.set_args("sleep", "60")
    plain, joined = new_id("i"), new_id("i")
    root = pyrunc.root

    def network_code(*args: str) -> set[str]:
        return {m for m in imports(root, *args)
                if m.split(".")[0] == "pyroute2" or m.startswith("pyrunc.network")
                or m in ("ctypes", "socket")}

    assert not network_code("create", "--bundle", str(bundle.path), plain)
    used = network_code("create", "--bundle", str(bundle.path), "--network", "imp", joined)
    assert {"pyrunc.network.rtnl", "pyrunc.network.links", "pyrunc.network.nft"} <= used, used
    assert not {m for m in used if m.split(".")[0] == "pyroute2"} and "socket" not in used, used
    for args in (("state", joined), ("list",), ("start", plain), ("kill", plain, "KILL"),
                 ("delete", "-f", plain), ("features",)):
        assert not network_code(*args), args
    for args in (("network", "ls"), ("network", "inspect", "imp")):  # the records, no netlink
        assert not {m for m in network_code(*args)
                    if m in ("pyrunc.network.rtnl", "pyrunc.network.links", "ctypes")
                    or m.split(".")[0] == "pyroute2"}, args
    undo = network_code("delete", "-f", joined)
    assert "pyrunc.network.links" not in undo and not any(
        m.split(".")[0] == "pyroute2" for m in undo), undo
    assert not os.path.exists(root / joined) and not os.path.exists(root / plain)
