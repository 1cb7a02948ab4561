"""`delete` against the fake host: a stopped container, --force of a running or paused one,
and the recovery of what a killed create left (an intent, or nothing but derivable cgroups)."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc.cli import dispatch
from pyrunc.state import INTENT_FILE, StateStore
from unit.containers import INIT, START, container
from unit.fakes import RecordingSyscall, mountinfo_line


def delete(store: StateStore, *args: str) -> int:
    return dispatch(["--root", store.root, "delete", *args])


def ours(fake: RecordingSyscall) -> list[str]:
    return sorted(d for d in fake.dirs if "/pyrunc" in d)


def test_a_stopped_container_loses_its_cgroups_leaf_first_and_its_state(
        fake: RecordingSyscall, store: StateStore) -> None:
    container(fake, store, status="stopped")
    assert delete(store, "c1") == 0
    assert ours(fake) == []
    assert not fake.exists(store.path("c1"))
    removed = [c[1] for c in fake.named("rmdir")]
    for leaf in [r for r in removed if r.startswith("/sys/fs/cgroup/") and r.endswith("/c1")]:
        tag = os.path.dirname(leaf)
        assert removed.index(leaf) < removed.index(tag) < removed.index(os.path.dirname(tag))
    assert not fake.named("pidfd_send_signal")  # nothing was left to kill


def test_a_running_container_needs_force(fake: RecordingSyscall, store: StateStore,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    container(fake, store)
    assert delete(store, "c1") == 1
    assert "cannot delete container c1 that is not stopped: running" in capsys.readouterr().err
    assert fake.alive(INIT) and fake.exists(store.path("c1"))
    assert not fake.named("pidfd_send_signal", "rmdir")


@pytest.mark.parametrize("status", ["running", "created"])
def test_force_kills_the_init_then_the_cgroup_then_removes(
        fake: RecordingSyscall, store: StateStore, status: str) -> None:
    container(fake, store, status=status)
    other = fake.spawn(5001, cgroup=_cgroup_of(fake, INIT))
    assert delete(store, "--force", "c1") == 0
    sent = [c[1:] for c in fake.named("pidfd_send_signal")]
    assert sent[0] == (INIT, 9)  # the init first, pinned by its pidfd, before the freeze
    first_freeze = next(i for i, c in enumerate(fake.calls) if c[0] == "write")
    assert fake.calls.index(("pidfd_send_signal", INIT, 9)) < first_freeze
    assert (5001, 9) in sent  # then what is left in the cgroup
    assert not fake.alive(INIT) and not fake.alive(other.pid)
    first_rmdir = fake.calls.index(fake.named("rmdir")[0])
    assert all(fake.calls.index(c) < first_rmdir for c in fake.named("pidfd_send_signal"))
    assert ours(fake) == []
    assert not fake.exists(store.path("c1"))
    assert fake.fds == {}


def test_force_of_a_paused_v1_container_thaws_it_so_that_it_dies(
        fake: RecordingSyscall, store: StateStore) -> None:
    data = container(fake, store, status="paused", kind="v1")
    freezer = data["pyrunc"]["freezer_state"]
    assert delete(store, "--force", "c1") == 0
    assert (freezer, "THAWED") in fake.writes()
    assert not fake.alive(INIT)
    assert ours(fake) == []


def test_recovery_from_an_intent_kills_the_init_and_removes_its_cgroups(
        fake: RecordingSyscall, store: StateStore) -> None:
    """A create SIGKILLed after its intent and its cgroups, before its state.json."""
    data = container(fake, store)
    fake.unlink(store.file("c1", "state.json"))
    intent = {"pid": INIT, "init_start_time": START, "cgroup": data["pyrunc"]["cgroup"]}
    fake.files[store.file("c1", INTENT_FILE)] = json.dumps(intent).encode()
    assert delete(store, "c1") == 1  # without --force: not found
    assert fake.alive(INIT)
    assert delete(store, "--force", "c1") == 0
    assert ("pidfd_send_signal", INIT, 9) in fake.calls
    assert not fake.alive(INIT)
    assert ours(fake) == []
    assert not fake.exists(store.path("c1"))


def test_recovery_without_any_record_removes_the_derivable_cgroups(
        fake: RecordingSyscall, store: StateStore) -> None:
    """A create killed before it wrote its intent: only the cgroups named after the root and
    the id remain (and maybe an empty state directory)."""
    container(fake, store)
    pid_dirs = sorted(_dirs_of(fake, INIT))
    fake.exit(fake.processes[INIT])
    for name in fake.listdir(store.path("c1")):
        fake.unlink(os.path.join(store.path("c1"), name))
    assert delete(store, "--force", "c1") == 0
    assert pid_dirs and all(d not in fake.dirs for d in pid_dirs)
    assert not fake.exists(store.path("c1"))


@pytest.mark.parametrize("before", ["330", 3.5, None, "missing"])
def test_recovery_never_detaches_with_a_damaged_host_mounts_record(
        fake: RecordingSyscall, store: StateStore, capsys: pytest.CaptureFixture[str],
        before: object) -> None:
    """An intent whose host_mounts "before" is damaged (not an id, not null) says nothing of
    what was mounted on the rootfs before the create: read as null ("nothing was") it would
    detach the host's own mount there. Recovery leaves the mounts, says so, and goes on."""
    data = container(fake, store)
    fake.unlink(store.file("c1", "state.json"))
    rootfs = "/b/rootfs"
    host_own = mountinfo_line(300, rootfs, "ext4", "rw")  # mount id 330, the host's
    fake.files["/proc/self/mountinfo"] += (host_own + "\n").encode()
    mounts: dict[str, object] = {"rootfs": rootfs, "before": before}
    if before == "missing":
        del mounts["before"]
    intent = {"pid": INIT, "init_start_time": START, "cgroup": data["pyrunc"]["cgroup"],
              "host_mounts": mounts}
    fake.files[store.file("c1", INTENT_FILE)] = json.dumps(intent).encode()
    status = delete(store, "--force", "c1")
    umounts = fake.named("umount")
    if before is None:  # null: nothing was mounted there, all on it is the create's
        assert umounts  # (the fake's mount table does not follow: the rest is not this test's)
        return
    err = capsys.readouterr().err
    assert status == 0, err
    assert not umounts
    assert f"host_mounts: malformed: the mounts on {rootfs} are left" in err, err
    assert not fake.alive(INIT) and not fake.exists(store.path("c1"))


def test_recovery_says_what_it_could_not_remove(fake: RecordingSyscall, store: StateStore,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    container(fake, store, status="stopped")
    leaf = next(d for d in fake.dirs if d.startswith("/sys/fs/cgroup/memory/pyrunc/r-")
                and d.endswith("/c1"))
    fake.unlink(store.file("c1", "state.json"))
    fake.fail("rmdir", leaf, errno.EACCES)
    assert delete(store, "--force", "c1") == 1
    err = capsys.readouterr().err
    assert f"delete --force c1: could not remove: remove cgroup {leaf}: permission denied" in err
    assert fake.exists(store.path("c1"))  # kept, for another try
    assert delete(store, "--force", "c1") == 0
    assert ours(fake) == []


def _dirs_of(fake: RecordingSyscall, pid: int) -> set[str]:
    return set(fake.processes[pid].dirs)


def _cgroup_of(fake: RecordingSyscall, pid: int) -> str:
    d = next(iter(fake.processes[pid].dirs))
    h = next(h for h in fake.hierarchies if d.startswith(h.mount + "/"))
    return d.removeprefix(h.mount)
