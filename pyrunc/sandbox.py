"""Run untrusted code in a throw-away container, as `subprocess.run` runs a program.

    from pyrunc import sandbox
    r = sandbox.run(["sh", "-c", "echo hi"], rootfs="bundles/busybox/rootfs",
                    memory=64 << 20, pids=64, timeout=10, capture_output=True)
    print(r.returncode, r.stdout)

For the uses that motivate containers in the first place (a judge running contest submissions,
a CI job, a notebook running a user's code). The configuration denies by default:

- every namespace (user: container root is an unprivileged host uid; network: loopback only,
  or with network=True eth0 on pyrunc's default bridge network "pyrunc" with NAT;
  pid, ipc, uts, mount, cgroup, time);
- no capabilities, no_new_privileges, a seccomp filter refusing what Docker's default profile
  refuses (mount, ptrace, bpf, keyctl, kernel modules, namespaces, clocks, ...);
- the root read-only (readonly=True) with a tmpfs /tmp, no /sys, the kernel's sensitive /proc
  files masked;
- limits: `memory` (bytes, no swap), `cpus` (a CPU count, may be fractional), `pids` (tasks),
  RLIMIT_NOFILE 1024, no core dumps.

On timeout (subprocess.TimeoutExpired, carrying the output so far), on any exception and on
Ctrl-C the container is killed and deleted: nothing is left (state, processes, cgroups).
"""

from __future__ import annotations

import itertools
import os
import subprocess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyrunc.api import StdioArg

__all__ = ["run", "config", "DENIED_SYSCALLS"]

# the syscalls Docker's default seccomp profile refuses to a container without capabilities
# (its profile is an allow-list; this is the complement that matters), refused with EPERM
DENIED_SYSCALLS = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "clone3", "create_module",
    "delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
    "get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
    "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
    "mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
    "open_by_handle_at", "open_tree", "perf_event_open", "personality", "pivot_root",
    "process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl",
    "quotactl_fd", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday",
    "stime", "swapoff", "swapon", "sysfs", "syslog", "_sysctl", "umount", "umount2",
    "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old", "io_uring_setup",
    "io_uring_enter", "io_uring_register",
)  # fmt: skip

# container uid/gid 0..65535 are these host ids: nobody on the host owns them
HOST_ID_BASE = 3_000_000_000
ID_RANGE = 65536
CPU_PERIOD = 100_000

_ids = itertools.count()


def config(
    args: list[str],
    *,
    rootfs: str,
    memory: int | None = None,
    cpus: float | None = None,
    pids: int | None = None,
    readonly: bool = True,
    env: dict[str, str] | list[str] | None = None,
    cwd: str = "/",
    tmp_size: int = 64 << 20,
) -> dict[str, Any]:
    """The sandbox's config.json (a dict), for inspection or as a starting point."""
    if env is None:
        env_list = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "HOME=/tmp"]  # fmt: skip
    elif isinstance(env, dict):
        env_list = [f"{k}={v}" for k, v in env.items()]
    else:
        env_list = list(env)
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if memory is not None:
        resources["memory"] = {"limit": int(memory), "swap": int(memory)}
    if cpus is not None:
        resources["cpu"] = {"quota": max(1000, int(cpus * CPU_PERIOD)), "period": CPU_PERIOD}
    if pids is not None:
        resources["pids"] = {"limit": int(pids)}
    no_caps: dict[str, list[str]] = {k: [] for k in ("bounding", "effective", "inheritable",
                                                     "permitted", "ambient")}  # fmt: skip
    idmap = [{"containerID": 0, "hostID": HOST_ID_BASE, "size": ID_RANGE}]
    return {
        "ociVersion": "1.3.0",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args),
            "env": env_list,
            "cwd": cwd,
            "capabilities": no_caps,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                        {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],  # fmt: skip
            "noNewPrivileges": True,
        },
        "root": {"path": os.path.abspath(rootfs), "readonly": readonly},
        "hostname": "sandbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "nodev", "mode=1777", f"size={int(tmp_size)}"]},
        ],  # fmt: skip
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount",
                                                 "cgroup", "user", "time")],  # fmt: skip
            "uidMappings": idmap,
            "gidMappings": idmap,
            "resources": resources,
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": list(DENIED_SYSCALLS), "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 1}],  # fmt: skip
            },
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                            "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },  # fmt: skip
    }


def run(
    args: list[str],
    *,
    rootfs: str,
    memory: int | None = None,
    cpus: float | None = None,
    pids: int | None = None,
    timeout: float | None = None,
    network: bool | str = False,
    readonly: bool = True,
    env: dict[str, str] | list[str] | None = None,
    cwd: str = "/",
    input: bytes | str | None = None,
    capture_output: bool = False,
    check: bool = False,
    text: bool = False,
    stdin: StdioArg = None,
    stdout: StdioArg = None,
    stderr: StdioArg = None,
    root: str | None = None,
) -> subprocess.CompletedProcess[Any]:
    """Run `args` in a fresh sandbox container on `rootfs`; a CompletedProcess whose args are
    `args` and whose returncode is 128+N when signal N ended it (137: the memory limit's OOM
    kill or the timeout). Raises subprocess.TimeoutExpired (the container killed and
    deleted first) and, with check, CalledProcessError. network=True puts the container on
    pyrunc's default bridge network (made on first use), a string on that network."""
    from pyrunc.api import Runtime
    from pyrunc.state import DEFAULT_ROOT

    net_name = None
    if network:
        # the default bridge network (pyrunc.network.DEFAULT_NETWORK, made on first use):
        # eth0 with a leased address, a default route and NAT to the outside
        from pyrunc.network import ensure_default_network

        net_name = network if isinstance(network, str) else \
            ensure_default_network(root or DEFAULT_ROOT)
    # S1 does not stand in the way here: the config grants no capability, so no process of
    # the container can open /proc/<pid>/exe of the (non-dumpable) interpreter clone
    rt = Runtime(root or DEFAULT_ROOT, allow_writable_interpreter=True)
    document = config(args, rootfs=rootfs, memory=memory, cpus=cpus, pids=pids,
                      readonly=readonly, env=env, cwd=cwd)  # fmt: skip
    container_id = f"sandbox-{os.getpid()}-{next(_ids)}-{os.urandom(3).hex()}"
    try:
        result = rt.run(container_id, document, bundle=os.path.dirname(os.path.abspath(rootfs)),
                        input=input, capture_output=capture_output, timeout=timeout,
                        text=text, stdin=stdin, stdout=stdout, stderr=stderr,
                        network=net_name)  # fmt: skip
    except subprocess.TimeoutExpired as e:
        e.cmd = args
        raise
    result.args = args
    if check:
        result.check_returncode()
    return result
