"""A damaged network record (.networks/NAME.json, pyrunc.network.store.NetworkRecord) is
reported as corrupt, in one line naming the file and the field, by every network command and
by the one that reads its neighbours (create), never an internal error. No root: these
commands only read and write the records (network rm as non-root touches no link)."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc.cli import dispatch
from pyrunc.state import StateStore
from unit.fakes import RecordingSyscall

DAMAGE = [
    ("subnet", None, "subnet"),
    ("subnet", "10.231.7.0", "subnet"),
    ("subnet", "10.231.7.0/x", "subnet"),
    ("gateway", 7, "gateway"),
    ("gateway", "10.231.7.1\u0000", "gateway"),  # inet_pton's ValueError, not an OSError
    ("bridge", ["pyr-htn1"], "bridge"),
    ("name", "other", "name"),
    ("leases", [], "leases"),
    ("leases", {"10.231.7.2": 5}, "leases"),
    ("leases", {"10.231.7.2; flush ruleset": "c1"}, "leases"),  # a key goes into nft's batch
]


def run(root: str, *args: str) -> int:
    return dispatch(["--root", root, "network", *args])


@pytest.mark.skipif(os.path.exists("/sys/class/net/pyr-htn1"), reason="a bridge of that name")
@pytest.mark.parametrize("key,value,field", DAMAGE)
def test_a_damaged_network_record_is_named_not_an_internal_error(
        fake: RecordingSyscall, store: StateStore, capsys: pytest.CaptureFixture[str],
        key: str, value: object, field: str) -> None:
    root = store.root  # on the fake host, as the records' every file
    assert run(root, "create", "htn1", "--subnet", "10.231.7.0/24") == 0
    path = os.path.join(root, ".networks", "htn1.json")
    record = json.loads(fake.files[path])
    if value is None:
        del record[key]
    else:
        record[key] = value
    fake.files[path] = json.dumps(record).encode()
    capsys.readouterr()
    for command in (["ls"], ["inspect", "htn1"], ["rm", "htn1"],
                    ["create", "htn2", "--subnet", "10.231.8.0/24"]):
        assert run(root, *command) == 1, command
        err = capsys.readouterr().err
        assert "internal error" not in err
        assert f"{path} is corrupt: {field}" in err, err
        assert len(err.strip().splitlines()) == 1
    assert fake.exists(path)  # nothing acted on it


@pytest.mark.skipif(os.path.exists("/sys/class/net/pyr-htn1"), reason="a bridge of that name")
@pytest.mark.parametrize("damage", ["field", "not JSON", "fifo"])
def test_network_rm_force_removes_a_damaged_record(
        fake: RecordingSyscall, store: StateStore, capsys: pytest.CaptureFixture[str],
        damage: str) -> None:
    """The way out of a damaged record: `network rm --force` removes it, warns in one line
    naming the file and what may be left (it never acts on a damaged record's bridge or
    subnet), and the other networks are listed again."""
    root = store.root
    assert run(root, "create", "htn1", "--subnet", "10.231.7.0/24") == 0
    assert run(root, "create", "htn3", "--subnet", "10.231.9.0/24") == 0
    path = os.path.join(root, ".networks", "htn1.json")
    if damage == "field":
        record = json.loads(fake.files[path])
        record["leases"] = []
        fake.files[path] = json.dumps(record).encode()
    elif damage == "not JSON":
        fake.files[path] = b'{"name": "htn1", '
    else:
        del fake.files[path]
        fake.fifos.add(path)
    capsys.readouterr()
    assert run(root, "rm", "htn1") == 1  # without --force: refused, as above
    assert fake.exists(path)
    capsys.readouterr()
    assert run(root, "rm", "--force", "htn1") == 0
    out, err = capsys.readouterr()
    assert out == "htn1\n"
    assert not fake.exists(path)
    assert len(err.strip().splitlines()) == 1, err
    assert "level=warning" in err, err
    assert f"{path} is corrupt" in err or f"{path}: not a regular file" in err, err
    if damage == "field":  # what the record still says is named, for the user to remove
        assert "pyr-htn1" in err and "10.231.7.0/24" in err, err
    assert run(root, "ls", "-q") == 0
    assert capsys.readouterr().out == "htn3\n"
    assert run(root, "rm", "-f", "htn1") == 1  # gone: the usual one line
    assert "network htn1 does not exist" in capsys.readouterr().err


def test_network_rm_force_still_refuses_a_network_in_use(
        fake: RecordingSyscall, store: StateStore, capsys: pytest.CaptureFixture[str]) -> None:
    """--force is for a damaged record only: a healthy one a container uses is kept."""
    root = store.root
    assert run(root, "create", "htn1", "--subnet", "10.231.7.0/24") == 0
    path = os.path.join(root, ".networks", "htn1.json")
    record = json.loads(fake.files[path])
    record["leases"] = {"10.231.7.2": "c1"}
    fake.files[path] = json.dumps(record).encode()
    fake.dirs.add(os.path.join(root, "c1"))
    capsys.readouterr()
    assert run(root, "rm", "--force", "htn1") == 1
    assert "network htn1 is in use by c1" in capsys.readouterr().err
    assert fake.exists(path)
