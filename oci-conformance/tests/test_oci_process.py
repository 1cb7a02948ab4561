"""config.md#process and friends: what the started program sees, read by the checker.

Two containers run the checker with everything in `process` set (one as root, one as an
unprivileged user with ambient capabilities); the tests below each look at their part of the
report. Then come the cases that need a container of their own (oom_score_adj left alone,
terminals).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    Case,
    CheckResults,
    ConsoleSocket,
    Expect,
    Session,
    assert_checks,
)

req = pytest.mark.req

ROOT_CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE", "CAP_SETUID"]


def _process_config(case: Case, user: str) -> None:
    proc = case.config["process"]
    proc["env"] = [
        "PATH=/bin:/usr/bin",
        "OC_SPACES=a value with spaces",
        "OC_EMPTY=",
        "OC_EQUALS=x=y=z",
    ]
    proc["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
        {"type": "RLIMIT_NPROC", "soft": 500, "hard": 600},
        {"type": "RLIMIT_MSGQUEUE", "soft": 8192, "hard": 16384},
    ]
    proc["oomScoreAdj"] = 300
    proc["noNewPrivileges"] = True
    case.config["hostname"] = "oc-host"
    case.config["domainname"] = "oc.domain.test"
    case.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048"}
    if user == "root":
        proc["cwd"] = "/conformance"
        proc["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
        proc["capabilities"] = {
            "bounding": ROOT_CAPS,
            "effective": ROOT_CAPS,
            "permitted": ROOT_CAPS,
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL"],
        }
    else:
        proc["cwd"] = "/tmp"
        proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 0o077}
        keep = ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
        proc["capabilities"] = {
            "bounding": keep + ["CAP_CHOWN"],
            "effective": keep,
            "permitted": keep,
            "inheritable": keep,
            "ambient": keep,
        }


@pytest.fixture(scope="module", params=["root", "user"])
def proc_run(session: Session, request: pytest.FixtureRequest) -> Iterator[CheckResults]:
    """One checker run per user kind, shared by the tests of this module."""
    case = Case(session, f"process-{request.param}")
    try:
        _process_config(case, request.param)
        yield case.check()
    finally:
        case.cleanup()


@req("runtime.md#start-3", "runtime.md#lifecycle-13", "runtime.md#lifecycle-1")
def test_args_env_cwd(proc_run: CheckResults) -> None:
    """The program runs with process.args, exactly the configured env values, in process.cwd."""
    assert_checks(proc_run, "args", "env", "cwd")


@req("runtime.md#start-3")
def test_user_ids_groups_umask(proc_run: CheckResults) -> None:
    """uid, gid (real, effective, saved), additionalGids as the supplementary groups, umask."""
    assert_checks(proc_run, "user")


@req("config.md#posix-process-3", "config.md#posix-process-5", "config.md#posix-process-7")
def test_rlimits(proc_run: CheckResults) -> None:
    """getrlimit of each configured type succeeds with the configured soft and hard values."""
    assert_checks(proc_run, "rlimit")


@req("runtime.md#start-3")
def test_capabilities(proc_run: CheckResults) -> None:
    """The five capability sets, as execve(2) leaves the configured ones (capabilities(7))."""
    assert_checks(proc_run, "caps")


@req("runtime.md#start-3")
def test_no_new_privileges(proc_run: CheckResults) -> None:
    assert_checks(proc_run, "nnp")


@req("config.md#linux-process-2")
def test_oom_score_adj_set(proc_run: CheckResults) -> None:
    assert_checks(proc_run, "oom")


@req("runtime.md#create-4")
def test_hostname_domainname(proc_run: CheckResults) -> None:
    assert_checks(proc_run, "hostname", "domainname")


@req("runtime.md#create-4")
def test_sysctl(proc_run: CheckResults) -> None:
    """linux.sysctl values are set in the container's (network, ipc) namespaces."""
    assert_checks(proc_run, "sysctl")


@req("config.md#linux-process-3")
def test_oom_score_adj_unset(case: Case) -> None:
    """Without oomScoreAdj the process keeps the value of the runtime's caller."""
    inherited = case.host.oom_score_adj + 123

    def raise_oom() -> None:
        Path("/proc/self/oom_score_adj").write_text(str(inherited))

    case.rt.preexec_fn = raise_oom
    case.config["process"].pop("oomScoreAdj", None)
    extra = Expect().add("oom-inherited", "oom_score_adj", inherited)
    results = case.check(extra)
    assert_checks(results, "oom-inherited")


@req("config.md#process-2")
def test_console_size_ignored_without_terminal(case: Case) -> None:
    """consoleSize with terminal false is ignored: the container runs, without a terminal."""
    case.config["process"]["terminal"] = False
    case.config["process"]["consoleSize"] = {"height": 10, "width": 40}
    results = case.check(Expect().add("notty", "tty", 0, "no"))
    assert_checks(results, "notty", "args")


@req("config-linux.md#default-devices-1")
def test_terminal_console(case: Case) -> None:
    """terminal true: stdin is a pty, and /dev/console is that pty (bind-mounted)."""
    sock_path = case.dir / "console.sock"
    console = ConsoleSocket(sock_path)
    case.cleanups.append(console.close)
    case.config["process"]["terminal"] = True
    case.config["process"]["consoleSize"] = {"height": 25, "width": 80}
    expect = Expect().add("tty", "tty", 0, "yes").add("console", "console")
    (case.io / "expect").write_text(expect.text())
    case.set_args(
        "/conformance/checker", "check", "/conformance/io/expect", "--out",
        "/conformance/io/result.json",
    )  # fmt: skip
    cid, res = case.create(extra=["--console-socket", str(sock_path)])
    assert res.ok, res
    case.must_start(cid)
    case.wait_stopped(cid)
    results = case.read_results(expect)
    assert_checks(results, "tty", "console")
