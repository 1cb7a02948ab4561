"""config-linux.md#seccomp and #the-container-process-state (the seccomp notify listener)."""

from __future__ import annotations

import array
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import Case, CheckResults, Expect, assert_checks, schema_errors

req = pytest.mark.req
ENOMSG = 42


@req("runtime.md#create-4", "runtime.md#start-3")
def test_seccomp_filter_applied(case: Case) -> None:
    """The filter is loaded: mkdir/mkdirat fail with the rule's errnoRet, others work."""
    case.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOMSG},
        ],
    }
    extra = (
        Expect()
        .add("filter", "syscall", "mkdir", ENOMSG)
        .add("filter", "syscall", "mkdirat", ENOMSG)
        .add("filter", "syscall", "getppid", "ok")
    )
    assert_checks(case.check(extra), "seccomp", "filter")


# The syscalls a classic allow-list profile permits (the kind container engines shipped before
# openat2, close_range, clone3 and pidfd_* existed): enough for the program, not more.
CLASSIC_SYSCALLS = """
accept accept4 access alarm arch_prctl bind brk capget capset chdir chmod chown clock_getres
clock_gettime clock_nanosleep close connect dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
epoll_pwait epoll_wait eventfd eventfd2 execve execveat exit exit_group faccessat fadvise64
fallocate fchdir fchmod fchmodat fchown fchownat fcntl fdatasync flock fork fstat fstatfs fsync
ftruncate futex getcwd getdents getdents64 getegid geteuid getgid getgroups getitimer getpgid
getpgrp getpid getppid getpriority getrandom getresgid getresuid getrlimit getrusage getsid
getsockname getsockopt gettid gettimeofday getuid getxattr ioctl kill lchown link linkat listen
lseek lstat madvise mkdir mkdirat mknod mknodat mmap mprotect mremap munmap nanosleep newfstatat
open openat pause pipe pipe2 poll ppoll prctl pread64 prlimit64 pselect6 pwrite64 read readlink
readlinkat readv recvfrom recvmsg rename renameat rmdir rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait sched_getaffinity
sched_yield seccomp select sendmsg sendto set_robust_list set_tid_address setgid setgroups
setitimer setpgid setpriority setregid setresgid setresuid setreuid setrlimit setsid setsockopt
setuid shutdown sigaltstack socket socketpair stat statfs statx symlink symlinkat sysinfo tgkill
time times tkill truncate umask uname unlink unlinkat utimensat vfork wait4 waitid write writev
""".split()


@req("runtime.md#start-3", "runtime.md#lifecycle-13", "runtime.md#create-4")
@pytest.mark.parametrize("nnp", [False, True], ids=["privileged", "no-new-privileges"])
def test_allow_list_profile(case: Case, nnp: bool) -> None:
    """A default-deny profile that allows what the program needs (a classic list, without the
    newer openat2, close_range, clone3) is applied and the program runs: whatever the runtime
    itself still does once the filter is loaded must fit in it too."""
    case.config["process"]["noNewPrivileges"] = nnp
    case.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": CLASSIC_SYSCALLS, "action": "SCMP_ACT_ALLOW"}],
    }
    extra = Expect().add("denied", "syscall", "personality", 1)  # not in the list: EPERM
    assert_checks(case.check(extra), "seccomp", "args", "cwd", "denied")


@req("config-linux.md#seccomp-2")
def test_default_errno_with_action_without_errno(case: Case) -> None:
    """defaultErrnoRet with a defaultAction that takes no errno (SCMP_ACT_ALLOW) is an error."""
    case.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "defaultErrnoRet": 5,
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create accepted defaultErrnoRet with SCMP_ACT_ALLOW"


@req("config-linux.md#seccomp-12")
@pytest.mark.parametrize("action", ["SCMP_ACT_ALLOW", "SCMP_ACT_KILL"])
def test_errno_with_action_without_errno(case: Case, action: str) -> None:
    """A rule's errnoRet with an action that takes no errno is an error."""
    case.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": action, "errnoRet": 5}],
    }
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, f"create accepted errnoRet with {action}"


# --- the notify listener ------------------------------------------------------------------


@dataclass
class Listener:
    """A seccomp agent stand-in: accepts connections, records what each one carried."""

    path: Path
    connections: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            record: dict[str, Any] = {"data": b"", "fds": [], "fd_chunks": [], "closed": False}
            conn.settimeout(10)
            chunk = 0
            with conn:
                while True:
                    try:
                        data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
                    except (TimeoutError, OSError):
                        break
                    for level, kind, payload in ancdata:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            fds = array.array("i")
                            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                            record["fds"].extend(fds)
                            record["fd_chunks"].append(chunk)
                    if not data:
                        record["closed"] = True
                        break
                    record["data"] += data
                    chunk += 1
            record["fd_kinds"] = []
            for fd in record["fds"]:
                try:
                    record["fd_kinds"].append(os.readlink(f"/proc/self/fd/{fd}"))
                finally:
                    os.close(fd)  # the container's notifying syscalls then fail with ENOSYS
            self.connections.append(record)

    def close(self) -> None:
        self.sock.close()


def _notify_config(case: Case, listener_path: str) -> None:
    case.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": listener_path,
        "listenerMetadata": "oci-conformance",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    case.config["process"]["noNewPrivileges"] = True


@pytest.fixture
def notified(case: Case) -> tuple[Case, Listener, CheckResults]:
    listener = Listener(case.dir / "agent.sock")
    case.cleanups.append(listener.close)
    _notify_config(case, str(listener.path))
    extra = Expect().add("notify", "syscall", "mkdir", 38)  # ENOSYS once the agent closed the fd
    results = case.check(extra)
    listener.thread.join(timeout=0.5)
    return case, listener, results


@req(
    "config-linux.md#seccomp-3",
    "config-linux.md#seccomp-4",
    "config-linux.md#seccomp-5",
    "config-linux.md#the-container-process-state-1",
    "config-linux.md#the-container-process-state-2",
)
def test_listener_connection(notified: tuple[Case, Listener, CheckResults]) -> None:
    """One AF_UNIX stream connection carrying one JSON document, the fds with the first
    bytes, then closed by the runtime."""
    _, listener, results = notified
    if results.problem:
        pytest.fail(results.problem)
    problems = []
    if len(listener.connections) != 1:
        problems.append(f"{len(listener.connections)} connections to the listener")
    for rec in listener.connections:
        try:
            json.loads(rec["data"])
        except ValueError as exc:
            problems.append(
                f"the payload is not exactly one JSON document: {exc}: {rec['data'][:200]!r}"
            )
        if not rec["fds"]:
            problems.append("no file descriptor was passed with SCM_RIGHTS")
        if any(c != 0 for c in rec["fd_chunks"]):
            problems.append(f"fds came after the first message (chunks {rec['fd_chunks']})")
        if not rec["closed"]:
            problems.append("the runtime did not close the connection")
    assert not problems, "; ".join(problems)


@req(
    "config-linux.md#seccomp-7",
    "config-linux.md#the-container-process-state-3",
    "config-linux.md#the-container-process-state-4",
    "config-linux.md#the-container-process-state-5",
)
def test_listener_process_state(notified: tuple[Case, Listener, CheckResults]) -> None:
    """The container process state: ociVersion, pid, the container's state, and fds naming
    seccompFd, which is a seccomp notify descriptor."""
    _, listener, results = notified
    if results.problem:
        pytest.fail(results.problem)
    assert listener.connections, "the runtime never connected to listenerPath"
    rec = listener.connections[0]
    doc = json.loads(rec["data"])
    problems = []
    for key in ("ociVersion", "pid", "state"):
        if key not in doc:
            problems.append(f"{key} is missing")
    if not isinstance(doc.get("pid"), int) or doc.get("pid", 0) <= 0:
        problems.append(f"pid is {doc.get('pid')!r}")
    if isinstance(doc.get("state"), dict):
        problems.extend(f"state: {e}" for e in schema_errors("state-schema.json", doc["state"]))
    fds = doc.get("fds") or []
    if "seccompFd" not in fds:
        problems.append(f"fds is {fds!r}, without seccompFd")
    else:
        kind = (
            rec["fd_kinds"][fds.index("seccompFd")]
            if len(rec["fd_kinds"]) > fds.index("seccompFd")
            else "?"
        )
        if "seccomp" not in kind:
            problems.append(f"seccompFd is {kind!r}, not a seccomp notify fd")
    if doc.get("metadata") not in (None, "oci-conformance"):
        problems.append(f"metadata is {doc.get('metadata')!r}")
    assert not problems, "; ".join(problems)


@req("config-linux.md#seccomp-6")
def test_listener_unreachable(case: Case) -> None:
    """listenerPath naming no socket: sending fails, so create must fail."""
    _notify_config(case, str(case.dir / "nobody-listens.sock"))
    case.set_args("/bin/true")
    _, res = case.create()
    assert not res.ok, "create succeeded although the seccomp state could not be sent"
