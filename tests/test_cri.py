"""The Kubernetes path: a CRI client drives containerd 1.6's CRI plugin, whose runc v2 shim runs
pyrunc, the way a kubelet does; every scenario runs with the runtime handler `pyrunc` and with
the default handler `runc` in the same run, so that a failure of pyrunc can be told apart from a
problem of the machine.

The client is Python gRPC over containerd's socket with the project's own minimal CRI v1
`tests/cri/api.proto` (the kubelet's package, services, methods and field numbers), compiled
with grpcio-tools into a temporary directory when the module starts. Exec's streaming endpoint
is spoken with a small WebSocket client (the kubelet streaming server's `v4.channel.k8s.io`).

The containerd is private: a subprocess with its own config.toml (root, state, sockets, the
plugins' /opt, the netns mounts and the CNI configuration and IPAM data in a temporary
directory), the CRI plugin on with `restrict_oom_score_adj = true` (this host has no
CAP_SYS_RESOURCE), no AppArmor, no registry (the sandbox image and the busybox image are built
here with umoci and `ctr images import`ed). Networking is Debian's CNI plugins: a bridge with
this session's own name and subnet, host-local IPAM, loopback. Pods live under their own cgroup
parent. Teardown removes every pod, stops containerd, kills any shim it left, deletes what the
runtimes still hold, unmounts and removes the directory, the bridge and the cgroups, even when a
test failed.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import pytest
from conftest import new_id
from helpers_clients import (
    HostState,
    build_oci_archive,
    cgroup_mounts,
    delete_runtime_leftovers,
    kill_processes_mentioning,
    mount_points,
    processes_mentioning,
    pyrunc_executable,
    run_cmd,
    runtime_binary,
    state_of,
    unmount_under,
    wait_until,
)

grpc = pytest.importorskip("grpc", reason="grpcio is not installed: pip install '.[test]'")
pytest.importorskip("grpc_tools", reason="grpcio-tools is not installed: pip install '.[test]'")

PROTO = Path(__file__).resolve().parent / "cri" / "api.proto"
HANDLERS = ("pyrunc", "runc")
K8S_NAMESPACE = "k8s.io"  # the containerd namespace of the CRI plugin
CNI_BIN = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
SUFFIX = str(os.getpid())
CGROUP_PARENT = f"pyrcri-{SUFFIX}"  # every pod's cgroup parent is /CGROUP_PARENT/<pod>
BRIDGE = f"pyrcri{int(SUFFIX) % 100000}"
NETWORK = f"pyrcri-{SUFFIX}"
SUBNET_OCTET = 232
SUBNET = f"10.{SUBNET_OCTET}.{int(SUFFIX) % 250}."  # a /24 of this session
SANDBOX_IMAGE = "localhost/pyrcri-pause:latest"  # ctr import names them BASE:<ref name>
BUSYBOX = "localhost/pyrcri-busybox:latest"
# the sandbox's entrypoint: wait until told to stop
PAUSE = "#!/bin/sh\ntrap 'exit 0' TERM INT\nwhile :; do sleep 3600 & wait $!; done\n"
# the capabilities containerd gives a container by default (docker's list), by number
DEFAULT_CAPS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18,
    "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31,
}
# what the kubelet sends for a container that is not privileged (the Default proc mount type)
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) (.*)$"
)
# a long-running main process that keeps a second process at every moment
SERVICE = "echo ready; while :; do sleep 1 & wait $!; done"
# the streaming server resizes an exec's pty after it started: wait until the size has arrived
WAIT_FOR_SIZE = (
    'for i in $(seq 100); do s=$(stty size 2>/dev/null); [ -n "$s" ] && [ "$s" != "0 0" ] '
    '&& break; sleep 0.05; done; echo "size $s"'
)


# --- the CRI client ----------------------------------------------------------------------


def compile_cri_api(out: Path) -> tuple[ModuleType, ModuleType]:
    """tests/cri/api.proto compiled by grpcio-tools into `out`, imported."""
    from grpc_tools import protoc

    rc = protoc.main(
        ["protoc", f"-I{PROTO.parent}", f"--python_out={out}", f"--grpc_python_out={out}",
         str(PROTO)]
    )
    assert rc == 0, f"protoc failed on {PROTO}"
    sys.path.insert(0, str(out))
    try:
        pb2 = importlib.import_module("api_pb2")
        pb2_grpc = importlib.import_module("api_pb2_grpc")
    finally:
        sys.path.remove(str(out))
    return pb2, pb2_grpc


class Cri:
    """A private containerd with the CRI plugin, and a CRI client of it."""

    def __init__(self, tmp: Path, pyrunc: Path, pb: ModuleType, pb_grpc: ModuleType) -> None:
        self.tmp = tmp
        self.pyrunc = pyrunc
        self.pb = pb
        self.sock = tmp / "containerd.sock"
        self.state = tmp / "state"
        self.logs = tmp / "pod-logs"
        self.cni_conf = tmp / "cni" / "net.d"
        self.cni_conf.mkdir(parents=True)
        self.logs.mkdir()
        (self.cni_conf / "10-pyrcri.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0",
            "name": NETWORK,
            "plugins": [{
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": f"{SUBNET}0/24"}]],
                    "dataDir": str(tmp / "cni" / "ipam"),
                },
            }],
        }))
        cri = '[plugins."io.containerd.grpc.v1.cri"'
        runtimes = "\n".join(
            f"{cri}.containerd.runtimes.{handler}]\n"
            '  runtime_type = "io.containerd.runc.v2"\n'
            f"{cri}.containerd.runtimes.{handler}.options]\n"
            f'  BinaryName = "{runtime_binary(handler, pyrunc)}"\n'
            f'  Root = "{self.runtime_root(handler).parent}"\n'
            "  SystemdCgroup = false\n"
            for handler in HANDLERS
        )
        self.config = tmp / "config.toml"
        self.config.write_text(
            "version = 2\n"
            f'root = "{tmp / "root"}"\n'
            f'state = "{self.state}"\n'
            "[grpc]\n"
            f'  address = "{self.sock}"\n'
            "[ttrpc]\n"
            f'  address = "{self.sock}.ttrpc"\n'
            "[debug]\n"
            '  address = ""\n'
            "[metrics]\n"
            '  address = ""\n'
            '[plugins."io.containerd.internal.v1.opt"]\n'
            f'  path = "{tmp / "opt"}"\n'
            f"{cri}]\n"
            f'  sandbox_image = "{SANDBOX_IMAGE}"\n'
            "  restrict_oom_score_adj = true\n"
            "  disable_apparmor = true\n"
            "  netns_mounts_under_state_dir = true\n"
            '  stream_server_address = "127.0.0.1"\n'
            '  stream_server_port = "0"\n'
            "  stats_collect_period = 1\n"
            f"{cri}.cni]\n"
            f'  bin_dir = "{CNI_BIN}"\n'
            f'  conf_dir = "{self.cni_conf}"\n'
            f"{cri}.containerd]\n"
            '  default_runtime_name = "runc"\n'
            '  snapshotter = "overlayfs"\n'
            f"{runtimes}\n"
            f"{cri}.registry]\n"
            f'  config_path = "{tmp / "certs.d"}"\n'
        )
        self.log = tmp / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.channel: Any = None
        self.runtime: Any = None
        self.images: Any = None
        self._pb_grpc = pb_grpc
        self.netns_seen: set[str] = set()

    def runtime_root(self, handler: str) -> Path:
        """Where `handler` keeps its containers' state: the shim passes --root ROOT/k8s.io."""
        return self.tmp / "runtime-root" / handler / K8S_NAMESPACE

    def start(self) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        self.channel = grpc.insecure_channel(f"unix://{self.sock}")
        self.runtime = self._pb_grpc.RuntimeServiceStub(self.channel)
        self.images = self._pb_grpc.ImageServiceStub(self.channel)

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"containerd exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            if not self.sock.exists():
                return False
            try:
                status = self.runtime.Status(self.pb.StatusRequest(), timeout=5)
            except grpc.RpcError:
                return False
            return all(c.status for c in status.status.conditions)

        assert wait_until(ready, timeout=30), f"CRI not ready:\n{self.log.read_text()[-3000:]}"

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def ctr(self, *args: Any, check: bool = True, timeout: float = 120) -> Any:
        argv = ["ctr", "--address", str(self.sock), "--namespace", K8S_NAMESPACE, *map(str, args)]
        return run_cmd(argv, timeout=timeout, check=check)

    # --- calls ------------------------------------------------------------------------

    def status(self, cid: str, verbose: bool = False) -> Any:
        return self.runtime.ContainerStatus(
            self.pb.ContainerStatusRequest(container_id=cid, verbose=verbose), timeout=30
        )

    def wait_exited(self, cid: str, timeout: float = 30) -> Any:
        exited = self.pb.CONTAINER_EXITED
        status = wait_until(
            lambda: (s := self.status(cid).status).state == exited and s, timeout=timeout
        )
        assert status, f"{cid} did not exit: {self.status(cid).status}"
        return status

    def exec_sync(self, cid: str, script: str, timeout: int = 30) -> Any:
        return self.runtime.ExecSync(
            self.pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script], timeout=timeout),
            timeout=timeout + 30,
        )

    def out(self, cid: str, script: str) -> str:
        """stdout of a successful ExecSync."""
        res = self.exec_sync(cid, script)
        assert res.exit_code == 0, (res.exit_code, res.stdout, res.stderr)
        return res.stdout.decode()

    def pid_of(self, cid: str) -> int:
        info = json.loads(self.status(cid, verbose=True).info["info"])
        return int(info["pid"])


# --- the pod --------------------------------------------------------------------------------


class Pod:
    """A pod sandbox of one handler, and its containers."""

    def __init__(
        self,
        cri: Cri,
        handler: str,
        *,
        share_pid: bool = False,
        host_network: bool = False,
        privileged: bool = False,
        sysctls: dict[str, str] | None = None,
        dns: Any = None,
    ) -> None:
        self.cri = cri
        self.pb = cri.pb
        self.handler = handler
        self.name = new_id(f"pod-{handler}")
        self.cgroup_parent = f"/{CGROUP_PARENT}/{self.name}"
        self.log_dir = cri.logs / self.name
        pb = self.pb
        self.config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=self.name, uid=str(uuid.uuid4()),
                                           namespace="pyrcri"),
            hostname="" if host_network else self.name[:63],  # the node's, with its network
            log_directory=str(self.log_dir),
            labels={"pyrcri": SUFFIX},
            dns_config=dns,
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(
                        pid=pb.POD if share_pid else pb.CONTAINER,
                        network=pb.NODE if host_network else pb.POD,
                    ),
                    privileged=privileged,
                ),
                sysctls=sysctls or {},
            ),
        )
        self.id = ""
        self.containers: list[str] = []
        self.netns = ""

    def run(self) -> Pod:
        self.id = self.cri.runtime.RunPodSandbox(
            self.pb.RunPodSandboxRequest(config=self.config, runtime_handler=self.handler),
            timeout=60,
        ).pod_sandbox_id
        info = json.loads(self.status(verbose=True).info["info"])
        for ns in info["runtimeSpec"]["linux"]["namespaces"]:
            if ns["type"] == "network":
                self.netns = ns.get("path", "")
                self.cri.netns_seen.add(self.netns)
        return self

    def status(self, verbose: bool = False) -> Any:
        return self.cri.runtime.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=self.id, verbose=verbose), timeout=30
        )

    def security(self, **kwargs: Any) -> Any:
        """A container's LinuxContainerConfig: the pod's namespaces and, unless privileged, the
        masked and read-only paths, as the kubelet sends."""
        pb = self.pb
        resources = kwargs.pop("resources", None)
        if not kwargs.get("privileged"):
            kwargs.setdefault("masked_paths", MASKED_PATHS)
            kwargs.setdefault("readonly_paths", READONLY_PATHS)
        return pb.LinuxContainerConfig(
            resources=resources,
            security_context=pb.LinuxContainerSecurityContext(
                namespace_options=self.config.linux.security_context.namespace_options, **kwargs
            ),
        )

    def container_config(
        self, name: str, script: str, *, linux: Any = None, **kwargs: Any
    ) -> Any:
        pb = self.pb
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name),
            image=pb.ImageSpec(image=BUSYBOX),
            command=["sh", "-c", script],
            log_path=f"{name}.log",
            labels={"pyrcri-container": name},
            linux=linux or self.security(),
            **kwargs,
        )

    def create(self, name: str, script: str, **kwargs: Any) -> str:
        cid = self.cri.runtime.CreateContainer(
            self.pb.CreateContainerRequest(
                pod_sandbox_id=self.id,
                config=self.container_config(name, script, **kwargs),
                sandbox_config=self.config,
            ),
            timeout=60,
        ).container_id
        self.containers.append(cid)
        return cid

    def start(self, name: str, script: str, *, wait_log: str | None = None, **kwargs: Any) -> str:
        """Create and start a container; with `wait_log`, until its log has that line."""
        cid = self.create(name, script, **kwargs)
        self.cri.runtime.StartContainer(self.pb.StartContainerRequest(container_id=cid),
                                        timeout=60)
        if wait_log is not None:
            assert wait_until(lambda: wait_log in self.log_lines(name), timeout=20), (
                f"{name} never logged {wait_log!r}: {self.log_lines(name)}"
            )
        return cid

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_entries(self, name: str) -> list[tuple[str, str, str]]:
        """(stream, tag, text) of every line of a container's CRI log, each line checked."""
        try:
            text = self.log_path(name).read_text()
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            m = LOG_LINE.match(line)
            assert m, f"not a CRI log line: {line!r}"
            entries.append((m.group(2), m.group(3), m.group(4)))
        return entries

    def log_lines(self, name: str, stream: str | None = None) -> list[str]:
        return [t for s, _, t in self.log_entries(name) if stream in (None, s)]

    def remove(self) -> None:
        if not self.id:
            return
        rt = self.cri.runtime
        rt.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=self.id), timeout=60)
        rt.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=self.id), timeout=60)

    def leftovers(self) -> list[str]:
        """What is left on the host of this pod after RemovePodSandbox: the runtime's state,
        cgroups, mounts, processes (the shim), the network namespace."""
        ids = [self.id, *self.containers]
        found = []
        root = self.cri.runtime_root(self.handler)
        if root.is_dir():
            found += [f"runtime state {e}" for e in os.listdir(root) if e in ids]
        for mount in cgroup_mounts():
            parent = Path(mount + self.cgroup_parent)
            if parent.is_dir():
                found += [f"cgroup {d}" for d in parent.iterdir() if d.is_dir()]
        found += [f"mount {m}" for m in mount_points() if any(i in m for i in ids)]
        if self.netns:
            found += [f"netns mount {m}" for m in mount_points() if m == self.netns]
            if os.path.lexists(self.netns):
                found.append(f"netns file {self.netns}")
        found += [f"process {p}" for i in ids for p in processes_mentioning(i)]
        return found

    def remove_cgroup_parent(self) -> None:
        """The pod's cgroup parent is the kubelet's to make and remove; here, the test's."""
        for mount in cgroup_mounts():
            parent = Path(mount + self.cgroup_parent)
            for sub in sorted(parent.glob("**/"), key=lambda p: -len(str(p))):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


@contextmanager
def pod_of(cri: Cri, handler: str, **kwargs: Any) -> Iterator[Pod]:
    """A running pod (Pod's options); at the end it is stopped and removed, and nothing of it
    may be left."""
    pod = Pod(cri, handler, **kwargs)
    try:
        yield pod.run()
    except BaseException:
        try:
            pod.remove()
        finally:
            pod.remove_cgroup_parent()
        raise
    pod.remove()
    left = wait_until(lambda: not pod.leftovers(), timeout=10) or pod.leftovers()
    pod.remove_cgroup_parent()
    assert left is True, f"left after RemovePodSandbox: {left}"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cri(busybox_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cri]:
    for tool in ("containerd", "ctr", "umoci"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed: bash tests/setup.sh installs it")
    for plugin in ("bridge", "host-local", "loopback"):
        if not (CNI_BIN / plugin).exists():
            pytest.skip(f"CNI plugin {plugin} is missing: apt-get install "
                        "containernetworking-plugins")
    host = HostState(paths=("/run/containerd",), purge_paths=("/var/lib/cni",),
                     cgroups=(CGROUP_PARENT,))
    tmp = tmp_path_factory.mktemp("cri")
    pb, pb_grpc = compile_cri_api(tmp_path_factory.mktemp("cri-api"))
    cri = Cri(tmp, pyrunc_executable(tmp), pb, pb_grpc)
    problems: list[str] = []
    try:
        rootfs = tmp / "image-rootfs"
        shutil.copytree(busybox_bundle / "rootfs", rootfs, symlinks=True)
        (rootfs / "pause").write_text(PAUSE)
        (rootfs / "pause").chmod(0o755)
        cri.start()
        for image, cmd in ((SANDBOX_IMAGE, "/pause"), (BUSYBOX, "sh")):
            work = tmp / "image"
            work.mkdir()
            archive = build_oci_archive(rootfs, work, cmd=cmd)
            cri.ctr("images", "import", "--base-name", image.rsplit(":", 1)[0], archive)
            shutil.rmtree(work)
        shutil.rmtree(rootfs)
        yield cri
        left = cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items
        if left:
            problems.append(f"pods left behind by the tests: {[p.id for p in left]}")
    finally:
        problems += _teardown(cri, host)
    assert not problems, "; ".join(problems)


def _teardown(cri: Cri, host: HostState) -> list[str]:
    problems = []
    if cri.proc is not None and cri.proc.poll() is None and cri.runtime is not None:
        pb = cri.pb
        try:
            for pod in cri.runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items:
                cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id),
                                           timeout=60)
                cri.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod.id),
                                             timeout=60)
        except Exception as e:  # a hung containerd must not stop the clean-up
            problems.append(f"CRI clean-up: {e}")
    cri.stop()
    killed = kill_processes_mentioning(str(cri.sock))  # shims name our socket
    if killed:
        problems.append(f"killed shims still running: {killed}")
    for handler in HANDLERS:
        left = delete_runtime_leftovers(runtime_binary(handler, cri.pyrunc),
                                        cri.runtime_root(handler))
        if left:
            problems.append(f"{handler} still had containers: {left}")
    if cri.log.exists():  # kept beside the removed directory, in pytest's basetemp
        shutil.copy(cri.log, cri.tmp.parent / "containerd-cri.log")
    unmount_under(cri.tmp)
    for netns in cri.netns_seen:  # under our state dir: already unmounted; else here
        if netns and not netns.startswith(str(cri.tmp)):
            unmount_under(Path(netns))
            Path(netns).unlink(missing_ok=True)
    if os.path.exists(f"/sys/class/net/{BRIDGE}"):
        run_cmd(["ip", "link", "delete", BRIDGE], timeout=30)
    for cached in Path("/var/lib/cni/results").glob(f"{NETWORK}-*"):
        cached.unlink(missing_ok=True)
    shutil.rmtree(cri.tmp, ignore_errors=True)
    host.restore()
    return problems


@pytest.fixture(params=HANDLERS)
def handler(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def pod(cri: Cri, handler: str) -> Iterator[Pod]:
    with pod_of(cri, handler) as p:
        yield p


# --- the scenarios ------------------------------------------------------------------------------


def test_version_and_status(cri: Cri) -> None:
    pb = cri.pb
    version = cri.runtime.Version(pb.VersionRequest(version="v1"), timeout=30)
    assert version.runtime_name == "containerd"
    assert version.runtime_api_version == "v1"
    assert version.runtime_version.startswith("1.6.")
    status = cri.runtime.Status(pb.StatusRequest(verbose=True), timeout=30)
    conditions = {c.type: c.status for c in status.status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}
    runtimes = json.loads(status.info["config"])["containerd"]["runtimes"]
    assert runtimes["pyrunc"]["options"]["BinaryName"] == str(cri.pyrunc)
    assert runtimes["runc"]["options"]["BinaryName"] == shutil.which("runc")


def test_images(cri: Cri) -> None:
    pb = cri.pb
    listed = cri.images.ListImages(pb.ListImagesRequest(), timeout=30).images
    tags = {t: i for i in listed for t in i.repo_tags}
    assert SANDBOX_IMAGE in tags and BUSYBOX in tags, [i.repo_tags for i in listed]
    status = cri.images.ImageStatus(
        pb.ImageStatusRequest(image=pb.ImageSpec(image=BUSYBOX), verbose=True), timeout=30
    )
    image = status.image
    assert image.id == tags[BUSYBOX].id and image.id.startswith("sha256:")
    assert BUSYBOX in image.repo_tags
    assert image.size > 0
    assert json.loads(status.info["info"])["imageSpec"]["config"]["Cmd"] == ["sh"]
    assert image.id != tags[SANDBOX_IMAGE].id
    missing = cri.images.ImageStatus(
        pb.ImageStatusRequest(image=pb.ImageSpec(image="localhost/pyrcri-none:1")), timeout=30
    )
    assert not missing.HasField("image")


def test_pod_sandbox_status(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    status = pod.status(verbose=True)
    assert status.status.state == pb.SANDBOX_READY
    assert status.status.runtime_handler == pod.handler
    assert status.status.metadata.name == pod.name
    assert status.status.network.ip.startswith(SUBNET), status.status.network
    info = json.loads(status.info["info"])
    assert info["runtimeHandler"] == pod.handler
    # the sandbox runs with the handler's runtime: its state is in the handler's root
    binary = runtime_binary(pod.handler, cri.pyrunc)
    state = json.loads(state_of(binary, pod.id, str(cri.runtime_root(pod.handler))).stdout)
    assert state["status"] == "running" and state["pid"] == info["pid"]
    listed = cri.runtime.ListPodSandbox(
        pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(id=pod.id)), timeout=30
    ).items
    assert [p.id for p in listed] == [pod.id]
    cri.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod.id), timeout=60)
    assert pod.status().status.state == pb.SANDBOX_NOTREADY
    gone = state_of(binary, pod.id, str(cri.runtime_root(pod.handler)))
    assert gone.returncode != 0 and "does not exist" in gone.stderr


def test_one_container_logs_and_exit_code(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    cid = pod.start("once", "echo to-stdout; echo to-stderr >&2; printf partial; exit 3")
    status = cri.wait_exited(cid)
    assert status.exit_code == 3
    assert status.reason == "Error"
    # (a quick exit may be recorded before the start is: no order between those two)
    assert status.finished_at > status.created_at > 0 and status.started_at > status.created_at
    assert status.log_path == str(pod.log_path("once"))
    assert status.image_ref.startswith("sha256:")
    entries = pod.log_entries("once")
    assert sorted(entries) == [
        ("stderr", "F", "to-stderr"), ("stdout", "F", "to-stdout"), ("stdout", "P", "partial")
    ], entries
    listed = cri.runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod.id)), timeout=30
    ).containers
    assert [(c.id, c.state, c.metadata.name) for c in listed] == [
        (cid, pb.CONTAINER_EXITED, "once")
    ]
    cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
    listed = cri.runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod.id)), timeout=30
    ).containers
    assert listed == []
    assert not (cri.runtime_root(pod.handler) / cid).exists()


def test_list_containers_filters(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    running = pod.start("running", SERVICE, wait_log="ready")
    exited = pod.start("exited", "true")
    cri.wait_exited(exited)

    def ids(**filter_: Any) -> list[str]:
        listed = cri.runtime.ListContainers(
            pb.ListContainersRequest(filter=pb.ContainerFilter(**filter_)), timeout=30
        ).containers
        return sorted(c.id for c in listed)

    assert ids(pod_sandbox_id=pod.id) == sorted([running, exited])
    assert ids(pod_sandbox_id=pod.id,
               state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)) == [running]
    assert ids(pod_sandbox_id=pod.id,
               state=pb.ContainerStateValue(state=pb.CONTAINER_EXITED)) == [exited]
    assert ids(label_selector={"pyrcri-container": "exited"}, pod_sandbox_id=pod.id) == [exited]
    assert ids(id=running) == [running]
    binary = runtime_binary(pod.handler, cri.pyrunc)
    state = json.loads(state_of(binary, running, str(cri.runtime_root(pod.handler))).stdout)
    assert state["status"] == "running" and state["pid"] == cri.pid_of(running)


def test_two_containers_share_network_and_ipc(cri: Cri, pod: Pod) -> None:
    a = pod.start(
        "a",
        "mkdir /tmp/www && echo hello-from-a > /tmp/www/index.html && "
        "echo a-was-here > /dev/shm/from-a && echo ready && "
        "exec httpd -f -p 127.0.0.1:8080 -h /tmp/www",
        wait_log="ready",
    )
    b = pod.start("b", SERVICE, wait_log="ready")
    # one network namespace, one IPC namespace (the sandbox's), each container its own pids
    ns = {cid: cri.out(cid, "for n in net ipc pid; do readlink /proc/self/ns/$n; done")
          for cid in (a, b)}
    net_a, ipc_a, pid_a = ns[a].split()
    net_b, ipc_b, pid_b = ns[b].split()
    assert (net_a, ipc_a) == (net_b, ipc_b) and pid_a != pid_b
    assert net_a != os.readlink("/proc/self/ns/net") and ipc_a != os.readlink("/proc/self/ns/ipc")
    assert wait_until(
        lambda: cri.exec_sync(b, "wget -qO- http://127.0.0.1:8080/").stdout == b"hello-from-a\n",
        timeout=10,
    ), cri.exec_sync(b, "wget -qO- http://127.0.0.1:8080/")
    assert cri.out(b, "cat /dev/shm/from-a") == "a-was-here\n"
    # SysV IPC: a segment made in A's IPC namespace is seen from B, removed in B's namespace,
    # and gone for A
    def segments(cid: str) -> list[str]:
        return [line.split()[1] for line in cri.out(cid, "cat /proc/sysvipc/shm").splitlines()[1:]]

    made = run_cmd(["nsenter", f"--ipc=/proc/{cri.pid_of(a)}/ns/ipc", "ipcmk", "-M", "4096"],
                   check=True, timeout=30)
    shmid = made.stdout.split()[-1]
    assert shmid in segments(b)
    run_cmd(["nsenter", f"--ipc=/proc/{cri.pid_of(b)}/ns/ipc", "ipcrm", "-m", shmid],
            check=True, timeout=30)
    assert shmid not in segments(a)
    # the pod's address is on eth0 of that namespace
    addr = cri.out(b, "ip -4 -o addr show eth0")
    assert pod.status().status.network.ip in addr


def test_shared_process_namespace(cri: Cri, handler: str) -> None:
    """share_process_namespace: the containers see each other and the sandbox (pid 1); when a
    container's main process ends, by StopContainer or by itself, the shim kills what is left
    of the container (`kill --all` of the stopped container) and the others keep running."""
    with pod_of(cri, handler, share_pid=True) as pod:
        a = pod.start("a", "sleep 1001 & " + SERVICE, wait_log="ready")
        c = pod.start("c", "sleep 1002 & echo ready; "
                      "while [ ! -e /dev/shm/go ]; do sleep 0.1; done; exit 3", wait_log="ready")
        b = pod.start("b", SERVICE, wait_log="ready")
        ps = cri.out(b, "ps -o pid,args")
        assert "sleep 1001" in ps and "sleep 1002" in ps, ps
        assert re.search(r"^\s*1\s+(\{pause\} )?/bin/sh /pause$", ps, re.M), ps
        pidns = "readlink /proc/self/ns/pid"
        assert cri.out(a, pidns) == cri.out(b, pidns) == cri.out(c, pidns)
        cri.runtime.StopContainer(cri.pb.StopContainerRequest(container_id=a, timeout=0),
                                  timeout=60)
        assert cri.wait_exited(a).exit_code == 137
        cri.out(b, "touch /dev/shm/go")
        assert cri.wait_exited(c).exit_code == 3
        assert wait_until(lambda: "sleep 100" not in cri.out(b, "ps -o args"), timeout=10), (
            cri.out(b, "ps -o pid,args")
        )
        assert cri.status(b).status.state == cri.pb.CONTAINER_RUNNING
        failed = [line for line in cri.log.read_text().splitlines()
                  if "failed to kill init's children" in line and (a in line or c in line)]
        assert not failed, failed


def test_exec_sync(cri: Cri, pod: Pod) -> None:
    cid = pod.start("svc", SERVICE, wait_log="ready")
    res = cri.exec_sync(cid, 'echo "out $(id -u) $(pwd)"; echo err >&2; exit 7')
    assert (res.stdout, res.stderr, res.exit_code) == (b"out 0 /\n", b"err\n", 7)
    res = cri.exec_sync(cid, "echo fine")
    assert (res.stdout, res.stderr, res.exit_code) == (b"fine\n", b"", 0)
    with pytest.raises(grpc.RpcError) as info:
        cri.exec_sync(cid, "echo before; exec sleep 1037", timeout=1)
    assert "timeout" in info.value.details(), info.value
    # the timed-out process was killed
    assert wait_until(lambda: "sleep 1037" not in cri.out(cid, "ps -o args"), timeout=10)
    missing = cri.exec_sync(cid, "exec /no/such/program")
    assert missing.exit_code == 127


def test_exec_streaming(cri: Cri, pod: Pod) -> None:
    cid = pod.start("svc", SERVICE, wait_log="ready")
    url = cri.runtime.Exec(
        cri.pb.ExecRequest(container_id=cid, cmd=["sh", "-c",
                           'read line; echo "got $line"; echo err >&2; exit 5'],
                           stdin=True, stdout=True, stderr=True),
        timeout=30,
    ).url
    result = websocket_exec(url, stdin=b"hello\n")
    assert result["stdout"] == b"got hello\n"
    assert result["stderr"] == b"err\n"
    status = json.loads(result["error"])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "5"}]
    url = cri.runtime.Exec(
        cri.pb.ExecRequest(container_id=cid, cmd=["id", "-u"], stdout=True, stderr=True),
        timeout=30,
    ).url
    result = websocket_exec(url)
    assert result["stdout"] == b"0\n"
    assert json.loads(result["error"])["status"] == "Success"


def _cgroup_values(cri: Cri, cid: str) -> dict[str, str]:
    script = ("for f in memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us "
              "cpu/cpu.shares cpuset/cpuset.cpus; do echo $f $(cat /sys/fs/cgroup/$f); done")
    return dict(line.split(" ", 1) for line in cri.out(cid, script).splitlines())


def test_resources_and_update(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    mib = 1024 * 1024
    resources = pb.LinuxContainerResources(
        cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 * mib,
        cpuset_cpus="0",
    )
    cid = pod.start("limited", SERVICE, wait_log="ready",
                    linux=pod.security(resources=resources))
    assert _cgroup_values(cri, cid) == {
        "memory/memory.limit_in_bytes": str(64 * mib),
        "cpu/cpu.cfs_quota_us": "50000",
        "cpu/cpu.cfs_period_us": "100000",
        "cpu/cpu.shares": "512",
        "cpuset/cpuset.cpus": "0",
    }
    # the pod's cgroup parent holds the container's cgroup
    mem = Path("/sys/fs/cgroup/memory") / pod.cgroup_parent.lstrip("/") / cid
    assert (mem / "memory.limit_in_bytes").read_text().strip() == str(64 * mib)
    cri.runtime.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid,
        linux=pb.LinuxContainerResources(
            cpu_period=100000, cpu_quota=25000, cpu_shares=256, memory_limit_in_bytes=96 * mib,
            cpuset_cpus="0",
        ),
    ), timeout=60)
    assert _cgroup_values(cri, cid) == {
        "memory/memory.limit_in_bytes": str(96 * mib),
        "cpu/cpu.cfs_quota_us": "25000",
        "cpu/cpu.cfs_period_us": "100000",
        "cpu/cpu.shares": "256",
        "cpuset/cpuset.cpus": "0",
    }
    res = cri.status(cid).status.resources.linux
    assert (res.memory_limit_in_bytes, res.cpu_quota, res.cpu_shares) == (96 * mib, 25000, 256)


def test_container_stats(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    cid = pod.start("busy", "dd if=/dev/zero of=/tmp/data bs=1024 count=2048 2>/dev/null; "
                    "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; " + SERVICE,
                    wait_log="ready")

    def stats() -> Any:
        return cri.runtime.ContainerStats(pb.ContainerStatsRequest(container_id=cid),
                                          timeout=30).stats

    s = stats()
    assert s.attributes.id == cid and s.attributes.metadata.name == "busy"
    assert s.cpu.usage_core_nano_seconds.value > 0
    assert s.memory.working_set_bytes.value > 0
    assert s.memory.usage_bytes.value > 0
    # the writable layer is sampled every stats_collect_period: it has the 2 MiB file
    assert wait_until(lambda: stats().writable_layer.used_bytes.value >= 2048 * 1024,
                      timeout=15), stats().writable_layer


def test_security_context(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    dropped = ["NET_RAW", "MKNOD"]
    script = (
        'echo "ids $(id -u) $(id -g)"; '
        "touch /probe 2>/dev/null && echo rootfs-writable || echo rootfs-readonly; "
        "echo timer_list $(head -c 10 /proc/timer_list | wc -c); "  # masked: /dev/null
        "grep -q ' /proc/sys ' /proc/self/mounts && echo proc-sys-bound || echo proc-sys-free; "
        "grep -E '^(CapPrm|CapEff|CapBnd|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status"
    )
    cid = pod.start("secure", script, linux=pod.security(
        capabilities=pb.Capability(drop_capabilities=dropped),
        run_as_user=pb.Int64Value(value=1000),
        run_as_group=pb.Int64Value(value=1000),
        readonly_rootfs=True,
        no_new_privs=True,
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault),
    ))
    assert cri.wait_exited(cid).exit_code == 0, pod.log_lines("secure")
    lines = pod.log_lines("secure", "stdout")
    bounding = sum(1 << n for name, n in DEFAULT_CAPS.items() if name not in dropped)
    fields = dict(line.split(":\t", 1) for line in lines[4:])
    assert lines[:4] == ["ids 1000 1000", "rootfs-readonly", "timer_list 0", "proc-sys-bound"], (
        lines
    )
    assert fields == {
        "CapPrm": "0000000000000000",
        "CapEff": "0000000000000000",
        "CapBnd": f"{bounding:016x}",
        "NoNewPrivs": "1",
        "Seccomp": "2",
        "Seccomp_filters": "1",
    }, lines


def test_root_keeps_default_capabilities_minus_dropped(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    cid = pod.start("root", "grep -E '^Cap(Eff|Bnd):' /proc/self/status; touch /probe && "
                    "echo written", linux=pod.security(
        capabilities=pb.Capability(drop_capabilities=["CHOWN"], add_capabilities=["SYS_NICE"]),
    ))
    assert cri.wait_exited(cid).exit_code == 0, pod.log_lines("root")
    caps = sum(1 << n for name, n in DEFAULT_CAPS.items() if name != "CHOWN") | (1 << 23)
    assert pod.log_lines("root", "stdout") == [
        f"CapEff:\t{caps:016x}", f"CapBnd:\t{caps:016x}", "written"
    ]


def test_stop_with_grace_period(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    # TERM is trapped and ignored: after the grace period, KILL
    stubborn = pod.start(
        "stubborn", "trap 'echo got-term' TERM; " + SERVICE, wait_log="ready"
    )
    # TERM is honoured within the grace period
    polite = pod.start("polite", "trap 'echo leaving; exit 42' TERM; " + SERVICE,
                       wait_log="ready")
    cri.runtime.StopContainer(pb.StopContainerRequest(container_id=polite, timeout=30),
                              timeout=90)
    status = cri.status(polite).status
    assert (status.state, status.exit_code) == (pb.CONTAINER_EXITED, 42)
    assert pod.log_lines("polite")[-1] == "leaving"
    cri.runtime.StopContainer(pb.StopContainerRequest(container_id=stubborn, timeout=2),
                              timeout=60)
    status = cri.status(stubborn).status
    assert (status.state, status.exit_code) == (pb.CONTAINER_EXITED, 137)
    assert "got-term" in pod.log_lines("stubborn")
    # stopping again is fine (idempotent), removing frees its state
    cri.runtime.StopContainer(pb.StopContainerRequest(container_id=stubborn, timeout=2),
                              timeout=60)
    for cid in (stubborn, polite):
        cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
        assert not (cri.runtime_root(pod.handler) / cid).exists()
        with pytest.raises(grpc.RpcError) as info:
            cri.status(cid)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_remove_running_container_and_pod(cri: Cri, handler: str) -> None:
    """RemoveContainer of a running container kills it; RemovePodSandbox of a pod with a
    running container stops and removes everything (pod_of checks nothing is left)."""
    pb = cri.pb
    with pod_of(cri, handler) as pod:
        first = pod.start("first", SERVICE, wait_log="ready")
        pod.start("second", SERVICE, wait_log="ready")
        pid = cri.pid_of(first)
        cri.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=first), timeout=60)
        assert not os.path.exists(f"/proc/{pid}")
        assert not (cri.runtime_root(handler) / first).exists()


def test_reopen_container_log(cri: Cri, pod: Pod) -> None:
    pb = cri.pb
    cid = pod.start("chatty", "i=0; while :; do i=$((i+1)); echo line$i; sleep 0.1; done",
                    wait_log="line1")
    log = pod.log_path("chatty")
    rotated = log.with_name("chatty.log.1")
    log.rename(rotated)  # as the kubelet rotates
    cri.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid), timeout=30)
    assert wait_until(lambda: len(pod.log_lines("chatty")) >= 2, timeout=10)
    old = [int(t[4:]) for _, _, t in _entries(rotated)]
    new = [int(t[4:]) for t in pod.log_lines("chatty")]
    assert old and new and new[0] > old[-1], (old, new)
    cri.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=60)
    with pytest.raises(grpc.RpcError) as info:  # a stopped container's log is not reopened
        cri.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid),
                                       timeout=30)
    assert "container is not running" in info.value.details()


def _entries(path: Path) -> list[tuple[str, str, str]]:
    out = []
    for line in path.read_text().splitlines():
        m = LOG_LINE.match(line)
        assert m, line
        out.append((m.group(2), m.group(3), m.group(4)))
    return out


def test_pod_hostname_dns_and_sysctls(cri: Cri, handler: str) -> None:
    """What the sandbox sets up for its containers: the hostname, /etc/resolv.conf from the
    pod's DNS config, and namespaced sysctls (net and ipc) seen from a container."""
    pb = cri.pb
    dns = pb.DNSConfig(servers=["10.232.255.53"], searches=["pyrcri.test"], options=["ndots:2"])
    sysctls = {"net.ipv4.ip_local_port_range": "20000 30000", "kernel.shm_rmid_forced": "1"}
    with pod_of(cri, handler, dns=dns, sysctls=sysctls) as pod:
        cid = pod.start("probe", SERVICE, wait_log="ready")
        assert cri.out(cid, "hostname; cat /etc/hostname") == f"{pod.config.hostname}\n" * 2
        resolv = cri.out(cid, "cat /etc/resolv.conf").splitlines()
        assert resolv == ["search pyrcri.test", "nameserver 10.232.255.53", "options ndots:2"]
        assert cri.out(cid, "cat /proc/sys/net/ipv4/ip_local_port_range").split() == [
            "20000", "30000"
        ]
        assert cri.out(cid, "cat /proc/sys/kernel/shm_rmid_forced") == "1\n"


def test_host_network_pod(cri: Cri, handler: str) -> None:
    with pod_of(cri, handler, host_network=True) as pod:
        cid = pod.start("probe", SERVICE, wait_log="ready")
        assert cri.out(cid, "readlink /proc/self/ns/net").strip() == os.readlink(
            "/proc/self/ns/net"
        )
        assert pod.status().status.network.ip == ""
        assert cri.out(cid, "readlink /proc/self/ns/ipc").strip() != os.readlink(
            "/proc/self/ns/ipc"
        )


def test_volumes_and_run_as_username(cri: Cri, pod: Pod, tmp_path: Path) -> None:
    """hostPath-style volumes (a read-write and a read-only bind) and a user name resolved
    in the image's /etc/passwd."""
    pb = cri.pb
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    rw.chmod(0o777)
    (ro / "given").write_text("from-the-host\n")
    cid = pod.start(
        "vols",
        'echo "user $(id -u) $(id -g)"; echo from-the-pod > /data/made; cat /config/given; '
        "touch /config/nope 2>/dev/null && echo ro-writable || echo ro-refused",
        mounts=[pb.Mount(container_path="/data", host_path=str(rw)),
                pb.Mount(container_path="/config", host_path=str(ro), readonly=True)],
        linux=pod.security(run_as_username="nobody"),
    )
    assert cri.wait_exited(cid).exit_code == 0, pod.log_lines("vols")
    assert pod.log_lines("vols", "stdout") == [
        "user 65534 65534", "from-the-host", "ro-refused"
    ]
    assert (rw / "made").read_text() == "from-the-pod\n"
    assert (rw / "made").stat().st_uid == 65534
    mounts = {m.container_path: m for m in cri.status(cid).status.mounts}
    assert mounts["/config"].readonly and not mounts["/data"].readonly


def test_oom_killed(cri: Cri, pod: Pod) -> None:
    """Over its memory limit the container is killed and ContainerStatus says OOMKilled. (The
    runc v2 shim of containerd 1.6 watches the cgroup for OOMs only once `start` has returned:
    a container that runs out of memory within milliseconds of starting is reported as "Error",
    with either runtime; hence the second's wait before the allocation.)"""
    pb = cri.pb
    cid = pod.start(
        "hungry", "echo start; sleep 1; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
        linux=pod.security(resources=pb.LinuxContainerResources(
            memory_limit_in_bytes=16 * 1024 * 1024)),
    )
    assert cri.wait_exited(cid).exit_code == 137
    # the shim reports the OOM and the exit as two events, in either order: the reason
    # becomes OOMKilled when the first has arrived
    assert wait_until(lambda: cri.status(cid).status.reason == "OOMKilled", timeout=10), (
        cri.status(cid).status
    )
    assert pod.log_lines("hungry") == ["start"]


def test_privileged_container(cri: Cri, handler: str) -> None:
    """privileged: every capability the runtime holds, no seccomp, no masked or read-only
    /proc paths, the host's devices."""
    with pod_of(cri, handler, privileged=True) as pod:
        cid = pod.start(
            "priv", "grep -E '^(CapEff|Seccomp):' /proc/self/status; "
            "echo timer_list $(head -c 10 /proc/timer_list | wc -c); "
            "grep -q ' /proc/sys ' /proc/self/mounts && echo proc-sys-bound || echo proc-sys-free; "
            "test -b /dev/loop0 && echo host-devices",
            linux=pod.security(privileged=True),
        )
        assert cri.wait_exited(cid).exit_code == 0, pod.log_lines("priv")
        mine = dict(line.split(":\t", 1) for line in
                    Path("/proc/self/status").read_text().splitlines() if ":\t" in line)
        assert pod.log_lines("priv", "stdout") == [
            f"CapEff:\t{mine['CapEff']}", "Seccomp:\t0", "timer_list 10", "proc-sys-free",
            "host-devices",
        ]


def test_tty_container_and_exec(cri: Cri, pod: Pod) -> None:
    cid = pod.start("term", "tty; echo ready; " + SERVICE.replace("echo ready; ", ""),
                    tty=True, stdin=True)
    assert wait_until(lambda: "ready" in pod.log_lines("term"), timeout=20), (
        pod.log_lines("term")
    )
    assert pod.log_lines("term")[0] == "/dev/pts/0"
    assert {s for s, _, _ in pod.log_entries("term")} == {"stdout"}
    url = cri.runtime.Exec(cri.pb.ExecRequest(
        container_id=cid, tty=True, stdout=True, stdin=True,
        cmd=["sh", "-c", f"tty; {WAIT_FOR_SIZE}; exit 4"],
    ), timeout=30).url
    result = websocket_exec(url, resize=(97, 31))
    lines = result["stdout"].decode().replace("\r", "").splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[-1] == "size 31 97", lines
    status = json.loads(result["error"])
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]


# --- a WebSocket client for the streaming server --------------------------------------------

CHANNELS = {1: "stdout", 2: "stderr", 3: "error"}


def websocket_exec(
    url: str, stdin: bytes = b"", resize: tuple[int, int] | None = None, timeout: float = 30
) -> dict[str, bytes]:
    """Run the exec behind a streaming-server URL over WebSocket (RFC 6455) with the
    v4.channel.k8s.io subprotocol: each binary message is one channel byte and data; 0 is
    stdin, 1 stdout, 2 stderr, 3 the final status (JSON), 4 a terminal size (JSON, from the
    client: `resize` = (width, height)). Returns each channel's bytes."""
    parsed = urlparse(url)
    assert parsed.hostname == "127.0.0.1", url  # never anything but loopback
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection((parsed.hostname, parsed.port or 80), timeout=timeout)
    try:
        sock.sendall(
            f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\n"
            f"Host: {parsed.netloc}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n".encode()
        )
        reader = sock.makefile("rb")
        status_line = reader.readline()
        assert b" 101 " in status_line, status_line
        while reader.readline() not in (b"\r\n", b""):
            pass
        if resize:
            size = json.dumps({"Width": resize[0], "Height": resize[1]}).encode()
            _send_frame(sock, b"\x04" + size)
        if stdin:
            _send_frame(sock, b"\x00" + stdin)
        out: dict[str, bytes] = {"stdout": b"", "stderr": b"", "error": b""}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = _read_frame(reader)
            if frame is None:
                break
            opcode, payload = frame
            if opcode == 8:  # close
                break
            if opcode == 2 and payload and payload[0] in CHANNELS:
                out[CHANNELS[payload[0]]] += payload[1:]
        return out
    finally:
        sock.close()


def _send_frame(sock: socket.socket, payload: bytes, opcode: int = 2) -> None:
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    elif n < 65536:
        header += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _read_exact(reader: Any, n: int) -> bytes | None:
    data = reader.read(n)
    return data if data is not None and len(data) == n else None


def _read_frame(reader: Any) -> tuple[int, bytes] | None:
    head = _read_exact(reader, 2)
    if head is None:
        return None
    opcode, n = head[0] & 0x0F, head[1] & 0x7F
    if n == 126:
        ext = _read_exact(reader, 2)
        n = int.from_bytes(ext or b"\0\0", "big")
    elif n == 127:
        ext = _read_exact(reader, 8)
        n = int.from_bytes(ext or b"\0" * 8, "big")
    mask = _read_exact(reader, 4) if head[1] & 0x80 else None
    payload = _read_exact(reader, n) if n else b""
    if payload is None:
        return None
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload
