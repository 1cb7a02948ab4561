"""The state store against the fake host: state.json written atomically and durably (a
temporary file written whole, fsync'ed, renamed, the directory fsync'ed, in that order), every
failure on the way leaving the old state and no temporary file; reads that never follow a
symlink, block on a FIFO or take an oversized file; the container lock; removal."""

from __future__ import annotations

import errno
import os

import pytest

from pyrunc import jsonlite
from pyrunc.errors import ContainerNotFound, PyruncError, StateCorrupt
from pyrunc.state import INTENT_FILE, STATE_FILE, StateStore, read_file, write_file
from unit.fakes import OpenFile, RecordingSyscall

OLD = {"ociVersion": "1.0.2", "id": "c1", "pid": 0, "pyrunc": {}}
NEW = {**OLD, "pid": 42, "bundle": "/b"}
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


def body(data: dict) -> bytes:
    return jsonlite.dumps(data, separators=(",", ":")).encode()


@pytest.fixture
def c1(fake: RecordingSyscall, store: StateStore) -> str:
    """c1's state.json (OLD) on the fake; returns the temporary name a write uses."""
    fake.makedirs(store.path("c1"), 0o711)
    store.write("c1", OLD)
    fake.calls.clear()
    return store.file("c1", f".{STATE_FILE}.{os.getpid()}")


def assert_old_state_kept(fake: RecordingSyscall, store: StateStore, tmp: str) -> None:
    assert store.load("c1").data == OLD
    assert tmp not in fake.files
    assert fake.fds == {}


def test_a_write_is_temporary_file_fsync_rename_then_directory_fsync(
        fake: RecordingSyscall, store: StateStore, c1: str) -> None:
    store.write("c1", NEW)
    path, d = store.file("c1", STATE_FILE), store.path("c1")
    steps = [c[:2] if c[0] != "open" else c for c in fake.calls if c[0] != "close"]
    assert steps == [("open", c1, WRITE_FLAGS), ("write_fd", c1), ("fsync", c1),
                     ("rename", c1), ("open", d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC),
                     ("fsync", d)]
    closes = [i for i, c in enumerate(fake.calls) if c[0] == "close"]
    renamed = fake.calls.index(("rename", c1, path))
    assert closes[0] < renamed < closes[1]  # the file is closed before the rename
    assert fake.files[path] == body(NEW) and fake.modes[path] == 0o600
    assert fake.fds == {}


def test_a_short_write_is_continued(fake: RecordingSyscall, store: StateStore, c1: str) -> None:
    fake.short_writes(c1, 5, 3)
    store.write("c1", NEW)
    assert [len(c[2]) for c in fake.named("write_fd")] == [
        len(body(NEW)), len(body(NEW)) - 5, len(body(NEW)) - 8]
    assert store.load("c1").data == NEW


def test_a_write_that_writes_nothing_is_a_full_disk(fake: RecordingSyscall, store: StateStore,
                                                    c1: str) -> None:
    fake.short_writes(c1, 7, 0)
    with pytest.raises(PyruncError) as e:
        store.write("c1", NEW)
    assert str(e.value) == f"write {store.file('c1', STATE_FILE)}: no space left on device"
    assert not fake.named("fsync", "rename")
    assert_old_state_kept(fake, store, c1)


@pytest.mark.parametrize(("method", "err", "words"), [
    ("open", errno.EACCES, "permission denied"),
    ("write_fd", errno.ENOSPC, "no space left on device"),
    ("write_fd", errno.EDQUOT, "disk quota exceeded"),
    ("fsync", errno.EIO, "input/output error"),
    ("rename", errno.EIO, "input/output error"),  # the rename fails after the fsync
])
def test_a_failure_before_the_rename_leaves_the_old_state(
        fake: RecordingSyscall, store: StateStore, c1: str, method: str, err: int,
        words: str) -> None:
    fake.fail(method, c1, err)
    with pytest.raises(PyruncError) as e:
        store.write("c1", NEW)
    assert str(e.value) == f"write {store.file('c1', STATE_FILE)}: {words}"
    if method != "rename":
        assert not fake.named("rename")
    assert_old_state_kept(fake, store, c1)


def test_a_failed_close_is_a_failed_write_closed_once(
        fake: RecordingSyscall, store: StateStore, c1: str) -> None:
    """close(2) failing (EIO on NFS or FUSE) has freed the fd: the write fails naming the
    file, the temporary file goes, and the fd number (another thread's by then) is not closed
    a second time."""
    fake.fail("close", fake._next_fd, errno.EIO)
    with pytest.raises(PyruncError) as e:
        store.write("c1", NEW)
    assert str(e.value) == f"write {store.file('c1', STATE_FILE)}: input/output error"
    assert len(fake.named("close")) == 1
    assert_old_state_kept(fake, store, c1)


def test_a_failed_close_releases_a_lock_once(fake: RecordingSyscall, store: StateStore,
                                             c1: str) -> None:
    lk, _ = store.lock("c1")
    fd = lk.fd
    fake.fail("close", fd, errno.EINTR)
    with pytest.raises(OSError):
        lk.release()
    lk.release()  # nothing left to close
    assert fake.calls.count(("close", fd)) == 1 and fake.fds == {}


def test_a_failed_directory_sync_is_an_error_after_the_rename(
        fake: RecordingSyscall, store: StateStore, c1: str) -> None:
    fake.fail("fsync", store.path("c1"), errno.EIO)
    with pytest.raises(PyruncError) as e:
        store.write("c1", NEW)
    assert str(e.value) == (f"write {store.file('c1', STATE_FILE)}: sync {store.path('c1')}: "
                            "input/output error")
    assert store.load("c1").data == NEW and fake.fds == {}  # renamed, not known durable


def test_a_file_that_need_not_survive_the_machine_is_not_fsynced(
        fake: RecordingSyscall) -> None:
    write_file("/run/pid", b"42", 0o644, durable=False)
    assert not fake.named("fsync")
    assert fake.files["/run/pid"] == b"42" and fake.modes["/run/pid"] == 0o644


@pytest.mark.parametrize(("plant", "words"), [
    ("link", "is a symbolic link"), ("fifo", "not a regular file"),
    ("dir", "not a regular file"), ("big", "11 bytes, larger than 10"),
])
def test_a_read_takes_only_a_bounded_regular_file(fake: RecordingSyscall, plant: str,
                                                  words: str) -> None:
    path = "/run/x.json"
    if plant == "link":
        fake.links[path] = "/etc/shadow"
    elif plant == "fifo":
        fake.fifos.add(path)  # opened without O_NONBLOCK, the fake would say it hangs
    elif plant == "dir":
        fake.dirs.add(path)
    else:
        fake.files[path] = b"x" * 11
    with pytest.raises(StateCorrupt) as e:
        read_file(path, 10)
    assert str(e.value) == f"{path}: {words}"
    assert fake.fds == {}


def test_a_read_of_a_missing_or_damaged_state(fake: RecordingSyscall, store: StateStore,
                                              c1: str) -> None:
    with pytest.raises(ContainerNotFound):
        store.load("c2")
    fake.files[store.file("c1", STATE_FILE)] = b'{"id": "c1", '
    with pytest.raises(StateCorrupt) as e:
        store.load("c1")
    assert str(e.value).startswith(f"state of container c1 is corrupt: "
                                   f"{store.file('c1', STATE_FILE)}: ")
    fake.fail("read_fd", store.file("c1", STATE_FILE), errno.EIO)
    with pytest.raises(StateCorrupt) as e:
        store.load("c1")
    assert str(e.value) == f"{store.file('c1', STATE_FILE)}: input/output error"
    assert fake.fds == {}


def test_claim_makes_the_directory_locked_and_only_once(fake: RecordingSyscall,
                                                        store: StateStore) -> None:
    lock = store.claim("c1")
    d = store.path("c1")
    assert fake.modes[d] == 0o711 and ("chmod", d, 0o711) in fake.calls  # whatever the umask
    assert fake.modes[store.root] == 0o700
    held = fake.fds[lock.fd]
    assert isinstance(held, OpenFile) and held.path == d
    assert fake.locks[d] == {lock.fd: True}
    with pytest.raises(PyruncError) as e:
        store.claim("c1")
    assert str(e.value) == "container with id exists: c1"
    lock.release()
    assert fake.fds == {}


def test_a_container_being_made_is_not_listed_as_damaged(fake: RecordingSyscall,
                                                         store: StateStore) -> None:
    lock = store.claim("c1")  # a create between its claim and its state.json
    assert store.containers() == []
    lock.release()
    [unknown] = store.containers()  # nobody holds it: it is a left-over, shown as such
    assert unknown.status == "unknown"
    assert unknown.problem == f"{store.file('c1', STATE_FILE)}: missing"
    assert fake.fds == {}


def test_a_shared_lock_waits_for_nobody_else_sharing(fake: RecordingSyscall,
                                                     store: StateStore, c1: str) -> None:
    lk1, _ = store.lock("c1", exclusive=False)
    lk2, container = store.lock("c1", exclusive=False)
    assert container.data == OLD
    assert not store._busy("c1")
    lk1.release()
    lk2.release()
    assert fake.locks[store.path("c1")] == {} and fake.fds == {}


def test_remove_takes_the_intent_last_and_what_damage_put_there(
        fake: RecordingSyscall, store: StateStore, c1: str) -> None:
    d = store.path("c1")
    fake.files[f"{d}/{INTENT_FILE}"] = b"{}"
    fake.files[f"{d}/zz.json"] = b"{}"
    fake.makedirs(f"{d}/planted/deeper", 0o755)  # a directory where a file should be
    fake.files[f"{d}/planted/deeper/f"] = b""
    fake.links[f"{d}/planted/out"] = "/etc"  # removed itself, never followed
    store.remove("c1")
    unlinked = [c[1] for c in fake.named("unlink")]
    assert unlinked[-1] == f"{d}/{INTENT_FILE}"
    assert f"{d}/planted/out" in unlinked and "/etc" in fake.dirs
    assert not fake.exists(d) and fake.exists(store.root)
    assert store.ids() == []


def test_ids_are_only_valid_container_names(fake: RecordingSyscall, store: StateStore) -> None:
    for name in ("a", "b.c", ".state.json.12", "bad name"):
        fake.makedirs(f"{store.root}/{name}", 0o711)
    assert store.ids() == ["a", "b.c"]
    assert StateStore("/run/no-such-root").ids() == []
