"""`events`' stats and OOM notifications against the fake host's cgroup files: the v1 and
v2 layouts parsed into runc's `types.Stats` shape, and the OOM watcher of each."""

from __future__ import annotations

import json

from pyrunc.cgroups import events, layout, manager
from pyrunc.cgroups.stats import UNLIMITED_V2, stats
from unit.fakes import RecordingSyscall


def cgroups(fake: RecordingSyscall, kind: str) -> manager.Cgroups:
    fake.layout(kind)
    return manager.Cgroups.create(layout.detect(), "/pyrunc/c1", {}, own=True)


def put(fake: RecordingSyscall, d: str | None, **files: str) -> None:
    assert d is not None
    for name, text in files.items():
        fake.files[f"{d}/{name.replace('__', '.')}"] = text.encode()


def test_v1_stats_from_each_controllers_files(fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "hybrid")
    put(fake, cg.dir_for("cpuacct"), cpuacct__usage="12345\n",
        cpuacct__usage_percpu="100 200 \n", cpuacct__stat="user 3\nsystem 2\n",
        cpu__stat="nr_periods 4\nnr_throttled 1\nthrottled_time 99\n")
    put(fake, cg.dir_for("memory"), memory__stat="cache 4096\nrss 8192\n",
        memory__usage_in_bytes="65536\n", memory__limit_in_bytes="1048576\n",
        memory__max_usage_in_bytes="70000\n", memory__failcnt="2\n")
    put(fake, cg.dir_for("pids"), pids__current="3\n")
    put(fake, cg.dir_for("blkio"),
        blkio__throttle__io_service_bytes_recursive="8:0 Read 4096\n8:0 Write 0\nTotal 4096\n",
        blkio__throttle__io_serviced_recursive="8:0 Read 1\n8:0 Write 0\nTotal 1\n")
    s = stats(cg)
    assert s["cpu"] == {"usage": {"total": 12345, "percpu": [100, 200],
                                  "kernel": 2 * 10_000_000, "user": 3 * 10_000_000},
                        "throttling": {"periods": 4, "throttledPeriods": 1,
                                       "throttledTime": 99}}
    memory = s["memory"]
    assert memory["cache"] == 4096 and memory["raw"] == {"cache": 4096, "rss": 8192}
    assert memory["usage"] == {"limit": 1048576, "usage": 65536, "max": 70000, "failcnt": 2}
    assert s["pids"] == {"current": 3}  # v1's "max" is no limit: left out, as runc
    assert s["blkio"] == {  # read serviced first, shown in types.Blkio's order
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096},
                                    {"major": 8, "op": "Write"}],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1},
                                {"major": 8, "op": "Write"}]}
    assert s["cpuset"]["cpus"] == [0, 1] and s["hugetlb"] == {}
    assert s["network_interfaces"] is None


def test_v2_stats_from_the_one_directory(fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "v2")
    d = cg.dir("")
    put(fake, d, cpu__stat="usage_usec 7\nuser_usec 5\nsystem_usec 2\nnr_periods 0\n",
        memory__current="4096\n", memory__stat="file 1024\nanon 3072\n",
        memory__events="low 0\nmax 6\noom 1\noom_kill 1\n", memory__swap__max="0\n",
        io__stat="8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n",
        pids__current="2\n", pids__max="50\n",
        hugetlb__2MB__max="max\n", hugetlb__2MB__current="4194304\n",
        hugetlb__2MB__events="max 3\n")
    s = stats(cg)
    assert s["cpu"]["usage"] == {"total": 7000, "kernel": 2000, "user": 5000}
    assert s["cpu"]["throttling"] == {}
    assert s["memory"]["usage"] == {"limit": UNLIMITED_V2, "usage": 4096, "failcnt": 6}
    assert s["memory"]["swap"] == {"limit": UNLIMITED_V2, "usage": 4096, "failcnt": 0}
    # no kmem counters in cgroup2: runc still prints the entries, zero, before raw
    assert s["memory"]["kernel"] == s["memory"]["kernelTCP"] == {"limit": 0, "failcnt": 0}
    assert list(s["memory"]) == ["cache", "usage", "swap", "kernel", "kernelTCP", "raw"]
    assert s["memory"]["cache"] == 1024
    assert s["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 8, "minor": 16, "op": "Read", "value": 10},
                                    {"major": 8, "minor": 16, "op": "Write", "value": 20}],
        "ioServicedRecursive": [{"major": 8, "minor": 16, "op": "Read", "value": 1},
                                {"major": 8, "minor": 16, "op": "Write", "value": 2}]}
    assert s["pids"] == {"current": 2, "limit": 50}
    assert s["hugetlb"] == {"2MB": {"usage": 4194304, "failcnt": 3}}


ZERO = {"limit": 0, "failcnt": 0}  # runc's types.MemoryEntry of nothing read


def test_v1_stats_without_a_memory_hierarchy_have_runcs_four_zero_entries(
        fake: RecordingSyscall) -> None:
    """A host (or a container record) without the memory controller: runc's types.Memory
    still has usage, swap, kernel and kernelTCP (omitempty does not omit a struct)."""
    cg = cgroups(fake, "hybrid")
    cg = manager.Cgroups({**cg.record, "dirs": [d for d in cg.dirs if d["key"] != "memory"]})
    assert cg.dir_for("memory") is None
    assert stats(cg)["memory"] == {"usage": ZERO, "swap": ZERO, "kernel": ZERO,
                                   "kernelTCP": ZERO}
    assert json.dumps(stats(cg)["memory"], separators=(",", ":")) == (
        '{"usage":{"limit":0,"failcnt":0},"swap":{"limit":0,"failcnt":0},'
        '"kernel":{"limit":0,"failcnt":0},"kernelTCP":{"limit":0,"failcnt":0}}')


BFQ_EMPTY = {"blkio__bfq__io_serviced_recursive": "Total 0\n",
             "blkio__bfq__io_service_bytes_recursive": "Total 0\n"}
THROTTLE = {"blkio__throttle__io_serviced_recursive": "254:0 Read 1\n254:0 Total 1\nTotal 1\n",
            "blkio__throttle__io_service_bytes_recursive":
                "254:0 Read 4096\n254:0 Total 4096\nTotal 4096\n"}


def test_v1_blkio_skips_bfq_files_that_exist_but_are_empty(fake: RecordingSyscall) -> None:
    """BFQ compiled in but not the disk's scheduler (this host): its files are there, with no
    device in them; runc goes on to the throttle policy's files, which have the I/O."""
    cg = cgroups(fake, "hybrid")
    put(fake, cg.dir_for("blkio"), **BFQ_EMPTY, **THROTTLE)
    assert stats(cg)["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 254, "op": "Read", "value": 4096},
                                    {"major": 254, "op": "Total", "value": 4096}],
        "ioServicedRecursive": [{"major": 254, "op": "Read", "value": 1},
                                {"major": 254, "op": "Total", "value": 1}]}


def test_v1_blkio_of_cfq_has_its_eight_entries_and_sectors_have_no_op(
        fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "hybrid")
    files = {f"blkio__{name}_recursive": "8:0 Read 3\n8:0 Write 4\nTotal 7\n"
             for name in ("io_service_time", "io_wait_time", "io_merged", "io_queued",
                          "io_serviced", "io_service_bytes")}
    put(fake, cg.dir_for("blkio"), blkio__sectors_recursive="8:0 96\n",
        blkio__time_recursive="8:0 12\n", **files, **THROTTLE)
    blkio = stats(cg)["blkio"]
    assert list(blkio) == ["ioServiceBytesRecursive", "ioServicedRecursive", "ioQueueRecursive",
                           "ioServiceTimeRecursive", "ioWaitTimeRecursive", "ioMergedRecursive",
                           "ioTimeRecursive", "sectorsRecursive"]
    assert blkio["sectorsRecursive"] == [{"major": 8, "value": 96}]
    assert blkio["ioServicedRecursive"][0] == {"major": 8, "op": "Read", "value": 3}


def test_v1_memory_raw_keys_are_sorted_as_gos_map(fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "hybrid")
    put(fake, cg.dir_for("memory"), memory__stat="rss 1\ncache 2\nactive_anon 3\n")
    assert list(stats(cg)["memory"]["raw"]) == ["active_anon", "cache", "rss"]


def test_stats_of_removed_cgroups_are_zero_not_an_error(fake: RecordingSyscall) -> None:
    for kind in ("v2", "v1"):
        cg = cgroups(fake, kind)
        for d in sorted(fake.dirs, reverse=True):
            if "/pyrunc" in d:
                fake.rmdir(d)
        s = stats(cg)
        assert s["pids"] == {} and s["hugetlb"] == {} and s["blkio"] == {}
        fake.__init__()  # type: ignore[misc]
        layout._cached = None


def test_v1_oom_events_come_from_the_registered_eventfd(fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "v1")
    mem = cg.dir_for("memory")
    assert mem is not None
    watcher = events.OomWatcher(cg)
    assert fake.named("oom_eventfd") == [("oom_eventfd", mem)]
    assert watcher.wait(0) == 0
    fake.oom(mem, 2)
    assert watcher.wait(0) == 2
    assert watcher.wait(0) == 0
    # the kernel signals the eventfd when the cgroup goes too: that is no OOM
    del fake.files[mem + "/memory.oom_control"]
    fake.oom(mem)
    assert watcher.wait(0) == 0
    assert watcher.efd == -1 and fake.fds == {}


def test_v1_without_oom_control_watches_nothing(fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "v1")
    mem = cg.dir_for("memory")
    del fake.files[f"{mem}/memory.oom_control"]
    watcher = events.OomWatcher(cg)
    assert watcher.efd == -1 and fake.fds == {}
    assert watcher.wait(0) == 0


def test_v2_oom_events_are_the_oom_kill_counters_growth(fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "v2")
    put(fake, cg.dir(""), memory__events="oom 1\noom_kill 1\n")
    watcher = events.OomWatcher(cg)
    assert watcher.wait(0) == 0  # what happened before `events` started is not reported
    put(fake, cg.dir(""), memory__events="oom 4\noom_kill 4\n")
    assert watcher.wait(0) == 3
    assert watcher.wait(0) == 0


def test_stream_reports_ooms_then_stats_until_the_container_stops(
        fake: RecordingSyscall) -> None:
    cg = cgroups(fake, "v1")
    mem = cg.dir_for("memory")
    assert mem is not None
    lives = iter([True, False])
    out: list[str] = []
    fake.oom(mem)  # no eventfd yet: not counted
    real_eventfd = fake.oom_eventfd

    def eventfd_then_oom(memory_dir: str) -> int:
        fd = real_eventfd(memory_dir)
        fake.oom(memory_dir)
        return fd

    fake.oom_eventfd = eventfd_then_oom  # type: ignore[method-assign]
    events.stream("c1", cg, 0, lambda: next(lives), out.append)
    docs = [json.loads(line) for line in out]
    assert [d["type"] for d in docs] == ["oom", "stats"]
    assert docs[0] == {"type": "oom", "id": "c1"} and docs[1]["id"] == "c1"
    assert fake.fds == {}  # the eventfd closed when the stream ended
