#!/usr/bin/env python3
"""Issue 7's benchmark: pyrunc against runc and crun on the same busybox bundle.

    python3 bench/bench.py [--rounds N] [--quick] [--out bench/RESULTS.md]

Runs every installed runtime (pyrunc, runc, crun) on one busybox bundle whose process is
/bin/true, interleaved round by round (the order rotates each round) after a warm-up round,
and writes bench/RESULTS.md (plus bench/results.json with every sample, and bench/results.png
when matplotlib is importable). Must run as root. See bench/README.md for what each number means.

Nothing here is a test: there are no assertions, only measurements against issue 7's targets.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TIMEOUT = 60.0  # seconds for any one runtime command

# --------------------------------------------------------------------------------------------
# running one command


class Failed(RuntimeError):
    pass


class Sample:
    __slots__ = ("wall", "cpu", "maxrss", "rc", "err")

    def __init__(self, wall: float, cpu: float, maxrss: int, rc: int, err: str) -> None:
        self.wall = wall  # seconds, spawn to reaped
        self.cpu = cpu  # user + system seconds of the process and the children it reaped
        self.maxrss = maxrss  # KiB, ru_maxrss from wait4
        self.rc = rc
        self.err = err


class Runtime:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], how: str) -> None:
        self.name = name
        self.argv = argv  # the command, without --root
        self.env = env
        self.how = how  # how it is invoked, for the report
        self.version = ""
        self.root = ""

    def cmd(self, *args: str) -> list[str]:
        return [*self.argv, "--root", self.root, *args]


def spawn(argv: list[str], env: dict[str, str], out: str = os.devnull,
          timeout: float = TIMEOUT) -> Sample:
    """Run argv (stdin /dev/null, stdout to `out`, stderr kept), timed from spawn to reap."""
    err_path = os.path.join(WORK, f"stderr.{threading.get_ident()}")
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            os.kill(pid, 9)
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter()
    finally:
        os.close(pidfd)
    rc = os.waitstatus_to_exitcode(status)
    err = ""
    if rc != 0:
        with open(err_path, errors="replace") as f:
            err = f.read().strip()[-500:]
    return Sample(t1 - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, rc, err)


def must(rt: Runtime, *args: str, out: str = os.devnull) -> Sample:
    s = spawn(rt.cmd(*args), rt.env, out=out)
    if s.rc != 0:
        raise Failed(f"{rt.name} {' '.join(args)}: exit {s.rc}: {s.err}")
    return s


def capture(rt: Runtime, *args: str) -> str:
    path = os.path.join(WORK, f"stdout.{threading.get_ident()}")
    must(rt, *args, out=path)
    with open(path) as f:
        return f.read()


# --------------------------------------------------------------------------------------------
# set-up: runtimes, bundles, machine


def find_runtimes(names: list[str], keep_env: bool) -> list[Runtime]:
    base = dict(os.environ)
    found = []
    for name in names:
        if name == "pyrunc":
            env = dict(base)
            notes = []
            if not keep_env:
                # A normal install has bytecode for every module; with PYTHONDONTWRITEBYTECODE
                # (set in this sandbox) and no __pycache__, every call would recompile.
                if env.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
                    notes.append("PYTHONDONTWRITEBYTECODE unset")
                env["PYTHONPYCACHEPREFIX"] = os.path.join(WORK, "pycache")
                notes.append("PYTHONPYCACHEPREFIX=<bench tmp>")
            launcher, why = build_launcher()
            if launcher:
                # what `pip install -e` of this checkout installs: the compiled launcher
                rt = Runtime("pyrunc", [launcher], env,
                             f"src/launcher.c built for this checkout ({why})")
            else:
                if not keep_env:
                    env["PYTHONPATH"] = REPO + (":" + env["PYTHONPATH"]
                                                if env.get("PYTHONPATH") else "")
                    notes.append(f"PYTHONPATH={REPO}")
                rt = Runtime("pyrunc", [sys.executable, "-s", "-S", "-P", "-m", "pyrunc"], env,
                             f"{sys.executable} -s -S -P -m pyrunc (WARNING: {why})")
            if notes:
                rt.how += " (" + ", ".join(notes) + ")"
        else:
            path = shutil.which(name)
            if not path:
                continue
            rt = Runtime(name, [os.path.realpath(path)], base, os.path.realpath(path))
        try:
            out = subprocess.run([*rt.argv, "--version"], env=rt.env, capture_output=True,
                                 text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode != 0:
            continue
        rt.version = " / ".join(line.strip() for line in out.stdout.splitlines()[:2])
        if name == "pyrunc":
            rt.version += f" from {os.path.join(REPO, 'pyrunc')} ({git_head()})"
        found.append(rt)
    return found


def build_launcher() -> tuple[str, str]:
    """src/launcher.c compiled as setup.py's editable build does, pointing at this checkout.

    It sits in the bench's directory next to a link to this interpreter, where it finds its
    Python as an installed launcher does (beside itself), and it execs the protected copy
    under /run/pyrunc-exe when pyrunc mounted one (S1). Returns (path, how) or ("", why not).
    """
    bindir = os.path.join(WORK, "bin")
    os.makedirs(bindir, exist_ok=True)
    short = f"{sys.version_info[0]}.{sys.version_info[1]}"
    exe = os.path.join(bindir, "pyrunc")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return "", "no C compiler for src/launcher.c"
    out = subprocess.run([cc, "-O2", "-s", f'-DPY_SHORT="{short}"',
                          f'-DEDITABLE_ROOT="{REPO}"', os.path.join(REPO, "src", "launcher.c"),
                          "-o", exe], capture_output=True, text=True)
    if out.returncode != 0:
        return "", f"src/launcher.c does not build: {out.stderr.strip()[-200:]}"
    os.symlink(os.path.realpath(sys.executable), os.path.join(bindir, f"python{short}"))
    return exe, f"editable, python{short} = {os.path.realpath(sys.executable)}"


def launcher_interpreter() -> str:
    """The interpreter the launcher execs: the read-only overlay copy under /run/pyrunc-exe
    (S1, pyrunc/sealed.py) when one is mounted for this interpreter, else the interpreter
    itself; found as src/launcher.c finds it (sha256 of its real directory, 16 hex digits)."""
    import hashlib

    real = os.path.realpath(sys.executable)
    directory, name = os.path.split(real)
    key = hashlib.sha256(directory.encode()).hexdigest()[:16]
    protected = os.path.join("/run/pyrunc-exe", key, name)
    try:
        if os.access(protected, os.X_OK) and os.statvfs(protected).f_flag & os.ST_RDONLY:
            return protected
    except OSError:
        pass
    return real


# the floor every Python runtime pays on every command: the interpreter starting and exiting,
# with no import of the runtime's own (label -> flags); `-s -S -P` is what the launcher passes
FLOORS = {"floor: python -S -c pass": ["-S"], "floor: python -s -S -P -c pass": ["-s", "-S", "-P"]}


def git_head() -> str:
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "pyrunc"],
                               capture_output=True, text=True).stdout.strip()
        return f"git {head}{' + uncommitted changes in pyrunc/' if dirty else ''}"
    except OSError:
        return "git ?"


def make_bundles(work: str) -> tuple[str, str]:
    """The /bin/true bundle (bundles/make-busybox.sh) and a `sleep` bundle sharing its rootfs."""
    true_b = os.path.join(work, "bundle-true")
    # its `pyrunc spec` is this checkout's launcher (bin/, when built), not whatever pyrunc is
    # installed on PATH
    env = dict(os.environ, PATH=os.path.join(work, "bin") + ":" + os.environ.get("PATH", ""))
    subprocess.run(["bash", os.path.join(REPO, "bundles", "make-busybox.sh"), true_b],
                   check=True, capture_output=True, env=env)
    path = os.path.join(true_b, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    # crun 1.8.1 refuses ociVersion 1.3.0 ("unknown version specified"); all three take 1.0.2
    config["ociVersion"] = "1.0.2"
    with open(path, "w") as f:
        json.dump(config, f, indent=2)
    sleep_b = os.path.join(work, "bundle-sleep")
    os.mkdir(sleep_b)
    config["process"]["args"] = ["/bin/sleep", "1000000"]
    config["root"]["path"] = os.path.join(true_b, "rootfs")
    with open(os.path.join(sleep_b, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return true_b, sleep_b


def machine() -> dict:
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    layout = "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else (
        "hybrid (v1 + cgroup2 at /sys/fs/cgroup/unified)"
        if os.path.ismount("/sys/fs/cgroup/unified") else "v1")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "os": _os_release(),
        "python": sys.version.split()[0] + f" ({sys.executable})",
        "cgroups": layout,
        "loadavg_start": _loadavg(),
    }


def _os_release() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# --------------------------------------------------------------------------------------------
# statistics


def q(values: list[float], p: float) -> float:
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Results:
    """results[bench][runtime] -> list of (wall s, cpu s, maxrss KiB); extras for memory."""

    def __init__(self) -> None:
        self.samples: dict[str, dict[str, list[tuple[float, float, int]]]] = {}
        self.values: dict[str, dict[str, list[float]]] = {}  # non-time measurements
        self.notes: dict[str, str] = {}
        self.errors: list[str] = []

    def add(self, bench: str, rt: str, s: Sample | tuple[float, float, int]) -> None:
        t = (s.wall, s.cpu, s.maxrss) if isinstance(s, Sample) else s
        self.samples.setdefault(bench, {}).setdefault(rt, []).append(t)

    def add_value(self, key: str, rt: str, v: float) -> None:
        self.values.setdefault(key, {}).setdefault(rt, []).append(v)

    def wall(self, bench: str, rt: str) -> list[float]:
        return [w for w, _, _ in self.samples.get(bench, {}).get(rt, [])]

    def median(self, bench: str, rt: str) -> float | None:
        w = self.wall(bench, rt)
        return statistics.median(w) if w else None


def rotate(items: list, r: int) -> list:
    k = r % len(items)
    return items[k:] + items[:k]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# the benchmarks


class Bench:
    def __init__(self, runtimes: list[Runtime], true_b: str, sleep_b: str, args) -> None:
        self.rts = runtimes
        self.true_b = true_b
        self.sleep_b = sleep_b
        self.args = args
        self.res = Results()
        self.prefix = f"pb{os.getpid()}"
        self.seq = 0
        self.lock = threading.Lock()
        self.interpreter = launcher_interpreter()

    def new_id(self, rt: Runtime, kind: str) -> str:
        # unique per runtime too: runc and crun both put a container's cgroup at /<id>
        with self.lock:
            self.seq += 1
            return f"{self.prefix}-{rt.name}-{kind}-{self.seq}"

    def rounds(self, n: int, warmup: int, body, label: str) -> None:
        """body(rt, record: bool) for every runtime, interleaved, `warmup` rounds discarded."""
        for r in range(warmup + n):
            record = r >= warmup
            for rt in rotate(self.rts, r):
                try:
                    body(rt, record)
                except Failed as e:
                    self.res.errors.append(f"{label}: {e}")
                    log(f"  error: {e}")
                    self.cleanup_root(rt)
            log(f"  {label}: round {r + 1 - warmup if record else 'warm-up'}"
                f"{'/' + str(n) if record else ''}")

    # 1, 2, 3 (state), kill, 6: the single-command micro benchmarks, all in one round
    def micro(self) -> None:
        sleepers: dict[str, str] = {}
        for rt in self.rts:  # a running container for `exec`
            cid = self.new_id(rt, "exec")
            must(rt, "create", "-b", self.sleep_b, cid)
            must(rt, "start", cid)
            sleepers[rt.name] = cid

        def body(rt: Runtime, record: bool) -> None:
            add = self.res.add if record else (lambda *a: None)
            # 1. run of /bin/true: start to exit, deleted
            cid = self.new_id(rt, "run")
            add("run", rt.name, must(rt, "run", "-b", self.true_b, cid))
            # 2. lifecycle create + start + delete --force, and state of the created container
            cid = self.new_id(rt, "life")
            c = must(rt, "create", "-b", self.true_b, cid)
            st = must(rt, "state", cid)
            s = must(rt, "start", cid)
            d = must(rt, "delete", "--force", cid)
            add("create", rt.name, c)
            add("state", rt.name, st)
            add("start", rt.name, s)
            add("delete", rt.name, d)
            add("lifecycle", rt.name, (c.wall + s.wall + d.wall, c.cpu + s.cpu + d.cpu,
                                       max(c.maxrss, s.maxrss, d.maxrss)))
            # kill (SIGKILL) of a created container
            cid = self.new_id(rt, "kill")
            must(rt, "create", "-b", self.true_b, cid)
            add("kill", rt.name, must(rt, "kill", cid, "KILL"))
            must(rt, "delete", "--force", cid)
            # 6. exec of /bin/true in a running container
            add("exec", rt.name, must(rt, "exec", sleepers[rt.name], "/bin/true"))
            if rt.name == "pyrunc":
                # the interpreter floor, in the same round: the part of every pyrunc command
                # that is the interpreter's own start, not pyrunc
                for label, flags in FLOORS.items():
                    f = spawn([self.interpreter, *flags, "-c", "pass"], rt.env)
                    if f.rc != 0:
                        raise Failed(f"{label}: exit {f.rc}: {f.err}")
                    add(label, rt.name, f)

        try:
            self.rounds(self.args.rounds, self.args.warmup, body, "run/lifecycle/state/kill/exec")
        finally:
            for rt in self.rts:
                spawn(rt.cmd("delete", "--force", sleepers[rt.name]), rt.env)

    # 5. memory
    def memory(self) -> None:
        def body(rt: Runtime, record: bool) -> None:
            cid = self.new_id(rt, "mem")
            pidfile = os.path.join(WORK, f"{cid}.pid")
            create = rt.cmd("create", "--pid-file", pidfile, "-b", self.true_b, cid)
            timefile = os.path.join(WORK, f"{cid}.maxrss")
            if GNU_TIME:
                # through GNU time, which fork()s: ru_maxrss of a child we posix_spawn (vfork)
                # would include this Python process's own RSS, inherited at exec
                c = spawn([GNU_TIME, "-f", "%M", "-o", timefile, *create], rt.env)
            else:
                c = spawn(create, rt.env)
            if c.rc != 0:
                raise Failed(f"{rt.name} create: exit {c.rc}: {c.err}")
            try:
                if GNU_TIME:
                    with open(timefile) as f:
                        c.maxrss = int(f.read().split()[-1])
                with open(pidfile) as f:
                    pid = int(f.read().strip())
                mem = smaps_rollup(pid)
                if record:
                    self.res.add_value("create_maxrss_kib", rt.name, c.maxrss)
                    for k, v in mem.items():
                        self.res.add_value(f"init_{k}_kib", rt.name, v)
            finally:
                must(rt, "delete", "--force", cid)

        self.rounds(self.args.rounds, 1, body, "memory")

    # 3. list with 1, 100 and 1,000 containers
    def lists(self) -> None:
        real = self.args.list_real
        levels = [1, 100, 500, 1000]  # 500: the linearity check needs two long spans
        made: dict[str, list[str]] = {rt.name: [] for rt in self.rts}
        clones: dict[str, list[str]] = {rt.name: [] for rt in self.rts}
        self.res.notes["list"] = (
            f"entries up to {real}: real created containers (their inits waiting on the exec "
            f"fifo); beyond: copies of those containers' state directories under new ids "
            f"(same files, the fifo re-made, `id` rewritten), each naming a live waiting init, "
            f"so `list` does the same per-entry work (read state, check the process) as for a "
            f"real one")
        try:
            for level in levels:
                for rt in self.rts:
                    t0 = time.perf_counter()
                    while len(made[rt.name]) < min(level, real):
                        cid = self.new_id(rt, "list")
                        must(rt, "create", "-b", self.true_b, cid)
                        made[rt.name].append(cid)
                    n_real = len(made[rt.name])
                    while n_real + len(clones[rt.name]) < level:
                        src = made[rt.name][len(clones[rt.name]) % n_real]
                        cid = self.new_id(rt, "clone")
                        clone_state(rt.root, src, cid)
                        clones[rt.name].append(cid)
                    took = time.perf_counter() - t0
                    self.check_list(rt, level)
                    log(f"  list: {rt.name} root holds {level} containers "
                        f"({n_real} real; set-up {took:.1f} s)")
                self.rounds(self.args.rounds, self.args.warmup,
                            lambda rt, record, level=level: (
                                self.res.add(f"list {level}", rt.name, must(rt, "list"))
                                if record else must(rt, "list")),
                            f"list {level}")
        finally:
            for rt in self.rts:
                for cid in clones[rt.name]:
                    shutil.rmtree(os.path.join(rt.root, cid), ignore_errors=True)
                for cid in made[rt.name]:
                    spawn(rt.cmd("delete", "--force", cid), rt.env)

    def check_list(self, rt: Runtime, level: int) -> None:
        rows = json.loads(capture(rt, "list", "-f", "json") or "null") or []
        statuses = {r.get("status") for r in rows}
        if len(rows) != level or statuses != {"created"}:
            raise Failed(f"{rt.name} list: expected {level} created containers, got {len(rows)} "
                         f"with statuses {sorted(map(str, statuses))}")

    # 4. N containers created, started and deleted: one at a time, then 8 at a time
    def batch(self) -> None:
        n = self.args.batch
        for width in (1, 8):
            name = f"{n} x lifecycle, {'sequential' if width == 1 else f'{width} at a time'}"

            def one(rt: Runtime) -> None:
                cid = self.new_id(rt, "batch")
                must(rt, "create", "-b", self.true_b, cid)
                must(rt, "start", cid)
                must(rt, "delete", "--force", cid)

            def body(rt: Runtime, record: bool, width=width, name=name, one=one) -> None:
                fails = 0
                t0 = time.perf_counter()
                if width == 1:
                    for _ in range(n):
                        try:
                            one(rt)
                        except Failed as e:
                            fails += 1
                            self.res.errors.append(f"{name}: {e}")
                else:
                    with ThreadPoolExecutor(width) as pool:
                        for fut in [pool.submit(one, rt) for _ in range(n)]:
                            try:
                                fut.result()
                            except Failed as e:
                                fails += 1
                                self.res.errors.append(f"{name}: {e}")
                wall = time.perf_counter() - t0
                if fails:
                    log(f"  {name}: {rt.name}: {fails} of {n} failed")
                    self.cleanup_root(rt)
                if record:
                    self.res.add(name, rt.name, (wall, 0.0, 0))
                    self.res.add_value(f"{name} failures", rt.name, fails)

            self.rounds(self.args.batch_rounds, 0, body, name)

    def cleanup_root(self, rt: Runtime) -> None:
        """Delete whatever a failed step left in this runtime's root."""
        try:
            for cid in os.listdir(rt.root):
                if cid.startswith(self.prefix):
                    spawn(rt.cmd("delete", "--force", cid), rt.env)
        except OSError:
            pass


def smaps_rollup(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    return {
        "pss": out.get("Pss", 0),
        "rss": out.get("Rss", 0),
        "private": out.get("Private_Clean", 0) + out.get("Private_Dirty", 0),
    }


def clone_state(root: str, src: str, dst: str) -> None:
    """A copy of a container's state directory under a new id (fifos re-made, id rewritten)."""
    import stat

    sdir, ddir = os.path.join(root, src), os.path.join(root, dst)
    os.mkdir(ddir, os.stat(sdir).st_mode & 0o7777)
    for name in os.listdir(sdir):
        sp, dp = os.path.join(sdir, name), os.path.join(ddir, name)
        st = os.lstat(sp)
        if stat.S_ISFIFO(st.st_mode):
            os.mkfifo(dp)
            os.chmod(dp, st.st_mode & 0o7777)
        elif stat.S_ISREG(st.st_mode):
            with open(sp, "rb") as f:
                data = f.read()
            if name in ("state.json", "status"):
                try:
                    doc = json.loads(data)
                    if isinstance(doc, dict) and doc.get("id") == src:
                        doc["id"] = dst
                        data = json.dumps(doc).encode()
                except ValueError:
                    pass
            fd = os.open(dp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, st.st_mode & 0o7777)
            with os.fdopen(fd, "wb") as f:
                f.write(data)


# --------------------------------------------------------------------------------------------
# the report

ORDER = ["run", "lifecycle", "create", "start", "state", "kill", "delete", "exec",
         "list 1", "list 100", "list 500", "list 1000"]
# issue 19's targets: pyrunc's median / runc's median in the same run
TARGETS = {"run": 0.8, "exec": 1.0, "lifecycle": 1.2, "create": 1.0, "state": 2.0, "kill": 2.0,
           "start": 2.0, "delete": 2.0, "list 1": 2.0, "x lifecycle, 8 at a time": 1.2}
WHAT = {
    "run": "`run` of /bin/true (create, start, wait, delete), one process",
    "lifecycle": "`create` + `start` + `delete --force` of /bin/true (sum of 3 processes)",
    "create": "`create` (part of the lifecycle)",
    "start": "`start` of a created container (part of the lifecycle)",
    "state": "`state` of a created container",
    "kill": "`kill ID KILL` of a created container",
    "delete": "`delete --force` just after `start` (part of the lifecycle)",
    "exec": "`exec ID /bin/true` in a running container",
    "list 1": "`list` with 1 container in the root",
    "list 100": "`list` with 100 containers in the root",
    "list 500": "`list` with 500 containers in the root",
    "list 1000": "`list` with 1,000 containers in the root",
    "floor: python -S -c pass": "the interpreter the launcher execs, starting and exiting "
    "without `site` (no pyrunc code): the floor of any command of a CPython runtime",
    "floor: python -s -S -P -c pass": "the same with the launcher's flags exactly",
}
# interpreter starts each target's measurement pays (the floor times this)
FLOOR_STARTS = {"run": 1, "exec": 1, "create": 1, "lifecycle": 3, "state": 1, "kill": 1,
                "start": 1, "delete": 1, "list 1": 1}


def fmt_ms(s: float | None) -> str:
    if s is None:
        return "-"
    ms = s * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def report(b: Bench, info: dict, started: float, argv: list[str]) -> str:
    res = b.res
    names = [rt.name for rt in b.rts]
    has_runc = "runc" in names
    lines = []
    w = lines.append
    w("# pyrunc benchmark results (issues 7 and 19)")
    w("")
    w(f"Generated by `{' '.join(['python3 bench/bench.py', *argv])}` on "
      f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, in "
      f"{(time.time() - started) / 60:.1f} min. Times are wall-clock milliseconds from spawn to "
      f"reap of the runtime process(es); median over {b.args.rounds} rounds after "
      f"{b.args.warmup} warm-up round(s), runtimes interleaved (the order rotates each round). "
      f"IQR = 25th-75th percentile, range = min-max. CPU = user+system time of the process and "
      f"the children it reaped (median). xrunc = median / runc's median in this same run.")
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("| --- | --- |")
    for k in ("nproc", "cpu", "memory", "kernel", "os", "cgroups", "python"):
        w(f"| {k} | {info[k]} |")
    w(f"| load average (1/5/15 min), start -> end | {info['loadavg_start']} -> {_loadavg()} "
      f"(other jobs share this machine: expect noise) |")
    for rt in b.rts:
        w(f"| {rt.name} | {rt.version}; invoked as {rt.how} |")
    w("")

    # targets first
    w("## Issue 19's targets (pyrunc)")
    w("")
    w("| target | measured | verdict | the interpreter floor in it |")
    w("| --- | --- | --- | --- |")
    for verdict in targets(b):
        w("| " + " | ".join(verdict) + " |")
    w("")
    floor = res.median(FLOOR_KEY, "pyrunc")
    if floor is not None:
        w(f"The interpreter floor is the median of `{FLOOR_KEY.split(': ', 1)[1]}` "
          f"({fmt_ms(floor)} ms in this run, measured in the same rounds as the commands) with the "
          f"interpreter the launcher execs ({b.interpreter}), times the interpreter starts the "
          f"target pays: the part of pyrunc's time that any CPython runtime pays before its "
          f"first line runs. \"Above it\" is the rest (the launcher, pyrunc's imports, its work "
          f"and the container's), against what the limit leaves after the floor.")
        w("")

    w("## Times")
    w("")
    w("| benchmark | runtime | median ms | IQR ms | range ms | CPU ms | xrunc |")
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    batch_names = [k for k in res.samples if " x lifecycle" in k]
    for bench in ORDER + batch_names + list(FLOORS):
        if bench not in res.samples:
            continue
        base = res.median(bench, "runc") if has_runc else None
        for i, rt in enumerate(names):
            wall = res.wall(bench, rt)
            if not wall:
                continue
            cpu = [c for _, c, _ in res.samples[bench][rt]]
            med = statistics.median(wall)
            ratio = f"{med / base:.2f}x" if base else "-"
            label = f"**{bench}**" if i == 0 else ""
            cpu_s = fmt_ms(statistics.median(cpu)) if any(cpu) else "-"
            w(f"| {label} | {rt} | {fmt_ms(med)} | {fmt_ms(q(wall, .25))}-{fmt_ms(q(wall, .75))}"
              f" | {fmt_ms(min(wall))}-{fmt_ms(max(wall))} | {cpu_s} | {ratio} |")
    w("")
    w("What each row measures:")
    w("")
    for bench in ORDER + list(FLOORS):
        if bench in res.samples:
            w(f"- {bench}: {WHAT[bench]}")
    for bench in batch_names:
        fails = {rt: sum(res.values.get(f"{bench} failures", {}).get(rt, [])) for rt in names}
        fails_s = ", ".join(f"{rt} {n}" for rt, n in fails.items() if n)
        w(f"- {bench}: wall time of the whole batch, each container `create`, `start`, "
          f"`delete --force` in turn ({b.args.batch_rounds} rounds, no warm-up)"
          + (f"; FAILED commands: {fails_s}" if fails_s else ""))
    if "list" in res.notes:
        w(f"- list: {res.notes['list']}.")
        est = []
        for rt in names:
            c = res.median("create", rt)
            if c is not None:
                est.append(f"{rt} ~{c * 1000:.0f} s")
        pss = _vmed(res, "init_pss_kib", "pyrunc")
        if est:
            w(f"  Creating 1,000 real containers would take (1,000 x the `create` median): "
              f"{', '.join(est)}" + (f", and pyrunc's 1,000 waiting inits would hold "
                                     f"~{pss * 1000 / 1024 / 1024:.1f} GiB (PSS)" if pss else "")
              + "; hence the copies beyond the real ones.")
    w("")
    w("List growth: medians, and the cost per container in the root between two sizes (ms). "
      "Linearity is judged on 100->500 against 500->1000: the 1->100 step is a few ms on top "
      "of an interpreter start and mostly noise.")
    w("")
    w("| runtime | list 1 | list 100 | list 500 | list 1000 | per entry 1->100 | "
      "100->500 | 500->1000 |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rt in names:
        m = [res.median(f"list {n}", rt) for n in (1, 100, 500, 1000)]
        if None in m:
            continue
        w(f"| {rt} | {fmt_ms(m[0])} | {fmt_ms(m[1])} | {fmt_ms(m[2])} | {fmt_ms(m[3])} | "
          f"{(m[1] - m[0]) * 1000 / 99:.3f} | {(m[2] - m[1]) * 1000 / 400:.3f} | "
          f"{(m[3] - m[2]) * 1000 / 500:.3f} |")
    w("")

    w("## Memory")
    w("")
    w("Peak RSS of the `create` process (" + (
        "GNU time's %M, i.e. ru_maxrss from wait4 of a fork()ed child; floor: about 1 MiB, "
        "GNU time's own RSS at the fork" if GNU_TIME else
        "ru_maxrss from wait4; no /usr/bin/time here, so it includes the bench process's own "
        "RSS, inherited through posix_spawn's vfork: only differences above it mean anything")
      + "; for pyrunc the maximum over the console-script interpreter and the sealed re-exec, "
      "same pid), and the waiting init "
      "(between `create` and `start`) from /proc/PID/smaps_rollup. Medians over the rounds, KiB.")
    w("")
    w("| runtime | create peak RSS | init PSS | init RSS | init private | init PSS xrunc |")
    w("| --- | ---: | ---: | ---: | ---: | ---: |")
    base_pss = _vmed(res, "init_pss_kib", "runc")
    for rt in names:
        if _vmed(res, "init_pss_kib", rt) is None:
            continue
        pss = _vmed(res, "init_pss_kib", rt)
        ratio = f"{pss / base_pss:.2f}x" if base_pss else "-"
        w(f"| {rt} | {_vmed(res, 'create_maxrss_kib', rt):.0f} | {pss:.0f} | "
          f"{_vmed(res, 'init_rss_kib', rt):.0f} | {_vmed(res, 'init_private_kib', rt):.0f} | "
          f"{ratio} |")
    w("")
    if res.errors:
        w("## Errors")
        w("")
        for e in res.errors[:50]:
            w(f"- `{e}`")
        if len(res.errors) > 50:
            w(f"- ... and {len(res.errors) - 50} more")
        w("")
    return "\n".join(lines) + "\n"


def _vmed(res: Results, key: str, rt: str) -> float | None:
    v = res.values.get(key, {}).get(rt)
    return statistics.median(v) if v else None


FLOOR_KEY = "floor: python -s -S -P -c pass"


def floor_reason(b: Bench, key: str, py: float, limit_s: float) -> str:
    """How much of pyrunc's median is the interpreter floor, and what the limit leaves above it."""
    res = b.res
    if key.endswith("8 at a time"):
        cpu = [c for _, c, _ in res.samples.get(FLOOR_KEY, {}).get("pyrunc", [])]
        if not cpu:
            return "-"
        size = int(key.split()[0])
        ncpu = os.cpu_count() or 1
        est = statistics.median(cpu) * 3 * size / ncpu
        return (f"{3 * size} interpreter starts: >= {fmt_ms(est)} ms of CPU per CPU "
                f"({ncpu} CPUs), {est / py:.0%} of pyrunc's time")
    n = FLOOR_STARTS.get(key)
    floor = res.median(FLOOR_KEY, "pyrunc")
    if n is None or floor is None:
        return "-"
    f = n * floor
    above, room = py - f, limit_s - f
    starts = f"{n} x {fmt_ms(floor)} = " if n > 1 else ""
    if room <= 0:
        return (f"{starts}{fmt_ms(f)} ms ({f / py:.0%}): the floor alone is over the limit "
                f"by {fmt_ms(-room)} ms; above it pyrunc takes {fmt_ms(above)} ms")
    return (f"{starts}{fmt_ms(f)} ms ({f / py:.0%}); above it pyrunc takes {fmt_ms(above)} ms"
            f" where the limit leaves {fmt_ms(room)} ms")


def targets(b: Bench) -> list[tuple[str, ...]]:
    res = b.res
    out: list[tuple[str, ...]] = []
    names = [rt.name for rt in b.rts]
    if "pyrunc" not in names:
        return [("-", "pyrunc not installed", "-", "-")]
    for key, limit in TARGETS.items():
        # the batch's name carries its size (100, or 20 with --quick)
        bench = next((k for k in res.samples if k.endswith(key)), key)
        py, rc = res.median(bench, "pyrunc"), res.median(bench, "runc")
        if py is None or rc is None:
            out.append((f"{bench} <= {limit:g}x runc",
                        "not measured" if py is None else "no runc here to compare with", "-",
                        "-"))
            continue
        ratio = py / rc
        if ratio <= limit:
            verdict = "met"
        else:
            verdict = (f"**missed** by {ratio / limit:.1f}x: {fmt_ms(py)} ms against a limit of "
                       f"{fmt_ms(rc * limit)} ms ({fmt_ms(py - rc * limit)} ms over)")
        out.append((f"{bench} <= {limit:g}x runc", f"{fmt_ms(py)} ms = {ratio:.2f}x runc "
                    f"({fmt_ms(rc)} ms)", verdict, floor_reason(b, bench, py, rc * limit)))
    py, rc = _vmed(res, "init_pss_kib", "pyrunc"), _vmed(res, "init_pss_kib", "runc")
    if py is not None and rc is not None:
        verdict = "met" if py <= rc else (f"**missed** by {py / rc:.1f}x "
                                          f"({(py - rc) / 1024:.1f} MiB over)")
        out.append(("waiting init PSS <= runc's", f"{py / 1024:.1f} MiB vs runc "
                    f"{rc / 1024:.1f} MiB", verdict, "-"))
    m = [res.median(f"list {n}", "pyrunc") for n in (100, 500, 1000)]
    if None not in m:
        verdict = "met" if m[2] < 1.0 else f"**missed** by {m[2]:.2f}x ({fmt_ms(m[2] - 1)} ms over)"
        out.append(("list with 1,000 containers < 1 s", f"{fmt_ms(m[2])} ms", verdict, "-"))
        per_a = (m[1] - m[0]) / 400
        per_b = (m[2] - m[1]) / 500
        growth = per_b / per_a if per_a > 0 else float("inf")
        linear = 0.5 <= growth <= 2.0
        out.append(("list grows linearly",
                    f"{per_a * 1e3:.3f} ms/entry (100->500), {per_b * 1e3:.3f} ms/entry "
                    f"(500->1000)",
                    f"met (per-entry cost x{growth:.2f})" if linear else
                    f"**missed**: per-entry cost changes {growth:.1f}x", "-"))
    return out


def chart(b: Bench, path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    res = b.res
    benches = [k for k in ORDER if k in res.samples]
    names = [rt.name for rt in b.rts]
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / len(names)
    for i, rt in enumerate(names):
        meds = [(res.median(k, rt) or 0) * 1000 for k in benches]
        ax.bar([x + i * width for x in range(len(benches))], meds, width, label=rt)
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(benches))])
    ax.set_xticklabels(benches, rotation=30, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("median wall time, ms (log)")
    ax.legend()
    ax.set_title("pyrunc vs runc vs crun")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


# --------------------------------------------------------------------------------------------

WORK = ""
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else ""


def main(argv: list[str]) -> int:
    global WORK
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=None,
                   help="measured rounds per benchmark (default 10; 3 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="fewer rounds, 20-container batches, 10 real containers for list "
                        "(under ~2 minutes)")
    p.add_argument("--out", default=os.path.join(HERE, "RESULTS.md"), help="Markdown report")
    p.add_argument("--runtimes", default="pyrunc,runc,crun",
                   help="comma-separated, the ones installed are used (default: %(default)s)")
    p.add_argument("--only", default="micro,memory,list,batch",
                   help="benchmarks to run (default: %(default)s)")
    p.add_argument("--keep-env", action="store_true",
                   help="run pyrunc with this environment as is (no PYTHONPATH pinning to this "
                        "checkout, PYTHONDONTWRITEBYTECODE left alone)")
    args = p.parse_args(argv)
    args.warmup = 1
    if args.rounds is None:
        args.rounds = 3 if args.quick else 10
    args.batch = 20 if args.quick else 100
    args.batch_rounds = 2 if args.quick else 3
    args.list_real = 10 if args.quick else 100
    if os.geteuid() != 0:
        print("bench.py must run as root (it creates containers)", file=sys.stderr)
        return 1

    started = time.time()
    WORK = tempfile.mkdtemp(prefix="pyrunc-bench-", dir="/run" if os.access("/run", os.W_OK)
                            else None)
    try:
        info = machine()
        runtimes = find_runtimes(args.runtimes.split(","), args.keep_env)
        if not runtimes:
            print("no runtime found", file=sys.stderr)
            return 1
        for rt in runtimes:
            rt.root = os.path.join(WORK, f"root-{rt.name}")
            os.mkdir(rt.root, 0o700)
            log(f"{rt.name}: {rt.version}; {rt.how}")
        true_b, sleep_b = make_bundles(WORK)
        # a runtime that cannot run the bundle at all is left out, with its error
        usable = []
        for rt in runtimes:
            s = spawn(rt.cmd("run", "-b", true_b, f"pb{os.getpid()}-{rt.name}-probe"), rt.env)
            if s.rc == 0:
                usable.append(rt)
            else:
                log(f"{rt.name} cannot run the bundle, left out: {s.err}")
                if rt.name == "crun" and "hugetlb" in s.err:
                    log("  (crun wants the hugetlb v1 controller: mkdir -p /sys/fs/cgroup/hugetlb"
                        " && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb)")
        b = Bench(usable, true_b, sleep_b, args)
        only = set(args.only.split(","))
        try:
            if "micro" in only:
                log("run, lifecycle, state, kill, exec")
                b.micro()
            if "memory" in only:
                log("memory")
                b.memory()
            if "list" in only:
                log("list")
                b.lists()
            if "batch" in only:
                log(f"batches of {args.batch}")
                b.batch()
        except KeyboardInterrupt:
            log("interrupted: reporting what was measured")
        finally:
            for rt in usable:
                b.cleanup_root(rt)
        text = report(b, info, started, argv)
        with open(args.out, "w") as f:
            f.write(text)
        raw = os.path.splitext(args.out)[0].replace("RESULTS", "results") + ".json"
        with open(raw, "w") as f:
            json.dump({"machine": info, "args": vars(args),
                       "runtimes": {rt.name: {"version": rt.version, "how": rt.how}
                                    for rt in usable},
                       "samples": b.res.samples, "values": b.res.values,
                       "errors": b.res.errors}, f, indent=1)
        png = chart(b, os.path.splitext(raw)[0] + ".png")
        print(text)
        log(f"wrote {args.out}, {raw}" + (f", {png}" if png else " (no matplotlib: no chart)"))
        return 0
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
