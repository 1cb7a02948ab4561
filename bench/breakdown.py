#!/usr/bin/env python3
"""Where pyrunc's time goes now: the measurements behind bench/README.md's breakdown.

    python3 bench/breakdown.py [--runs N] [--out bench/BREAKDOWN.md]

1. process starts, interleaved (medians of N): sh, Python with and without site, pyrunc's and
   runc's cheapest command, and `run` of /bin/true for pyrunc and runc;
2. imports (`-X importtime`, self time summed) of pyrunc `state` and `run`, largest first;
3. the kernel's part of `run`: the slowest syscalls of one pyrunc `run` under `strace -f -T`
   (the first cgroup.procs write waits for an RCU grace period; runc pays it too), and the
   syscall counts of pyrunc, runc and crun (`strace -c -f`), when strace is installed.

Runs the installed `pyrunc` launcher next to this interpreter (see setup.py) with this checkout
first on PYTHONPATH and bytecode cached, as bench/bench.py does. Root only; everything is made
under a fresh /run/pyrunc-breakdown-* directory and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAUNCHER = os.path.join(os.path.dirname(sys.executable), "pyrunc")
OUT: list[str] = []


def w(line: str = "") -> None:
    OUT.append(line)
    print(line, flush=True)


def protected_python() -> str:
    sys.path.insert(0, REPO)
    from pyrunc import sealed

    path = sealed.protected_executable(os.path.realpath(sys.executable))
    return path if os.access(path, os.X_OK) else os.path.realpath(sys.executable)


def environment(work: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = os.path.join(work, "pycache")
    return env


def make_bundle(work: str) -> str:
    bundle = os.path.join(work, "bundle")
    subprocess.run(["bash", os.path.join(REPO, "bundles", "make-busybox.sh"), bundle],
                   check=True, capture_output=True)  # fmt: skip
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    config["ociVersion"] = "1.0.2"  # crun 1.8.1 refuses 1.3.0
    with open(path, "w") as f:
        json.dump(config, f)
    return bundle


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)  # fmt: skip
    return (time.perf_counter() - start) * 1000


def starts(work: str, bundle: str, env: dict[str, str], runs: int) -> dict[str, float]:
    python = protected_python()
    root = os.path.join(work, "root")
    cases: dict[str, list[str]] = {
        "sh -c :": ["/bin/sh", "-c", ":"],
        "python -s -S -P -c pass": [python, "-s", "-S", "-P", "-c", "pass"],
        "python -c pass (with site)": [sys.executable, "-c", "pass"],
        "pyrunc state (no such container)": [LAUNCHER, "--root", root, "state", "nope"],
        "runc state (no such container)": ["runc", "--root", root + "-runc", "state", "nope"],
        "pyrunc run /bin/true": [LAUNCHER, "--root", root, "run", "-b", bundle, "ID"],
        "runc run /bin/true": ["runc", "--root", root + "-runc", "run", "-b", bundle, "ID"],
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for n in range(runs + 1):  # the first round warms caches and is dropped
        for name, argv in cases.items():
            took = timed([a.replace("ID", f"bd{os.getpid()}-{n}") for a in argv], env)
            if n:
                samples[name].append(took)
    return {name: statistics.median(values) for name, values in samples.items()}


def imports(argv: list[str], env: dict[str, str]) -> tuple[float, list[tuple[float, str]]]:
    """Total self time of every import (ms), and the largest cumulative ones."""
    python = protected_python()
    proc = subprocess.run([python, "-s", "-S", "-P", "-X", "importtime", LAUNCHER, *argv],
                          env=env, capture_output=True, text=True)  # fmt: skip
    total = 0.0
    top: list[tuple[float, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line[len("import time:"):].split("|")
        self_us, cumulative_us, name = fields[0].strip(), fields[1].strip(), fields[2]
        total += int(self_us) / 1000
        if not name.startswith("  "):  # imported by pyrunc's code, not by another module
            top.append((int(cumulative_us) / 1000, name.strip()))
    top.sort(reverse=True)
    return total, top[:8]


def slow_syscalls(argv: list[str], env: dict[str, str], work: str) -> list[str]:
    trace = os.path.join(work, "strace.txt")
    subprocess.run(["strace", "-f", "-T", "-o", trace, *argv], env=env, capture_output=True)
    rows = []
    parent = ""
    with open(trace) as f:
        for line in f:
            pid, _, text = line.rstrip().partition(" ")
            parent = parent or pid
            if pid != parent:  # the init's waits are waits for the runtime: not a cost
                continue
            if text.endswith(">") and "<" in text:
                try:
                    took = float(text[text.rindex("<") + 1 : -1])
                except ValueError:  # <unfinished ...>: the resumed line carries the time
                    continue
                if took >= 0.0005:
                    rows.append((took, text.strip()[:110]))
    rows.sort(reverse=True)
    return [f"| {took * 1000:.1f} | `{call}` |" for took, call in rows[:6]]


def syscall_counts(argv: list[str], env: dict[str, str]) -> int:
    proc = subprocess.run(["strace", "-c", "-f", *argv], env=env, capture_output=True, text=True)
    for line in proc.stderr.splitlines():
        fields = line.split()
        if fields and fields[-1] == "total":  # % time, seconds, usecs/call, calls, [errors]
            return int(fields[3])
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--out", default=os.path.join(HERE, "BREAKDOWN.md"))
    opts = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("breakdown.py: run as root")
    if not os.access(LAUNCHER, os.X_OK):
        sys.exit(f"breakdown.py: no pyrunc launcher at {LAUNCHER} (pip install -e .)")
    os.makedirs("/run", exist_ok=True)
    work = tempfile.mkdtemp(prefix="pyrunc-breakdown-", dir="/run")
    try:
        env = environment(work)
        bundle = make_bundle(work)
        root = os.path.join(work, "root")
        w("# Where pyrunc's time goes (bench/breakdown.py)")
        w()
        w(f"Generated {time.strftime('%Y-%m-%d %H:%M')}; medians of {opts.runs} interleaved "
          f"runs, ms. Interpreter: {protected_python()} (what the launcher execs).")  # fmt: skip
        w()
        w("## Process starts")
        w()
        w("| what | ms |")
        w("| --- | ---: |")
        for name, ms in starts(work, bundle, env, opts.runs).items():
            w(f"| {name} | {ms:.1f} |")
        w()
        w("## Imports (-X importtime: self times summed; largest top-level imports)")
        # a created init keeps the runtime's stdio open until start: never a pipe here
        subprocess.run([LAUNCHER, "--root", root, "create", "-b", bundle, "waiting"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        for label, argv in (("state", ["--root", root, "state", "waiting"]),
                            ("run", ["--root", root, "run", "-b", bundle, "imports"])):  # fmt: skip
            imports(argv, env)  # bytecode for every module first
            total, top = imports(argv, env)
            w()
            w(f"`{label}`: {total:.1f} ms of imports; " + ", ".join(
                f"{name} {ms:.1f}" for ms, name in top))  # fmt: skip
        if shutil.which("strace"):
            run = [LAUNCHER, "--root", root, "run", "-b", bundle, "traced"]
            w()
            w("## The runtime process's slowest syscalls in one pyrunc `run` (strace -f -T, which")
            w("slows everything down; the init's own calls are left out)")
            w()
            w("| ms | call |")
            w("| ---: | --- |")
            for row in slow_syscalls(run, env, work):
                w(row)
            w()
            w("## Syscalls of one `run` (strace -c -f)")
            w()
            w("| runtime | syscalls |")
            w("| --- | ---: |")
            for name, argv in (("pyrunc", [LAUNCHER, "--root", root, "run", "-b", bundle, "c1"]),
                               ("runc", ["runc", "--root", root + "-runc", "run", "-b", bundle,
                                         "c1"]),
                               ("crun", ["crun", "--root", root + "-crun", "run", "-b", bundle,
                                         "c1"])):  # fmt: skip
                if shutil.which(argv[0]) or os.path.isabs(argv[0]):
                    w(f"| {name} | {syscall_counts(argv, env)} |")
        subprocess.run([LAUNCHER, "--root", root, "delete", "-f", "waiting"], env=env,
                       capture_output=True)  # fmt: skip
    finally:
        for runtime, base in (("pyrunc", LAUNCHER), ("runc", "runc"), ("crun", "crun")):
            state_root = os.path.join(work, "root") + ("" if runtime == "pyrunc" else f"-{runtime}")
            if os.path.isdir(state_root) and (shutil.which(base) or os.path.isabs(base)):
                for cid in os.listdir(state_root):
                    subprocess.run([base, "--root", state_root, "delete", "-f", cid],
                                   capture_output=True)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    with open(opts.out, "w") as f:
        f.write("\n".join(OUT) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
