"""A rootless container's cgroup against the fake host: a cgroup2 subtree only where the
caller may write (its own cgroup, the nearest existing ancestor of the target), else none and
its resources refused in one line."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc.cgroups import paths, rootless
from pyrunc.errors import CgroupError
from pyrunc.spec.loader import load_config
from unit.fakes import RecordingSyscall

ROOT = "/run/unit-root"
OWN = "/user/1000"


def spec(linux: dict):  # noqa: ANN201
    doc = {"ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": linux}
    return load_config(json.dumps(doc).encode(), "config.json")


@pytest.fixture
def user(fake: RecordingSyscall) -> str:
    """A v2 host; the caller (uid 1000) in its own cgroup, which it may write."""
    fake.layout("v2")
    fake.euid = fake.egid = 1000
    fake.mkdir("/sys/fs/cgroup/user", 0o755)
    own = "/sys/fs/cgroup" + OWN
    fake.mkdir(own, 0o755)
    fake.files["/proc/self/cgroup"] = f"0::{OWN}\n".encode()
    fake.writable |= {own, own + "/cgroup.procs"}
    return own


def test_below_the_callers_own_cgroup_when_it_may_write_it(fake: RecordingSyscall,
                                                           user: str) -> None:
    assert rootless.target(spec({}), "c1", ROOT) == OWN + paths.resolve(None, "c1", ROOT)
    assert ("access", user, os.W_OK | os.X_OK) in fake.calls  # the nearest existing ancestor
    assert rootless.mount_paths(spec({}), "c1", ROOT) == {
        "": OWN + paths.resolve(None, "c1", ROOT)}


def test_none_when_its_own_cgroup_is_not_its_to_write(fake: RecordingSyscall,
                                                      user: str) -> None:
    fake.writable.discard(user + "/cgroup.procs")  # it could not move the init out of it
    assert rootless.target(spec({}), "c1", ROOT) is None
    with pytest.raises(CgroupError) as e:
        rootless.refuse_resources(spec({"resources": {"pids": {"limit": 10}}}))
    assert str(e.value).startswith("config.json: linux.resources.pids: a rootless container")
    rootless.refuse_resources(spec({}))  # nothing asked: nothing to refuse


def test_an_absolute_path_needs_its_nearest_existing_ancestor_writable(
        fake: RecordingSyscall, user: str) -> None:
    absolute = spec({"cgroupsPath": "/delegated/a/c1"})
    assert rootless.target(absolute, "c1", ROOT) is None  # the nearest is the root cgroup
    fake.mkdir("/sys/fs/cgroup/delegated", 0o755)
    fake.writable |= {"/sys/fs/cgroup/delegated", "/sys/fs/cgroup/delegated/cgroup.procs"}
    assert rootless.target(absolute, "c1", ROOT) == "/delegated/a/c1"


def test_no_cgroup2_no_cgroup(fake: RecordingSyscall) -> None:
    fake.layout("v1")
    fake.euid = 1000
    fake.files["/proc/self/cgroup"] = b"1:memory:/\n"
    assert rootless.target(spec({}), "c1", ROOT) is None
