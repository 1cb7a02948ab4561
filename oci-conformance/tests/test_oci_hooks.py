"""config.md#posix-platform-hooks and runtime.md#lifecycle: when, where and with what hooks run.

Every hook is the checker in hook mode: it appends one JSON line to a log saying what it saw
(its namespaces, its root, the state on stdin, what the container process is executing).
Hooks that run in the runtime namespace use the checker's host path (absent from the rootfs);
startContainer uses /conformance/checker, which exists only inside the rootfs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import (
    CHECKER_IN_CONTAINER,
    IO_IN_CONTAINER,
    Case,
    Session,
    read_hook_log,
    schema_errors,
)

req = pytest.mark.req
KINDS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
RUNTIME_NS = {"prestart", "createRuntime", "poststart", "poststop"}
# kind -> (executed in the right namespace, path resolves in the right namespace)
WHERE_REQS = {
    "prestart": (("config.md#prestart-4", "config.md#posix-platform-hooks-5"),
                 ("config.md#prestart-3", "config.md#posix-platform-hooks-4")),
    "createRuntime": (("config.md#createruntime-hooks-3", "config.md#posix-platform-hooks-10"),
                      ("config.md#createruntime-hooks-2", "config.md#posix-platform-hooks-9")),
    "createContainer": (("config.md#createcontainer-hooks-4", "config.md#posix-platform-hooks-12"),
                        ("config.md#createcontainer-hooks-3", "config.md#posix-platform-hooks-11")),
    "startContainer": (("config.md#startcontainer-hooks-3", "config.md#posix-platform-hooks-14"),
                       ("config.md#startcontainer-hooks-2", "config.md#posix-platform-hooks-13")),
    "poststart": (("config.md#poststart-3", "config.md#posix-platform-hooks-16"),
                  ("config.md#poststart-2", "config.md#posix-platform-hooks-15")),
    "poststop": (("config.md#poststop-3", "config.md#posix-platform-hooks-18"),
                 ("config.md#poststop-2", "config.md#posix-platform-hooks-17")),
}  # fmt: skip
FAIL_REQS = {
    "prestart": "runtime.md#lifecycle-6",
    "createRuntime": "runtime.md#lifecycle-8",
    "createContainer": "runtime.md#lifecycle-10",
    "startContainer": "runtime.md#lifecycle-12",
    "poststart": "runtime.md#lifecycle-15",
}
CREATE_PHASE = ["prestart", "createRuntime", "createContainer"]


def _hook_entry(case: Case, kind: str, name: str, *extra: str) -> dict[str, Any]:
    """A hook running the checker; startContainer's path and log are container paths."""
    if kind == "startContainer":
        path, log = CHECKER_IN_CONTAINER, f"{IO_IN_CONTAINER}/hooks.log"
    else:
        path, log = str(case.session.checker), str(case.io / "hooks.log")
    if kind == "createContainer":
        extra = (*extra, "--mark", str(Path(case.config["root"]["path"]) / "mnt" / "a"))
    return {"path": path, "args": ["checker", "hook", name, log, *extra], "env": [f"HOOK={name}"]}


def _all_hooks(case: Case, per_kind: int = 2, sleep_ms: int = 0) -> None:
    hooks: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        extra = (
            ("--sleep-ms", str(sleep_ms)) if sleep_ms and kind in ("poststart", "poststop") else ()
        )
        hooks[kind] = [
            _hook_entry(case, kind, f"{kind}-{i}", *extra) for i in range(1, per_kind + 1)
        ]
    case.config["hooks"] = hooks
    case.add_mount("/mnt/a", "tmpfs", "tmpfs", ["size=1m"])


@dataclass
class Lifecycle:
    """One container taken through create, start, kill and delete with two hooks of each kind."""

    cid: str
    host_ns: dict[str, int]
    container_ns: dict[str, int] = field(default_factory=dict)
    rootfs: str = ""
    after_create: list[dict[str, Any]] = field(default_factory=list)
    after_start: list[dict[str, Any]] = field(default_factory=list)
    after_delete: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def records(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.after_delete if r["hook"].startswith(kind + "-")]


@pytest.fixture(scope="module")
def lifecycle(session: Session) -> Iterator[Lifecycle]:
    case = Case(session, "hooks-lifecycle")
    try:
        _all_hooks(case, sleep_ms=300)
        log = case.io / "hooks.log"
        case.set_args(
            CHECKER_IN_CONTAINER, "append", f"{IO_IN_CONTAINER}/hooks.log",
            '{"hook": "process"}\n', "--then-sleep",
        )  # fmt: skip
        cid = case.new_id()
        lc = Lifecycle(cid=cid, host_ns=dict(session.host.ns), rootfs=case.config["root"]["path"])
        _, res = case.create(cid)
        lc.after_create = read_hook_log(log)
        if not res.ok:
            lc.errors.append(f"create: {res}")
            yield lc
            return
        pid = case.pid_of[cid]
        for conf, kind in (("mount", "mnt"), ("network", "net"), ("pid", "pid")):
            lc.container_ns[conf] = os.stat(f"/proc/{pid}/ns/{kind}").st_ino
        res = case.rt("start", cid)
        lc.after_start = read_hook_log(log)
        if not res.ok:
            lc.errors.append(f"start: {res}")
        case.rt("kill", cid, "KILL")
        case.wait_stopped(cid)
        res = case.delete(cid)
        lc.after_delete = read_hook_log(log)
        if not res.ok:
            lc.errors.append(f"delete: {res}")
        yield lc
    finally:
        case.cleanup()


def _names(records: list[dict[str, Any]]) -> list[str]:
    return [r["hook"] for r in records]


def _ino(link: str) -> int:
    return int(link.split("[", 1)[1].rstrip("]")) if "[" in link else -1


@req(
    "runtime.md#lifecycle-5",
    "runtime.md#lifecycle-7",
    "runtime.md#lifecycle-9",
    "runtime.md#lifecycle-11",
    "runtime.md#lifecycle-14",
    "runtime.md#lifecycle-17",
    "config.md#posix-platform-hooks-19",
    "config.md#prestart-2",
    "config.md#createcontainer-hooks-2",
)
def test_hooks_invoked_in_order(lifecycle: Lifecycle) -> None:
    """create runs prestart, createRuntime, createContainer; start runs startContainer then
    poststart; delete runs poststop; two hooks of a kind run in their listed order."""
    assert not lifecycle.errors, lifecycle.errors
    want_create = [f"{k}-{i}" for k in CREATE_PHASE for i in (1, 2)]
    want_start = want_create + ["startContainer-1", "startContainer-2"]
    got_create = _names(lifecycle.after_create)
    got_start = [n for n in _names(lifecycle.after_start) if n != "process"]
    got_all = [n for n in _names(lifecycle.after_delete) if n != "process"]
    problems = []
    if got_create != want_create:
        problems.append(f"after create: {got_create}, expected {want_create}")
    if got_start != want_start + ["poststart-1", "poststart-2"]:
        problems.append(f"after start: {got_start}")
    if got_all != want_start + ["poststart-1", "poststart-2", "poststop-1", "poststop-2"]:
        problems.append(f"after delete: {got_all}")
    assert not problems, "; ".join(problems)


@req("config.md#posix-platform-hooks-20", "runtime.md#state-8")
def test_hooks_receive_state(lifecycle: Lifecycle) -> None:
    """Every hook reads the container's state (schema-valid, this id, its bundle) on stdin."""
    problems = []
    records = [r for r in lifecycle.after_delete if r["hook"] != "process"]
    assert records, f"no hook ran: {lifecycle.errors}"
    for r in records:
        state = r.get("state")
        if not isinstance(state, dict):
            problems.append(f"{r['hook']}: stdin is not a JSON state: {r.get('stdin', '')[:100]!r}")
            continue
        errors = schema_errors("state-schema.json", state)
        if errors:
            problems.append(f"{r['hook']}: {errors}")
        if state.get("id") != lifecycle.cid:
            problems.append(f"{r['hook']}: id {state.get('id')!r}")
    assert not problems, "; ".join(problems)


@req("config.md#posix-platform-hooks-20")
def test_hook_state_status(lifecycle: Lifecycle) -> None:
    """The state's status fits the moment: creating/created during create, created before the
    program runs, running after it, stopped after delete."""
    allowed = {
        "prestart": {"creating", "created"},
        "createRuntime": {"creating", "created"},
        "createContainer": {"creating", "created"},
        "startContainer": {"created"},
        "poststart": {"running"},
        "poststop": {"stopped"},
    }
    problems = []
    for kind, ok in allowed.items():
        for r in lifecycle.records(kind):
            status = (r.get("state") or {}).get("status")
            if status not in ok:
                problems.append(f"{r['hook']}: status {status!r}, expected one of {sorted(ok)}")
    assert lifecycle.after_delete and not problems, "; ".join(problems) or lifecycle.errors


@pytest.mark.parametrize("kind", [pytest.param(k, marks=req(*WHERE_REQS[k][0])) for k in KINDS])
def test_hook_namespace(lifecycle: Lifecycle, kind: str) -> None:
    """prestart, createRuntime, poststart, poststop run in the runtime's mount and network
    namespaces; createContainer and startContainer in the container's."""
    records = lifecycle.records(kind)
    assert records, f"no {kind} hook ran ({lifecycle.errors})"
    want = lifecycle.host_ns if kind in RUNTIME_NS else lifecycle.container_ns
    where = "runtime" if kind in RUNTIME_NS else "container"
    problems = []
    for r in records:
        for conf, key in (("mount", "ns_mnt"), ("network", "ns_net")):
            if _ino(r.get(key, "")) != want.get(conf):
                problems.append(f"{r['hook']}: {key} {r.get(key)} is not the {where}'s")
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("kind", [pytest.param(k, marks=req(*WHERE_REQS[k][1])) for k in KINDS])
def test_hook_path_resolution(lifecycle: Lifecycle, kind: str) -> None:
    """Each hook's path only exists in the namespace it must resolve in; running proves it."""
    records = lifecycle.records(kind)
    assert len(records) == 2, f"{kind}: {len(records)} of 2 hooks ran ({lifecycle.errors})"


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("prestart", marks=req("config.md#prestart-1")),
        pytest.param("createRuntime", marks=req("config.md#createruntime-hooks-1")),
    ],
)
def test_create_hooks_after_namespaces(lifecycle: Lifecycle, kind: str) -> None:
    """prestart/createRuntime run during create, once the container's namespaces exist."""
    records = [r for r in lifecycle.after_create if r["hook"].startswith(kind + "-")]
    assert records, f"no {kind} hook ran during create ({lifecycle.errors})"
    problems = []
    for r in records:
        if _ino(r.get("target_ns_mnt", "")) != lifecycle.container_ns.get("mount"):
            problems.append(
                f"{r['hook']}: container mount namespace not there yet ({r.get('target_ns_mnt')})"
            )
        if _ino(r.get("target_ns_net", "")) != lifecycle.container_ns.get("network"):
            problems.append(
                f"{r['hook']}: container network namespace not there yet ({r.get('target_ns_net')})"
            )
    assert not problems, "; ".join(problems)


@req("config.md#createcontainer-hooks-1")
def test_create_container_hook_before_pivot(lifecycle: Lifecycle) -> None:
    """createContainer runs after the mounts are made but before pivot_root: the configured
    tmpfs is already mounted, seen at its host path under the rootfs."""
    records = lifecycle.records("createContainer")
    assert records, f"no createContainer hook ran ({lifecycle.errors})"
    problems = [
        f"{r['hook']}: {lifecycle.rootfs}/mnt/a {r.get('mark')}"
        for r in records
        if r.get("mark") != "mounted"
    ]
    assert not problems, "; ".join(problems)


@req("config.md#startcontainer-hooks-1")
def test_start_container_hook_before_program(lifecycle: Lifecycle) -> None:
    """startContainer runs before the program: pid 1 is not yet the program, whose first
    action (a line in the same log) comes after the hooks'."""
    records = lifecycle.records("startContainer")
    assert records, f"no startContainer hook ran ({lifecycle.errors})"
    problems = []
    for r in records:
        if r.get("pid1_exe", "").endswith(CHECKER_IN_CONTAINER):
            problems.append(f"{r['hook']}: the program already runs (pid 1 is {r['pid1_exe']})")
    names = _names(lifecycle.after_delete)
    if "process" in names and names.index("process") < names.index("startContainer-2"):
        problems.append(f"the program ran before startContainer: {names}")
    assert not problems, "; ".join(problems)


@req("config.md#poststart-1")
def test_poststart_after_program_before_start_returns(lifecycle: Lifecycle) -> None:
    """poststart runs once the program runs (the container process executes the checker, not
    the runtime's init), and start returns only after it (each hook sleeps 0.3 s before
    logging what it saw when it started)."""
    records = [r for r in lifecycle.after_start if r["hook"].startswith("poststart-")]
    assert len(records) == 2, (
        f"poststart records when start returned: {_names(lifecycle.after_start)}"
    )
    problems = [
        f"{r['hook']}: the container process executes {r.get('target_exe')!r}"
        for r in records
        if not r.get("target_exe", "").endswith(CHECKER_IN_CONTAINER)
    ]
    assert not problems, "; ".join(problems)


@req("config.md#poststop-1")
def test_poststop_after_delete_before_return(lifecycle: Lifecycle) -> None:
    """poststop runs after the container is gone, and delete returns only after it."""
    records = lifecycle.records("poststop")
    assert len(records) == 2, (
        f"poststop records when delete returned: {_names(lifecycle.after_delete)}"
    )
    alive = [r["hook"] for r in records if r.get("target_alive") == "yes"]
    assert not alive, f"the container process still existed during {alive}"


# --- failing hooks ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [pytest.param(k, marks=req(r)) for k, r in FAIL_REQS.items()])
def test_failing_hook(case: Case, kind: str) -> None:
    """A failing hook makes its operation fail, the container is stopped (the program does not
    run if it had not yet) and the lifecycle goes on at destroy + poststop."""
    case.config["hooks"] = {
        kind: [_hook_entry(case, kind, f"{kind}-fails", "--exit", "1")],
        "poststop": [_hook_entry(case, "poststop", "poststop-1")],
    }
    case.add_mount("/mnt/a", "tmpfs", "tmpfs", ["size=1m"])
    case.set_args(CHECKER_IN_CONTAINER, "write", f"{IO_IN_CONTAINER}/ran", "yes", "--then-sleep")
    cid, res = case.create()
    problems = []
    if kind in CREATE_PHASE:
        failed = res
    else:
        if not res.ok:
            pytest.fail(f"create failed before the {kind} hook could: {res}")
        pid = case.pid_of[cid]
        failed = case.rt("start", cid)
        time.sleep(0.2)
        try:
            os.kill(pid, 0)
            if Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z":
                problems.append("the container process is still alive")
        except ProcessLookupError:
            pass
    if failed.ok:
        problems.append(f"the operation succeeded despite the failing {kind} hook")
    status = case.rt.status(cid)
    if status not in (None, "stopped"):
        problems.append(f"the container is {status}, not stopped")
    if kind != "poststart" and (case.io / "ran").exists():
        problems.append("the program ran")
    if not any(r["hook"] == "poststop-1" for r in read_hook_log(case.io / "hooks.log")):
        # step 12 (destroy) may wait for delete; poststop must then run at delete
        case.delete(cid, force=True)
        if not any(r["hook"] == "poststop-1" for r in read_hook_log(case.io / "hooks.log")):
            problems.append("poststop hooks never ran")
    assert not problems, "; ".join(problems)


@req("runtime.md#lifecycle-18", "runtime.md#warnings-1")
def test_failing_poststop_is_a_warning(case: Case) -> None:
    """A failing poststop hook: delete still succeeds, the next poststop hook still runs."""
    case.config["hooks"] = {
        "poststop": [
            _hook_entry(case, "poststop", "poststop-fails", "--exit", "1"),
            _hook_entry(case, "poststop", "poststop-2"),
        ]
    }
    case.set_args("/bin/true")
    cid = case.run_to_completion()
    res = case.delete(cid)
    names = _names(read_hook_log(case.io / "hooks.log"))
    assert res.ok, f"delete failed because of the poststop hook: {res}"
    assert names == ["poststop-fails", "poststop-2"], names
    assert case.rt.status(cid) is None, "the container still exists"
