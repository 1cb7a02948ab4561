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
