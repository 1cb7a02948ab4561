"""`kill` against the fake host, through the CLI in-process: signal parsing, the init only,
--all through the cgroup, a stopped container, a reused pid (S8)."""

from __future__ import annotations

import os

import pytest

from pyrunc.cli import dispatch
from pyrunc.state import StateStore
from unit.containers import INIT, container
from unit.fakes import RecordingSyscall


def kill(store: StateStore, *args: str) -> int:
    return dispatch(["--root", store.root, "kill", *args])


@pytest.mark.parametrize(("word", "sig"), [
    ([], 15), (["KILL"], 9), (["SIGKILL"], 9), (["sigusr1"], 10), (["9"], 9),
    (["RTMIN+2"], 36), (["0"], 0),
])
def test_signal_names_and_numbers_reach_the_init(fake: RecordingSyscall, store: StateStore,
                                                 word: list[str], sig: int) -> None:
    fake.processes.clear()
    container(fake, store)
    fake.processes[INIT].dies_on = ()
    assert kill(store, "c1", *word) == 0
    assert fake.named("pidfd_send_signal") == [("pidfd_send_signal", INIT, sig)]
    assert fake.fds == {}


@pytest.mark.parametrize("word", ["SIGNOPE", "65", "RTMIN+40", "-1"])
def test_an_unknown_signal_is_one_line_and_nothing_is_sent(
        fake: RecordingSyscall, store: StateStore, word: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    container(fake, store)
    assert kill(store, "c1", word) == 1
    err = capsys.readouterr().err
    assert "signal" in err and word in err and "Traceback" not in err
    assert not fake.named("pidfd_send_signal", "kill")


def test_all_signals_every_process_of_the_cgroup_frozen_meanwhile(
        fake: RecordingSyscall, store: StateStore) -> None:
    container(fake, store)
    tag_path = next(d for d in fake.dirs if d.startswith("/sys/fs/cgroup/freezer/pyrunc/r-")
                    and d.count("/") == 7)
    fake.spawn(5001, cgroup=tag_path.removeprefix("/sys/fs/cgroup/freezer"))
    fake.spawn(5002)  # not the container's
    assert kill(store, "--all", "c1", "TERM") == 0
    assert {c[1] for c in fake.named("pidfd_send_signal")} == {INIT, 5001}
    freezer = tag_path + "/freezer.state"
    assert fake.writes() == [(freezer, "FROZEN"), (freezer, "THAWED")]
    assert fake.processes[5002].signals == []


def test_a_stopped_container_is_not_running(fake: RecordingSyscall, store: StateStore,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    container(fake, store, status="stopped")
    assert kill(store, "c1", "KILL") == 1
    assert "container not running" in capsys.readouterr().err
    assert not fake.named("pidfd_send_signal", "pidfd_open")


def test_all_on_a_stopped_container_reaches_what_is_left_in_its_cgroup(
        fake: RecordingSyscall, store: StateStore) -> None:
    data = container(fake, store, status="stopped")
    leaf = data["pyrunc"]["cgroup"]["dirs"][0]["dir"]
    mount = data["pyrunc"]["cgroup"]["dirs"][0]["mount"]
    fake.spawn(5001, cgroup=leaf.removeprefix(mount))  # a pod's process, say
    assert kill(store, "--all", "c1", "KILL") == 0
    assert [c[1:] for c in fake.named("pidfd_send_signal")] == [(5001, 9)]


def test_all_without_a_cgroup_uses_the_own_pid_namespace(fake: RecordingSyscall,
                                                         store: StateStore) -> None:
    container(fake, store, kind=None)
    fake.spawn(5001, pid_ns="pid:[4026532000]")  # in the container's pid namespace
    fake.spawn(5002)  # the host's
    assert kill(store, "--all", "c1", "HUP") == 0
    assert [c[1] for c in fake.named("pidfd_send_signal")] == [INIT, 5001]


def test_all_without_a_cgroup_nor_own_pid_namespace_reaches_the_init_only(
        fake: RecordingSyscall, store: StateStore) -> None:
    container(fake, store, kind=None, own_pid_ns=False)
    fake.spawn(5001, pid_ns="pid:[4026532000]")
    assert kill(store, "--all", "c1", "HUP") == 0
    assert [c[1] for c in fake.named("pidfd_send_signal")] == [INIT]


def test_a_reused_pid_is_never_signalled(fake: RecordingSyscall, store: StateStore,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    container(fake, store)
    fake.processes[INIT].start_time = "9999"  # the init died, its pid went to another process
    assert kill(store, "c1", "KILL") == 1
    assert "container not running" in capsys.readouterr().err
    assert not fake.named("pidfd_send_signal")
    assert fake.fds == {}


def test_a_missing_container(fake: RecordingSyscall, store: StateStore,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert kill(store, "nope", "KILL") == 1
    assert "container does not exist" in capsys.readouterr().err
    assert fake.calls == [("open", store.path("nope"),  # its lock: nothing else is touched
                           os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)]
