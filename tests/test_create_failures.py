"""A create that fails leaves nothing behind: no state, no process, no mount; one clear error."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Bundle,
    Pyrunc,
    error_message,
    host_mounts,
    new_mounts_under,
    new_processes_of,
    other_pidns_processes,
)

Edit = Callable[[dict[str, Any], Path], None]


def set_path(*keys: str | int, value: Any) -> Edit:
    def edit(config: dict[str, Any], tmp_path: Path) -> None:
        del tmp_path
        target: Any = config
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def add_bind_from_missing_source(config: dict[str, Any], tmp_path: Path) -> None:
    config["mounts"].append(
        {"destination": "/mnt", "type": "bind", "source": str(tmp_path / "no-such-source"),
         "options": ["rbind"]}
    )


def add_bad_tmpfs(config: dict[str, Any], tmp_path: Path) -> None:
    del tmp_path
    config["mounts"].append(
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["size=not-a-size"]}
    )


def add_bad_sysctl(config: dict[str, Any], tmp_path: Path) -> None:
    del tmp_path
    config["linux"]["sysctl"] = {"net.ipv4.no_such_sysctl": "1"}


def raise_nofile_hard(config: dict[str, Any], tmp_path: Path) -> None:
    del tmp_path
    # the hard limit here is 20000 and root lacks CAP_SYS_RESOURCE: this cannot be raised
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1048576}]


def search_without_path(config: dict[str, Any], tmp_path: Path) -> None:
    """No PATH at all: Go's exec.LookPath (runc) finds nothing, not even in the cwd."""
    del tmp_path
    config["process"].update(env=["TERM=xterm"], cwd="/bin", args=["sh", "-c", "echo ran"])


def search_dot_in_path(config: dict[str, Any], tmp_path: Path) -> None:
    """PATH=.: Go >= 1.19's LookPath refuses a match relative to the cwd (exec.ErrDot)."""
    del tmp_path
    config["process"].update(env=["PATH=.:/nothing"], cwd="/bin", args=["echo", "ran"])


def idmapped_mount_without_linux(config: dict[str, Any], tmp_path: Path) -> None:
    """The idmap trees are made before the plan: they too need the config's linux section."""
    del config["linux"]
    config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(tmp_path),
                             "options": ["bind", "idmap"]})


def join_namespace_of_another_type(config: dict[str, Any], tmp_path: Path) -> None:
    """A namespace path that names a namespace of another type: setns(2) in the child
    refused it (EINVAL) after the clone; the parent says which path and which type now."""
    del tmp_path
    for ns in config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/proc/self/ns/uts"


# (edit, words the error must contain)
CASES: dict[str, tuple[Edit, list[str]]] = {
    "hostname-wrong-type": (set_path("hostname", value=5), ["config.json: hostname:"]),
    "args-wrong-type": (set_path("process", "args", value="sh"), ["config.json: process.args:"]),
    "rlimit-wrong-type": (
        set_path("process", "rlimits", 0, "soft", value="many"),
        ["config.json: process.rlimits[0].soft:"],
    ),
    "missing-executable": (
        set_path("process", "args", value=["nosuchbin", "arg"]),
        ['exec: "nosuchbin": executable file not found in $PATH'],
    ),
    "not-executable": (
        set_path("process", "args", value=["/etc/passwd"]),
        ['exec: "/etc/passwd"', "permission denied"],
    ),
    "directory-as-executable": (
        set_path("process", "args", value=["/etc"]),
        ['exec: "/etc"', "permission denied"],
    ),
    "bind-source-missing": (
        add_bind_from_missing_source,
        ["no-such-source", "no such file or directory"],
    ),
    "no-PATH-executable-in-cwd": (
        search_without_path,
        ['exec: "sh": executable file not found in $PATH'],
    ),
    "dot-in-PATH": (
        search_dot_in_path,
        ['exec: "echo": cannot run executable found relative to current directory'],
    ),
    "rlimit-above-hard-limit": (raise_nofile_hard, ["RLIMIT_NOFILE"]),
    "tmpfs-bad-option": (add_bad_tmpfs, ["/scratch"]),
    "unknown-sysctl": (add_bad_sysctl, ["net.ipv4.no_such_sysctl"]),
    "missing-rootfs": (set_path("root", "path", value="no-such-rootfs"), ["root.path"]),
    "idmapped-mount-without-linux": (idmapped_mount_without_linux, ["config.json: linux:"]),
    "namespace-of-another-type": (
        join_namespace_of_another_type,
        ["config.json: linux.namespaces[",
         "].path: /proc/self/ns/uts: a uts namespace, not network"],
    ),
}


@pytest.mark.parametrize("command", ["create", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_failed_create_leaves_nothing(
    bundle: Bundle,
    pyrunc: Pyrunc,
    tmp_path: Path,
    root_parent: Path,
    cid: str,
    case: str,
    command: str,
) -> None:
    edit, words = CASES[case]
    edit(bundle.config, tmp_path)
    bundle.write()
    mounts_before = host_mounts()
    procs_before = other_pidns_processes()

    pid_file = tmp_path / "init.pid"
    proc = pyrunc(command, "--bundle", bundle.path, "--pid-file", pid_file, cid)

    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    message = error_message(proc.stderr)
    for word in words:
        assert word in message
    assert os.listdir(pyrunc.root) == []
    assert os.listdir(root_parent) == ["root"]
    assert not pid_file.exists()
    assert new_processes_of(procs_before, pyrunc.root, bundle.path) == []
    assert new_mounts_under(mounts_before, tmp_path) == []
    # the state says so too
    state = pyrunc("state", cid)
    assert state.returncode == 1 and "does not exist" in state.stderr


def test_failed_create_does_not_block_the_id(bundle: Bundle, pyrunc: Pyrunc, cid: str) -> None:
    bundle.set_args("nosuchbin")
    assert pyrunc("create", "--bundle", bundle.path, cid).returncode == 1
    bundle.set_args("sh", "-c", "exit 0")
    proc = pyrunc("run", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr


def test_create_with_existing_id_leaves_the_other_alone(
    bundle: Bundle, pyrunc: Pyrunc, cid: str
) -> None:
    bundle.set_args("sleep", "1000")
    pyrunc("create", "--bundle", bundle.path, cid, check=True)
    first = pyrunc.state(cid)
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    assert f"container with id exists: {cid}" in proc.stderr
    assert pyrunc.state(cid) == first


@pytest.fixture
def bound_namespaces(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """The host's network and uts namespaces bind-mounted on files, as `ip netns add`, podman
    and CNI keep a namespace (/run/netns/NAME): such a file's /proc/self/fd link names the
    file, not "net:[inode]"."""
    bound: dict[str, Path] = {}
    try:
        for name in ("net", "uts"):
            target = tmp_path / f"ns-{name}"
            target.touch()
            subprocess.run(["mount", "--bind", f"/proc/self/ns/{name}", str(target)],
                           check=True, timeout=30)  # fmt: skip
            bound[name] = target
        yield bound
    finally:
        for target in bound.values():
            subprocess.run(["umount", str(target)], check=False, timeout=30)


def test_a_bind_mounted_namespace_file_is_joined_and_its_type_checked(
    bundle: Bundle, pyrunc: Pyrunc, cid: str, bound_namespaces: dict[str, Path]
) -> None:
    network = next(ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] == "network")
    network["path"] = str(bound_namespaces["net"])
    bundle.set_args("readlink", "/proc/self/ns/net")
    proc = pyrunc("run", "--bundle", bundle.path, cid)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == os.readlink("/proc/self/ns/net") + "\n"
    network["path"] = str(bound_namespaces["uts"])
    bundle.write()
    proc = pyrunc("run", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    assert error_message(proc.stderr).endswith(
        f"].path: {bound_namespaces['uts']}: a uts namespace, not network")
    assert os.listdir(pyrunc.root) == []
