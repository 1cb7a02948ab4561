"""`ps`: the container's processes, as host pids (`--format json`) or as the lines of the
host's `ps` (default `-ef`) whose PID column is one of them, as runc prints them."""

from __future__ import annotations

import os

from pyrunc.cgroups.manager import from_runtime
from pyrunc.errors import PyruncError
from pyrunc.state import StateStore

PS_CANDIDATES = ("/usr/bin/ps", "/bin/ps", "/usr/local/bin/ps")


def container_pids(store: StateStore, container_id: str) -> list[int]:
    """Every pid in the container's cgroup (its pid namespace when it has no cgroup)."""
    lock, container = store.lock(container_id, exclusive=False)
    with lock:
        cg = from_runtime(container.runtime)
        if cg is not None:
            return cg.pids()
        if container.status == "stopped":
            return []
        from pyrunc.procfs import pid_namespace_processes

        return sorted(pid for pid, _ in pid_namespace_processes(container.pid))


def _ps_binary() -> str:
    for path in PS_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return "ps"  # the PATH, if there is one


def pid_column(header: str) -> int:
    fields = header.split()
    if "PID" not in fields:
        raise PyruncError("couldn't find PID field in ps output")
    return fields.index("PID")


def filter_table(output: str, pids: list[int]) -> str:
    """The header and the lines whose PID field is one of `pids`."""
    lines = output.split("\n")
    column = pid_column(lines[0])
    wanted = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= column:
            continue
        try:
            if int(fields[column]) in wanted:
                out.append(line)
        except ValueError:
            continue
    return "\n".join(out) + "\n"


def ps_table(pids: list[int], ps_args: list[str]) -> str:
    import subprocess

    try:
        proc = subprocess.run([_ps_binary(), *(ps_args or ["-ef"])], capture_output=True,
                              text=True, check=False)
    except OSError as e:
        raise PyruncError(f"exec ps: {(e.strerror or str(e)).lower()}") from None
    if proc.returncode != 0:
        raise PyruncError(f"ps: {(proc.stderr or proc.stdout).strip()}: exit status "
                          f"{proc.returncode}")
    return filter_table(proc.stdout, pids)
