#!/usr/bin/env python3
"""Where pyrunc's time goes: the measurements behind bench/README.md's breakdown.

    python3 bench/breakdown.py [--runs N] [--out bench/BREAKDOWN.md] [--no-strace]

1. interpreter start: `python -I -S -c pass` ... `python -c pass` (site and its .pth files);
2. site's imports (-X importtime): certifi (from _sandboxing_egress_ca.pth), the editable-install
   finder, the rest;
3. phases of `run` of /bin/true, `create` and `state`, timed inside the processes by
   bench/_phases.py (the console script's interpreter, the sealed re-exec, each import, each step
   of the command) with medians over N runs;
4. the sealed interpreter's imports (-X importtime), largest first;
5. cProfile of `create` in one interpreter (the sealed re-exec skipped), largest first;
6. strace -c -f of `run` for pyrunc, runc and crun (syscall counts), and strace -f -ttt of a
   pyrunc `run`: what the init (the clone) does, and for how long.

Runs pyrunc the way bench/bench.py does (the console script next to this interpreter, this
checkout on PYTHONPATH, bytecode cached). Must run as root. Writes Markdown to --out and stdout.
"""

from __future__ import annotations

import argparse
import cProfile  # noqa: F401  (checked importable before anything starts)
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PY = sys.executable
SCRIPT = os.path.join(os.path.dirname(PY), "pyrunc")
SITE_PACKAGES = next((p for p in sys.path if p.endswith("site-packages")), "")

OUT: list[str] = []
STATE_ID = f"prof-state-{os.getpid()}"  # unique: runc puts its cgroup at /<id>


def w(line: str = "") -> None:
    OUT.append(line)
    print(line, flush=True)


def entry_points() -> tuple[str, str]:
    """The console script's target (pyproject.toml) and what the sealed re-exec's -c code calls
    (sealed.py), for bench/_phases.py to call the same."""

    entry = "pyrunc.cli:run"  # what setup.py's launcher calls
    with open(os.path.join(REPO, "pyrunc", "sealed.py")) as f:
        m = re.search(r"from pyrunc\.cli import (\w+)", f.read())
    return entry, m.group(1) if m else "main"


def env_for_pyrunc(work: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
    env["B7_ENTRY"], env["B7_SEALED_ENTRY"] = entry_points()
    return env


def run_timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(spawn time, reap time, elapsed) on the perf_counter clock; output discarded.

    Never a pipe for stdout/stderr: a created container's init inherits them and keeps them
    open until it is started, so reading a pipe to EOF would hang."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
        p.wait()
        t1 = time.perf_counter()
        if p.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{argv}: exit {p.returncode}: "
                               f"{err.read().decode(errors='replace')[-400:]}")
    return t0, t1, t1 - t0


def ms(s: float) -> str:
    return f"{s * 1000:.1f}"


# --------------------------------------------------------------------------------------------


def interpreter_start(runs: int, env: dict[str, str], root: str) -> None:
    w("## 1. Interpreter start")
    w("")
    variants = [
        ("python -I -S -c pass (no site: what the sealed re-exec costs)", [PY, "-I", "-S", "-c",
                                                                           "pass"]),
        ("python -S -c pass", [PY, "-S", "-c", "pass"]),
        ("python -I -c pass (site, no env, no user site)", [PY, "-I", "-c", "pass"]),
        ("python -c pass (site: what the console script costs)", [PY, "-c", "pass"]),
        ("python -c 'import pyrunc.cli'", [PY, "-c", "import pyrunc.cli"]),
        ("pyrunc --version (console script: site + cli + argparse)", [SCRIPT, "--version"]),
        ("pyrunc state (console script)", [SCRIPT, "--root", root, "state", STATE_ID]),
    ]
    if shutil.which("runc"):
        variants.append(("runc state (for scale)", [shutil.which("runc"), "--root",
                                                    root + "-runc", "state", STATE_ID]))
    times: dict[str, list[float]] = {v[0]: [] for v in variants}
    for r in range(runs + 2):
        for label, argv in variants[r % len(variants):] + variants[:r % len(variants)]:
            _, _, dt = run_timed(argv, env)
            if r >= 2:
                times[label].append(dt)
    w(f"Medians of {runs} runs (interleaved, 2 warm-up runs), wall ms, spawn to reap:")
    w("")
    w("| command | median ms | min ms |")
    w("| --- | ---: | ---: |")
    for label, _ in variants:
        w(f"| {label} | {ms(statistics.median(times[label]))} | {ms(min(times[label]))} |")
    w("")


def site_imports(runs: int, env: dict[str, str]) -> None:
    w("## 2. What site imports (python -X importtime -c pass)")
    w("")
    keys = {}
    for _ in range(runs):
        err = subprocess.run([PY, "-X", "importtime", "-c", "pass"], env=env,
                             capture_output=True, text=True).stderr
        top = {}
        for line in err.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if not m:
                continue
            depth = len(m.group(3)) // 2
            if depth <= 1:
                top[m.group(4)] = int(m.group(2))
        for k, v in top.items():
            keys.setdefault(k, []).append(v)
    w("Cumulative import time of site and of what it imports directly, median of "
      f"{runs} runs, ms (importtime's own overhead included):")
    w("")
    w("| module | ms |")
    w("| --- | ---: |")
    rows = sorted(((statistics.median(v), k) for k, v in keys.items() if len(v) == runs),
                  reverse=True)
    for v, k in rows[:12]:
        note = ""
        if k == "certifi":
            note = " (imported by `_sandboxing_egress_ca.pth`, a sandbox artifact)"
        elif k.startswith("__editable__"):
            note = " (the `pip install -e` finder: a development-install artifact)"
        elif k == "_distutils_hack":
            note = " (setuptools' distutils-precedence.pth)"
        w(f"| {k}{note} | {v / 1000:.1f} |")
    w("")


def phases(runs: int, env: dict[str, str], bundle: str, root: str) -> dict:
    w("## 3. Phases, timed inside the processes (bench/_phases.py)")
    w("")
    w("Each row is a median over the runs, in ms; `spawn` is when the bench forked, `reap` when "
      "it reaped the process. Rows starting with A are the console script's interpreter (with "
      "site), B the sealed re-exec (-I -S). Spans of wrapped pyrunc functions are listed after "
      "the marks (`+` = duration, nested spans are included in their parent's).")
    w("")
    out = {}
    marks_path = os.path.join(root, "..", "marks.json")
    for command in ("run", "create", "state"):
        rows: dict[str, list[float]] = {}
        order: list[str] = []
        totals = []
        plain = []
        for i in range(runs + 1):
            cid = f"prof-{os.getpid()}-{command}-{i}"
            if command == "state":
                args = ["--root", root, "state", STATE_ID]
            elif command == "run":
                args = ["--root", root, "run", "-b", bundle, cid]
            else:
                args = ["--root", root, "create", "-b", bundle, cid]
            try:
                os.unlink(marks_path)
            except FileNotFoundError:
                pass
            t0, t1, dt = run_timed([PY, os.path.join(HERE, "_phases.py"), marks_path, *args],
                                   env)
            if command == "create":
                run_timed([SCRIPT, "--root", root, "delete", "--force", cid], env)
            # the same command through the real console script, for the harness's overhead
            cid2 = cid + "-plain"
            args2 = [a if a != cid else cid2 for a in args]
            plain.append(run_timed([SCRIPT, *args2], env)[2])
            if command == "create":
                run_timed([SCRIPT, "--root", root, "delete", "--force", cid2], env)
            if i == 0:
                continue  # warm-up
            with open(marks_path) as f:
                marks = json.load(f)
            totals.append(dt)
            prev = t0
            seq = [("spawn", t0)]
            for m in marks:
                if m[0] == "mark":
                    seq.append((m[1], m[2]))
            seq.append(("reap (interpreter exit and teardown)", t1))
            for label, t in seq[1:]:
                key = f"{label}"
                if key not in rows:
                    order.append(key)
                rows.setdefault(key, []).append(t - prev)
                prev = t
            for m in marks:
                if m[0] == "span":
                    key = "+ " + m[1]
                    if key not in rows:
                        order.append(key)
                    rows.setdefault(key, []).append(m[3] - m[2])
        w(f"### `pyrunc {command}`" + (" of /bin/true" if command != "state" else
                                       " of a created container"))
        w("")
        w("| step (time since the previous mark) | median ms |")
        w("| --- | ---: |")
        for key in order:
            w(f"| {key} | {ms(statistics.median(rows[key]))} |")
        w(f"| **total, spawn to reap (this harness)** | **{ms(statistics.median(totals))}** |")
        w(f"| total of the plain console script, same runs | {ms(statistics.median(plain))} |")
        w("")
        out[command] = {k: statistics.median(v) for k, v in rows.items()}
    return out


def sealed_imports(env: dict[str, str]) -> None:
    w("## 4. The sealed interpreter's imports (python -I -S -X importtime), cumulative")
    w("")
    path = [REPO, SITE_PACKAGES]
    code = (f"import sys; sys.path[:0] = {path!r}; import pyrunc.cli; "
            "import pyrunc.lifecycle.run")
    for _ in range(2):
        err = subprocess.run([PY, "-I", "-S", "-X", "importtime", "-c", code], env=env,
                             capture_output=True, text=True).stderr
    entries = []
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            entries.append((int(m.group(2)), int(m.group(1)), len(m.group(3)) // 2, m.group(4)))
    total = sum(e[1] for e in entries)
    w(f"All imports of `import pyrunc.cli; import pyrunc.lifecycle.run` in a -I -S interpreter: "
      f"{total / 1000:.1f} ms (sum of self times, one run after a warm-up). Largest cumulative "
      f"(depth = nesting; self = the module's own body):")
    w("")
    w("| module | depth | cumulative ms | self ms |")
    w("| --- | ---: | ---: | ---: |")
    for cum, self_, depth, name in sorted(entries, reverse=True)[:25]:
        w(f"| {name} | {depth} | {cum / 1000:.1f} | {self_ / 1000:.1f} |")
    w("")


def cprofile_create(env: dict[str, str], bundle: str, root: str) -> None:
    w("## 5. cProfile of `create` (one -I -S interpreter, imports included, re-exec skipped)")
    w("")
    stats = os.path.join(root, "..", "create.prof")
    cprof_id = f"prof-cprof-{os.getpid()}"
    statement = f"rc = main({['--root', root, 'create', '-b', bundle, cprof_id]!r})"
    path = [REPO, SITE_PACKAGES]
    code = (
        f"import sys; sys.path[:0] = {path!r}; import cProfile, pstats\n"
        "import pyrunc.sealed as s; s.running_sealed = lambda: True\n"
        "from pyrunc.cli import main\n"
        f"cProfile.run({statement!r}, {stats!r})\n"
    )
    run_timed([PY, "-I", "-S", "-c", code], env)
    run_timed([SCRIPT, "--root", root, "delete", "--force", cprof_id], env)
    import pstats

    for key, label in (("cumulative", "cumulative"), ("tottime", "own (tottime)")):
        w(f"Top 25 by {label} time (ms; cProfile roughly doubles the cost of Python code):")
        w("")
        w("| function | calls | own ms | cumulative ms |")
        w("| --- | ---: | ---: | ---: |")
        st = pstats.Stats(stats)
        rows = []
        for (file, line, fn), (_cc, nc, tt, ct, _) in st.stats.items():
            where = file.replace(REPO + "/", "").replace(SITE_PACKAGES + "/", "")
            where = re.sub(r"^/root/\.pyenv/versions/[^/]+/lib/python3\.\d+/", "", where)
            rows.append((tt if key == "tottime" else ct, f"{where}:{line}({fn})", nc, tt, ct))
        for _, name, nc, tt, ct in sorted(rows, reverse=True)[:25]:
            w(f"| `{name}` | {nc} | {tt * 1000:.1f} | {ct * 1000:.1f} |")
        w("")


def strace_section(env: dict[str, str], bundle: str, root: str) -> None:
    strace = shutil.which("strace")
    if not strace:
        w("## 6. strace: not installed (apt-get install strace)")
        return
    w("## 6. strace")
    w("")
    w("`strace -f -c` of one `run` of /bin/true (strace's overhead makes the times meaningless; "
      "the counts are exact):")
    w("")
    w("| runtime | syscalls | errors | top syscalls by count |")
    w("| --- | ---: | ---: | --- |")
    runtimes = [("pyrunc", [SCRIPT])]
    for name in ("runc", "crun"):
        if shutil.which(name):
            runtimes.append((name, [shutil.which(name)]))
    for name, argv in runtimes:
        out = os.path.join(root, "..", f"strace-c.{name}")
        subprocess.run([strace, "-f", "-c", "-o", out, *argv, "--root", root + "-" + name,
                        "run", "-b", bundle, f"prof-strace-{name}-{os.getpid()}"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        calls = {}
        total = errors = 0
        with open(out) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 5 and parts[-1] not in ("total", "syscall") and \
                        parts[0][0].isdigit():
                    nums = parts[:-1]
                    calls[parts[-1]] = int(nums[3])
                elif parts and parts[-1] == "total":
                    nums = parts[:-1]
                    total = int(nums[3])
                    errors = int(nums[4]) if len(nums) > 4 else 0
        top = ", ".join(f"{k} {v}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:8])
        w(f"| {name} | {total} | {errors} | {top} |")
    w("")
    # timeline of one pyrunc run
    prefix = os.path.join(root, "..", "trace")
    subprocess.run([strace, "-f", "-ff", "-ttt", "-T", "-o", prefix, SCRIPT, "--root", root,
                    "run", "-b", bundle, f"prof-strace-tt-{os.getpid()}"], env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    files = sorted(f for f in os.listdir(os.path.dirname(prefix)) if f.startswith("trace."))
    w("`strace -f -ff -ttt -T` of one pyrunc `run` of /bin/true, per process (strace inflates "
      "every syscall, so absolute times are several times too high; the split is what "
      "matters):")
    w("")
    w("| process | syscalls | span ms | notes |")
    w("| --- | ---: | ---: | --- |")
    line_re = re.compile(r"(\d+\.\d+) (\w+)\((.*?)(?:<(\d+\.\d+)>)?$")
    for name in files:
        with open(os.path.join(os.path.dirname(prefix), name)) as f:
            calls = [m.groups() for m in map(line_re.match, f) if m]
        if not calls:
            continue
        ts = [float(c[0]) for c in calls]
        counts: dict[str, int] = {}
        for c in calls:
            counts[c[1]] = counts.get(c[1], 0) + 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:6])
        if any(c[1] == "execve" and SCRIPT in c[2] for c in calls):
            execs = [float(c[0]) for c in calls if c[1] in ("execve", "execveat")]
            opens = sum(1 for c in calls if c[1] in ("openat", "newfstatat", "stat", "lstat"))
            notes = (f"the console script, then (execveat of the sealed memfd, "
                     f"{(execs[-1] - ts[0]) * 1000:.1f} ms in) the sealed interpreter; "
                     f"{opens} openat/newfstatat, mostly the import system searching sys.path")
        else:
            # the init: its own work is everything up to "ready" but the waits for the parent
            # at the sync points (a read right after each sendto)
            ready = next((i for i, c in enumerate(calls) if c[1] == "sendto" and "ready" in c[2]),
                         len(calls) - 1)
            waits = sum(float(calls[i][3] or 0) for i in range(1, ready + 1)
                        if calls[i][1] == "read" and calls[i - 1][1] == "sendto")
            own = float(calls[ready][0]) - ts[0] - waits
            after = next((float(c[0]) for c in calls[ready + 1:] if c[1] == "openat"
                          and "/proc/self/fd/" in c[2]), None)
            notes = (f"the container init: {ready + 1} syscalls and {own * 1000:.1f} ms of its "
                     f"own work (mounts, pivot, /dev, limits...) up to `ready`, plus "
                     f"{waits * 1000:.1f} ms waiting for the parent at the sync points")
            if after:
                notes += (f"; then {(after - float(calls[ready][0])) * 1000:.1f} ms until the "
                          f"parent lets it open exec.fifo (the parent saves state meanwhile)")
        w(f"| pid {name.split('.')[-1]} | {len(calls)} | {(ts[-1] - ts[0]) * 1000:.1f} | "
          f"{notes}; by count: {top} |")
    w("")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--out", default=os.path.join(HERE, "BREAKDOWN.md"))
    p.add_argument("--no-strace", action="store_true")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("must run as root", file=sys.stderr)
        return 1
    work = tempfile.mkdtemp(prefix="pyrunc-profile-", dir="/run")
    try:
        env = env_for_pyrunc(work)
        bundle = os.path.join(work, "bundle")
        subprocess.run(["bash", os.path.join(REPO, "bundles", "make-busybox.sh"), bundle],
                       check=True, capture_output=True)
        with open(os.path.join(bundle, "config.json")) as f:
            config = json.load(f)
        config["process"]["args"] = ["/bin/true"]
        config["ociVersion"] = "1.0.2"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        root = os.path.join(work, "root")
        run_timed([SCRIPT, "--root", root, "create", "-b", bundle, STATE_ID], env)
        if shutil.which("runc"):
            run_timed(["runc", "--root", root + "-runc", "create", "-b", bundle, STATE_ID])
        w("# Where pyrunc's time goes")
        w("")
        w(f"`python3 bench/breakdown.py {' '.join(argv)}`, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"nproc {os.cpu_count()}, kernel {os.uname().release}, load "
          f"{open('/proc/loadavg').read().split()[0]}. pyrunc: {SCRIPT} with PYTHONPATH={REPO}, "
          f"bytecode cached. Other jobs share this machine.")
        w("")
        try:
            interpreter_start(args.runs * 2, env, root)
            site_imports(args.runs, env)
            phases(args.runs, env, bundle, root)
            sealed_imports(env)
            cprofile_create(env, bundle, root)
            if not args.no_strace:
                strace_section(env, bundle, root)
        finally:
            runtimes = {"root": SCRIPT, "root-pyrunc": SCRIPT, "root-runc": "runc",
                        "root-crun": "crun"}
            for r, binary in runtimes.items():
                if os.path.isdir(os.path.join(work, r)):
                    for cid in os.listdir(os.path.join(work, r)):
                        subprocess.run([binary, "--root", os.path.join(work, r), "delete",
                                        "--force", cid], env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        with open(args.out, "w") as f:
            f.write("\n".join(OUT) + "\n")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
