"""A damaged state.json (pyrunc.state.StateRecord's shape broken in a field a command acts on)
is reported as corrupt, in one line naming the field, never an internal error; `delete --force`
still recovers the container from what is legible."""

from __future__ import annotations

import json

import pytest

from pyrunc.cli import dispatch
from pyrunc.state import StateStore
from unit.containers import INIT, container
from unit.fakes import RecordingSyscall

DAMAGE = [
    ("host_mounts", {"rootfs": "/b/rootfs"}, "pyrunc.host_mounts"),
    ("host_mounts", {"rootfs": 7, "before": 1}, "pyrunc.host_mounts"),
    ("host_mounts", {"rootfs": "/r", "before": "1"}, "pyrunc.host_mounts"),
    ("hooks", {"poststop": "/bin/true"}, "pyrunc.hooks.poststop"),
    ("hooks", {"poststop": [{"args": ["x"]}]}, "pyrunc.hooks.poststop[0]"),
    ("hooks", {"poststart": [{"path": "/bin/true", "timeout": "1"}]},
     "pyrunc.hooks.poststart[0]"),
    ("hooks", {"poststop": [{"path": "/bin/true", "env": [1]}]}, "pyrunc.hooks.poststop[0]"),
    ("cgroup_paths", {"memory": 1}, "pyrunc.cgroup_paths"),
]


def _damage(fake: RecordingSyscall, store: StateStore, data: dict, key: str, value: object) -> None:
    data["pyrunc"][key] = value
    fake.files[store.file("c1", "state.json")] = json.dumps(data).encode()


@pytest.mark.parametrize("key,value,field", DAMAGE)
def test_a_damaged_field_is_named_not_an_internal_error(
        fake: RecordingSyscall, store: StateStore, capsys: pytest.CaptureFixture[str],
        key: str, value: object, field: str) -> None:
    data = container(fake, store, status="stopped")
    _damage(fake, store, data, key, value)
    for command in (["delete", "c1"], ["state", "c1"], ["start", "c1"]):
        assert dispatch(["--root", store.root, *command]) == 1
        err = capsys.readouterr().err
        assert "internal error" not in err
        assert "state of container c1 is corrupt" in err and f": {field}" in err, err
        assert len(err.strip().splitlines()) == 1
    assert fake.exists(store.file("c1", "state.json"))  # nothing acted on it


@pytest.mark.parametrize("key,value,field", DAMAGE[:4])
def test_force_still_recovers_a_damaged_one(
        fake: RecordingSyscall, store: StateStore, key: str, value: object, field: str) -> None:
    data = container(fake, store)
    _damage(fake, store, data, key, value)
    assert dispatch(["--root", store.root, "delete", "--force", "c1"]) == 0
    assert not fake.alive(INIT)  # found in the damaged file (pid and start time legible)
    assert not fake.exists(store.path("c1"))


@pytest.mark.parametrize("key", ["hooks", "host_mounts", "cgroup_paths", "freezer_state",
                                 "cgroup"])
def test_a_null_field_is_an_absent_one(fake: RecordingSyscall, store: StateStore,
                                       capsys: pytest.CaptureFixture[str], key: str) -> None:
    """validate_state takes null for absent where it reads `x or {}`: so do the commands."""
    data = container(fake, store, status="created")
    _damage(fake, store, data, key, None)
    assert dispatch(["--root", store.root, "state", "c1"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "created"
    assert dispatch(["--root", store.root, "delete", "c1"]) == 0, capsys.readouterr().err
    assert "internal error" not in capsys.readouterr().err
    assert not fake.exists(store.path("c1"))
