"""Shared helpers for test_exec.py, test_seccomp.py and test_security.py.

- `start_sleeper`: a running container (`run --detach` of `sleep 1000`).
- `ConsoleReceiver`: a --console-socket server that takes the pty master (SCM_RIGHTS).
- `proc_status`: /proc/PID/status (or its text) as a dict.
- `podman_profile_to_oci`: podman's / moby's seccomp profile format (containers-common's
  /usr/share/containers/seccomp.json) converted into an OCI `linux.seccomp` the way podman does
  (containers/common pkg/seccomp: keep the rules whose includes match the container's bounding
  capabilities and architecture, drop those whose excludes match, drop includes/excludes/comment).
"""

from __future__ import annotations

import array
import errno
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from conftest import Bundle, Pyrunc

SLEEP = ("sleep", "1000")
NOBODY = 65534


def start_sleeper(pyrunc: Pyrunc, bundle: Bundle, cid: str = "ex1", *args: str) -> int:
    """`run --detach` a container running `args` (default sleep 1000); its init pid."""
    bundle.set_args(*(args or SLEEP))
    proc = pyrunc("run", "--detach", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, f"run --detach failed: {proc.stderr}"
    return pyrunc.wait_status(cid, "running")["pid"]


def create_only(pyrunc: Pyrunc, bundle: Bundle, cid: str = "ex1", *args: str) -> int:
    """`create` a container (init waiting for start); its init pid."""
    bundle.set_args(*(args or SLEEP))
    proc = pyrunc("create", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, f"create failed: {proc.stderr}"
    return pyrunc.state(cid)["pid"]


def proc_status(pid_or_text: int | str) -> dict[str, str]:
    """The fields of /proc/PID/status (pass a pid, or the text read inside a container)."""
    if isinstance(pid_or_text, int):
        with open(f"/proc/{pid_or_text}/status") as f:
            text = f.read()
    else:
        text = pid_or_text
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def cap_mask(*names: str) -> int:
    from pyrunc.capabilities import CAPABILITIES

    bits = 0
    for name in names:
        bits |= 1 << CAPABILITIES[name.removeprefix("CAP_")]
    return bits


def one_line(text: str) -> str:
    """The single non-empty line of `text` (asserting there is exactly one)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {text!r}"
    return lines[0]


def as_nobody(*argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """Run a host command as uid/gid 65534 with no capabilities (util-linux setpriv)."""
    return subprocess.run(
        ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
         "--inh-caps=-all", "--bounding-set=-all", *argv],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def wait_for(predicate: Any, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# --- the console socket ---------------------------------------------------------------


class ConsoleReceiver:
    """A --console-socket: accepts one connection, receives one fd (the pty master) with
    recvmsg + SCM_RIGHTS, then reads everything the container writes until it hangs up."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(1)
        self.fds_received: list[int] = []
        self.output = b""
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.server.settimeout(20)
            conn, _ = self.server.accept()
            with conn:
                fds = array.array("i")
                msg, ancillary, _flags, _addr = conn.recvmsg(
                    16, socket.CMSG_SPACE(4 * fds.itemsize)
                )
                for level, kind, data in ancillary:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                self.fds_received = list(fds)
            if not self.fds_received:
                return
            master = self.fds_received[0]
            for extra in self.fds_received[1:]:
                os.close(extra)
            try:
                while True:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError as e:
                        if e.errno == errno.EIO:  # every holder of the pty slave is gone
                            break
                        raise
                    if not chunk:
                        break
                    self.output += chunk
            finally:
                os.close(master)
        except BaseException as e:  # reported by wait()
            self.error = e

    def wait(self, timeout: float = 20) -> str:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the console receiver is still reading"
        self.server.close()
        if self.error is not None:
            raise self.error
        return self.output.decode(errors="replace")


# --- podman's seccomp profile ---------------------------------------------------------

PODMAN_SECCOMP = Path("/usr/share/containers/seccomp.json")
# Debian ships containers-common's files as golang-github-containers-common (bookworm);
# newer releases call the package containers-common
PODMAN_SECCOMP_PACKAGES = ("containers-common", "golang-github-containers-common")
GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "s390x": "s390x"}
SCMP_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}


def podman_profile_to_oci(
    profile: dict[str, Any], bounding_caps: list[str], machine: str = "x86_64"
) -> dict[str, Any]:
    """An OCI linux.seccomp from podman's profile format, as containers/common does it.

    The rules are filtered by the container's *bounding* capabilities and the Go name of the
    architecture ("amd64"); `archMap` contributes the native architecture and its
    sub-architectures; `includes`, `excludes`, `comment` and the textual `errno` are dropped.
    """
    goarch = GOARCH.get(machine, machine)
    native = SCMP_ARCH.get(machine)
    if profile.get("architectures") and profile.get("archMap"):
        raise ValueError("both architectures and archMap set in the seccomp profile")
    out: dict[str, Any] = {"defaultAction": profile["defaultAction"]}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    archs = list(profile.get("architectures") or ())
    for entry in profile.get("archMap") or ():
        if entry["architecture"] == native:
            archs.append(entry["architecture"])
            archs.extend(entry.get("subArchitectures") or ())
            break
    if archs:
        out["architectures"] = archs
    if profile.get("flags"):
        out["flags"] = list(profile["flags"])
    caps = set(bounding_caps)
    syscalls = []
    for call in profile.get("syscalls") or ():
        includes = call.get("includes") or {}
        excludes = call.get("excludes") or {}
        if goarch in (excludes.get("arches") or ()):
            continue
        if caps & set(excludes.get("caps") or ()):
            continue
        if includes.get("arches") and goarch not in includes["arches"]:
            continue
        if includes.get("caps") and not set(includes["caps"]) <= caps:
            continue
        # minKernel (includes/excludes) is not used by the shipped profile on this host's kernel
        names = [call["name"]] if call.get("name") else list(call.get("names") or ())
        rule: dict[str, Any] = {"names": names, "action": call["action"]}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = call["errnoRet"]
        args = []
        for a in call.get("args") or ():
            arg = {"index": a["index"], "value": a["value"], "op": a["op"]}
            if a.get("valueTwo"):
                arg["valueTwo"] = a["valueTwo"]
            args.append(arg)
        if args:
            rule["args"] = args
        syscalls.append(rule)
    out["syscalls"] = syscalls
    return out


def ensure_podman_profile() -> str | None:
    """Install the profile's package if it is missing; None when it is there, else why not."""
    if PODMAN_SECCOMP.is_file():
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    tried = []
    for package in PODMAN_SECCOMP_PACKAGES:
        for attempt in ("install", "update+install"):
            try:
                if attempt == "update+install":
                    subprocess.run(["apt-get", "update", "-qq"], capture_output=True,
                                   timeout=300, env=env)
                proc = subprocess.run(
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                    capture_output=True, text=True, timeout=300, env=env,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                tried.append(f"{package}: {e}")
                break
            if PODMAN_SECCOMP.is_file():
                return None
            tried.append(f"{package} ({attempt}): exit {proc.returncode} "
                         f"{proc.stderr.strip()[-200:]}")
    return f"{PODMAN_SECCOMP} is missing and could not be installed: " + "; ".join(tried)


# --- cleaning up without `delete --force` -----------------------------------------------


def shares_host_pid_ns(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False


def safe_delete(pyrunc: Pyrunc, cid: str) -> None:
    """Remove a container; one sharing the host's pid namespace is never `delete --force`d
    (pyrunc would signal every process of that namespace, see test_security.py S8): its init
    is SIGKILLed by pid here, then the stopped container is deleted."""
    proc = pyrunc("state", cid)
    if proc.returncode == 0:
        import json

        pid = json.loads(proc.stdout)["pid"]
        if pid and shares_host_pid_ns(pid):
            os.kill(pid, 9)
            pyrunc.wait_status(cid, "stopped")
            pyrunc("delete", cid, check=True)
            return
    pyrunc("delete", "--force", cid, check=True)
