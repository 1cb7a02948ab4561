"""The seam itself: one replaceable object, a fake that implements all of it, and cheap."""

from __future__ import annotations

import os
import subprocess
import sys

from pyrunc import procfs, syscall
from unit.fakes import RecordingSyscall

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _methods(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}


def test_real_and_fake_implement_every_method() -> None:
    wanted = _methods(syscall.Syscall)
    assert wanted >= {"read", "write", "mkdir", "rmdir", "kill", "pidfd_open", "mount"}
    assert wanted <= _methods(syscall.Linux)
    assert wanted <= _methods(RecordingSyscall)


def test_replace_returns_the_previous_one(fake: RecordingSyscall) -> None:
    assert syscall.get() is fake
    other = RecordingSyscall()
    assert syscall.replace(other) is fake
    assert syscall.get() is other
    syscall.replace(fake)


def test_the_seam_imports_nothing_but_os() -> None:
    code = ("import sys; before = set(sys.modules); import pyrunc.syscall; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out == ["pyrunc", "pyrunc.syscall"]


def test_signal_reaches_only_the_recorded_process(fake: RecordingSyscall) -> None:
    fake.spawn(300, start_time="111")
    assert not procfs.signal_process(300, "999", 15)  # the pid was reused: never signalled
    assert procfs.signal_process(300, "111", 10)
    assert fake.named("pidfd_send_signal") == [("pidfd_send_signal", 300, 10)]
    assert fake.fds == {}  # every pidfd closed
    assert not procfs.signal_process(301, "111", 9)  # no such process


def test_wait_gone_and_pid_namespace(fake: RecordingSyscall) -> None:
    fake.spawn(300, start_time="1", pid_ns="pid:[1]")
    fake.spawn(301, start_time="2", pid_ns="pid:[1]")
    fake.spawn(302, start_time="3")
    assert procfs.pid_namespace_processes(300) == [(300, "1"), (301, "2")]
    assert procfs.process_alive(301, "2")
    procfs.signal_process(301, "2", 9)
    procfs.wait_gone(301, "2")
    assert not procfs.process_alive(301, "2")
    assert fake.fds == {}
