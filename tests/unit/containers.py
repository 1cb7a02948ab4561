"""Containers in a state store, their init and cgroups: all on the fake host (the store's
files too, through pyrunc.syscall as the runtime's every other file)."""

from __future__ import annotations

from pyrunc.cgroups import layout, manager
from pyrunc.state import EXEC_FIFO, StateStore
from unit.fakes import RecordingSyscall

INIT = 5000
START = "7777"


def container(fake: RecordingSyscall, store: StateStore, cid: str = "c1", *,
              status: str = "running", kind: str | None = "hybrid",
              own_pid_ns: bool = True) -> dict:
    """A container as create leaves it: its init (alive unless `status` is stopped), its
    cgroups made under /pyrunc/<root tag>/<id> with the init in them, state.json; `created`
    keeps the exec fifo. Returns the state document."""
    runtime: dict = {"init_start_time": START, "own_pid_ns": own_pid_ns}
    if kind is not None:
        if not fake.hierarchies:
            fake.layout(kind)
        from pyrunc.cgroups import paths

        record: dict = {}
        cg = manager.Cgroups.create(layout.detect(), paths.resolve(None, cid, store.root),
                                    record, own=True)
        runtime["cgroup"] = record
        if cg.freezer_file:
            runtime["freezer_state"] = cg.freezer_file
    init = fake.spawn(INIT, start_time=START, pid_ns="pid:[4026532000]")
    if kind is not None:
        cg.add_pid(INIT)
    if status == "stopped":
        fake.exit(init)
    data = {"ociVersion": "1.0.2", "id": cid, "pid": INIT, "bundle": "/b", "rootfs": "/b/rootfs",
            "created": "2026-01-01T00:00:00Z", "owner": "", "pyrunc": runtime}
    fake.makedirs(store.path(cid), 0o711)
    store.write(cid, data)
    if status == "created":
        fake.fifos.add(store.file(cid, EXEC_FIFO))
    if status == "paused":
        manager.Cgroups(runtime["cgroup"]).freeze()
    fake.calls.clear()
    return data
