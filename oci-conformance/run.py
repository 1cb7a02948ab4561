#!/usr/bin/env python3
"""The conformance suite's one entry point: run the tests against runtimes, summarize per
requirement, write RESULTS.md, and fail on a pyrunc regression from the recorded expectations.

Usage: python3 oci-conformance/run.py [--runtimes pyrunc,runc,crun] [--check-regressions]
                                      [--write-results] [--record-expected] [-k EXPR]
  --runtimes NAMES   comma-separated; a name is looked up on PATH, NAME=/path/to/binary also
                     works (default: pyrunc,runc,crun; a missing runc or crun is skipped)
  --check-regressions  exit 1 if a requirement or test that passes in expected-pyrunc.json
                     does not pass now (newly passing ones are reported, not errors)
  --write-results    write RESULTS.md (the per-requirement table for all runtimes run)
  --record-expected  write expected-pyrunc.json from this run (after fixing pyrunc)
  -k EXPR            only the tests matching EXPR (pytest -k), for quick looks
  --jobs N           pytest processes per runtime, each with its own share of the test
                     files (default 2)

The runtimes run in parallel, one pytest process each (oci-conformance/tests, RUNTIME=binary).
Set-up: traceability is checked first (trace.py --check); if the hugetlb controller sits unused
on the cgroup2 mount of a hybrid host, it is mounted as a v1 hierarchy at
/sys/fs/cgroup/hugetlb, because crun 1.8 refuses hybrid hosts otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_MD = HERE / "RESULTS.md"
EXPECTED = HERE / "expected-pyrunc.json"
DEVIATIONS = HERE / "deviations.json"
DEFAULT_RUNTIMES = "pyrunc,runc,crun"
SUITE_TIMEOUT = 900

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "tests"))


def resolve_runtimes(spec: str, workdir: Path) -> list[tuple[str, str]]:
    """(name, binary) pairs; pyrunc falls back to `python3 -m pyrunc` from this checkout."""
    out = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        name, _, path = item.partition("=")
        beside = Path(sys.executable).parent / name  # pip's script for this interpreter
        if not path and name == "pyrunc" and os.access(beside, os.X_OK):
            path = str(beside)
        binary = path or shutil.which(name) or ""
        if not binary and name == "pyrunc":
            wrapper = workdir / "pyrunc"
            wrapper.write_text(
                f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" '
                f'exec "{sys.executable}" -m pyrunc "$@"\n'
            )
            wrapper.chmod(0o755)
            binary = str(wrapper)
        if not binary or not os.access(binary, os.X_OK):
            print(f"run: {name}: no such runtime binary, skipped", file=sys.stderr)
            if name == "pyrunc":
                raise SystemExit("run: pyrunc is required")
            continue
        out.append((name, binary))
    return out


def shard_files(tests: dict[str, list[str]], shards: int) -> list[list[str]]:
    """Test files split into SHARDS groups of about the same number of tests."""
    counts: dict[str, int] = {}
    for nodeid in tests:
        f = nodeid.split("::", 1)[0]
        counts[f] = counts.get(f, 0) + 1
    groups: list[list[str]] = [[] for _ in range(max(1, shards))]
    sizes = [0] * len(groups)
    for f, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        i = sizes.index(min(sizes))
        groups[i].append(f)
        sizes[i] += n
    return [g for g in groups if g]


def run_suites(runtimes: list[tuple[str, str]], workdir: Path, k: str | None,
               shards: list[list[str]]) -> dict[str, Any]:  # fmt: skip
    """pytest per runtime and shard, all in parallel; returns name -> outcomes, merged (see
    tests/conftest.py for what one outcome holds)."""
    procs = []
    for name, binary in runtimes:
        for i, files in enumerate(shards):
            results = workdir / f"{name}-{i}.json"
            log = workdir / f"{name}-{i}.log"
            env = dict(os.environ, RUNTIME=binary, RUNTIME_NAME=name, OCI_RESULTS_FILE=str(results))
            paths = [str(HERE / "tests" / f) for f in files]
            cmd = [sys.executable, "-m", "pytest", *paths, "-q", "-p", "no:cacheprovider"]
            cmd += ["-p", "no:benchmark", "-o", "addopts=", "--rootdir", str(HERE)]
            if k:
                cmd += ["-k", k]
            with open(log, "w") as f:
                proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                        cwd=str(REPO))  # fmt: skip
            procs.append((name, proc, results, log))
        print(f"run: {name} ({binary}) started: {len(shards)} pytest processes, logs in {workdir}")
    outcomes: dict[str, Any] = {name: {} for name, _ in runtimes}
    deadline = time.monotonic() + SUITE_TIMEOUT
    for name, proc, results, log in procs:
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            print(f"run: {name}: the suite timed out after {SUITE_TIMEOUT}s", file=sys.stderr)
        tail = log.read_text().strip().splitlines()[-1:] if log.exists() else []
        print(f"run: {log.stem}: {tail[0] if tail else 'no output'}")
        if not results.exists():
            print(f"run: {log.stem}: no results (pytest exit {proc.returncode}); see {log}",
                  file=sys.stderr)  # fmt: skip
            outcomes[name]["__broken__"] = True
            continue
        part = json.loads(results.read_text())
        session = part.pop("__session__", None)
        outcomes[name].update(part)
        if session and "__session__" not in outcomes[name]:
            outcomes[name]["__session__"] = session
    return outcomes


# --- per-requirement summary ---------------------------------------------------------------


def normalize(message: str) -> str:
    """Drop what changes from run to run (temporary paths, ids, times) from a message."""
    message = re.sub(r"/tmp/oci-conformance-[\w-]+?/[^\s'\"`:)]*", "<tmp>", message)
    message = re.sub(r"/tmp/oci-conformance-[\w-]+", "<tmp>", message)
    message = re.sub(r"\boc[0-9a-f]{4}-[\w]+-(c|cg|ns)-\d+\b", "<id>", message)
    message = re.sub(r'time="[^"]*" ', "", message)
    message = re.sub(r"\b\d{4}-\d\d-\d\dT[\d:.]+Z\b", "<time>", message)
    message = re.sub(r"\b(pid|process) \d+\b", r"\1 <n>", message)
    return message


def summarize(outcomes: dict[str, Any], reqs: list[dict[str, Any]],
              mapping: dict[str, Any]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """requirement id -> {status, tests: {nodeid: outcome}, reason}."""
    tests = {k: v for k, v in outcomes.items() if not k.startswith("__")}
    by_req: dict[str, list[str]] = {}
    for nodeid, rec in tests.items():
        for rid in rec.get("reqs", []):
            by_req.setdefault(rid, []).append(nodeid)
    summary = {}
    for r in reqs:
        rid = r["id"]
        entry = mapping.get(rid, {})
        if entry.get("untestable"):
            summary[rid] = {"status": "n/a", "reason": entry["untestable"], "tests": {}}
            continue
        ran = {n: tests[n]["outcome"] for n in by_req.get(rid, [])}
        failed = [n for n, o in ran.items() if o in ("failed", "error")]
        passed = [n for n, o in ran.items() if o == "passed"]
        skipped = [n for n, o in ran.items() if o == "skipped"]
        if failed:
            status, why = "fail", f"{failed[0]}: {normalize(tests[failed[0]]['message'])}"
        elif passed:
            status, why = "pass", ""
        elif skipped:
            status, why = "skip", normalize(tests[skipped[0]]["message"])
        else:
            status, why = "not run", "no test ran"
        summary[rid] = {"status": status, "reason": why, "tests": ran}
    return summary


# --- RESULTS.md ------------------------------------------------------------------------------


def _cell(status: str, deviation: str | None) -> str:
    if status == "fail":
        return f"**FAIL** ({deviation})" if deviation else "**FAIL**"
    return status


def write_results(
    runtimes: list[str],
    outcomes: dict[str, Any],
    summaries: dict[str, Any],
    reqs: list[dict[str, Any]],
    deviations: list[dict[str, Any]],
) -> None:
    def dev_for(rid: str, runtime: str) -> str | None:
        for d in deviations:
            if d["requirement"] == rid and runtime in d["runtimes"]:
                return d["id"]
        return None

    lines = [
        f"# OCI runtime-spec v1.3.0 conformance: {', '.join(runtimes)}",
        "",
        "Generated by `python3 oci-conformance/run.py --write-results`; do not edit by hand. "
        "One row per requirement (every sentence with MUST, MUST NOT or REQUIRED in runtime.md, "
        "runtime-linux.md, config.md, config-linux.md and features.md); which tests check it, "
        "or why it cannot be checked, is in [TRACEABILITY.md](TRACEABILITY.md). A requirement "
        "fails if any of its tests fails, passes if none fails and one passes, and is skipped "
        "(with the reason) if all its tests skipped. `n/a`: not checkable from outside the "
        "runtime (other platforms, hardware this host lacks; reasons in TRACEABILITY.md).",
        "",
        "Where runc or crun fail, that is a finding about them, not about the test: the "
        "details below say what each one did.",
        "",
        "## Runtimes",
        "",
        "| | " + " | ".join(runtimes) + " |",
        "| --- | " + " | ".join("---" for _ in runtimes) + " |",
    ]
    sessions = {rt: outcomes[rt].get("__session__", {}) for rt in runtimes}
    lines.append("| version | " + " | ".join(
        (sessions[rt].get("notes") or ["?"])[0] for rt in runtimes) + " |")  # fmt: skip
    lines.append("| bundles' `ociVersion` | " + " | ".join(
        sessions[rt].get("oci_version", "?") for rt in runtimes) + " |")  # fmt: skip
    lines.append("| notes | " + " | ".join(
        "; ".join(sessions[rt].get("notes", [])[1:]) or "" for rt in runtimes) + " |")  # fmt: skip
    lines += ["", "## Summary", "", "| requirements | " + " | ".join(runtimes) + " |",
              "| --- | " + " | ".join("---" for _ in runtimes) + " |"]  # fmt: skip
    for status in ("pass", "fail", "skip", "n/a", "not run"):
        counts = [
            sum(1 for s in summaries[rt].values() if s["status"] == status) for rt in runtimes
        ]
        if any(counts):
            lines.append(f"| {status} | " + " | ".join(map(str, counts)) + " |")
    lines.append("| total | " + " | ".join(str(len(reqs)) for _ in runtimes) + " |")
    lines += ["", "| tests | " + " | ".join(runtimes) + " |",
              "| --- | " + " | ".join("---" for _ in runtimes) + " |"]  # fmt: skip
    for outcome in ("passed", "failed", "error", "skipped"):
        counts = [sum(1 for k, v in outcomes[rt].items() if not k.startswith("__")
                      and v["outcome"] == outcome) for rt in runtimes]  # fmt: skip
        if any(counts):
            lines.append(f"| {outcome} | " + " | ".join(map(str, counts)) + " |")
    if deviations:
        lines += ["", "## Known, explained deviations", ""]
        for d in deviations:
            lines.append(
                f"- **{d['id']}** ({d['requirement']}; {', '.join(d['runtimes'])}): {d['text']}"
            )
    lines += ["", "## Requirements", "",
              "| id | requirement | " + " | ".join(runtimes) + " |",
              "| --- | --- | " + " | ".join("---" for _ in runtimes) + " |"]  # fmt: skip
    for r in reqs:
        rid = r["id"]
        sentence = r["sentence"].replace("|", "\\|")
        if len(sentence) > 140:
            sentence = sentence[:137] + "..."
        cells = [_cell(summaries[rt][rid]["status"], dev_for(rid, rt)) for rt in runtimes]
        lines.append(f"| [{rid}]({r['url']}) | {sentence} | " + " | ".join(cells) + " |")
    for rt in runtimes:
        lines += ["", f"## {rt}: failures and skips", ""]
        shown = 0
        for r in reqs:
            s = summaries[rt][r["id"]]
            if s["status"] in ("fail", "skip", "not run"):
                reason = " ".join(s["reason"].split())
                if len(reason) > 400:
                    reason = reason[:397] + "..."
                lines.append(f"- `{r['id']}` {s['status']}: {reason.replace('|', '/')}")
                shown += 1
        if not shown:
            lines.append("none")
    RESULTS_MD.write_text("\n".join(lines) + "\n")
    print(f"run: wrote {RESULTS_MD}")


# --- regressions -----------------------------------------------------------------------------


def expected_doc(outcomes: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    tests = {k: v["outcome"] for k, v in sorted(outcomes.items()) if not k.startswith("__")}
    return {
        "about": "pyrunc's recorded conformance: run.py --check-regressions fails when a "
        "requirement or test listed here as pass/passed does not pass; re-record with "
        "run.py --record-expected after a fix",
        "requirements": {rid: s["status"] for rid, s in summary.items()},
        "tests": tests,
    }


def check_regressions(outcomes: dict[str, Any], summary: dict[str, Any]) -> int:
    if not EXPECTED.exists():
        print(f"run: {EXPECTED.name} missing: record it with --record-expected", file=sys.stderr)
        return 1
    expected = json.loads(EXPECTED.read_text())
    now = expected_doc(outcomes, summary)
    regressions, improvements = [], []
    for kind in ("requirements", "tests"):
        good = "pass" if kind == "requirements" else "passed"
        for key, was in expected[kind].items():
            cur = now[kind].get(key, "missing")
            if was == good and cur != good:
                why = summary.get(key, {}).get("reason") if kind == "requirements" else (
                    normalize(outcomes.get(key, {}).get("message", "")))  # fmt: skip
                regressions.append(
                    f"{kind[:-1]} {key}: {was} -> {cur}  {' '.join((why or '').split())[:300]}"
                )
            elif was != good and cur == good:
                improvements.append(f"{kind[:-1]} {key}: {was} -> {cur}")
        for key in sorted(set(now[kind]) - set(expected[kind])):
            improvements.append(f"{kind[:-1]} {key}: new, {now[kind][key]}")
    for line in improvements:
        print(f"run: improved: {line}")
    for line in regressions:
        print(f"run: REGRESSION: {line}", file=sys.stderr)
    if regressions:
        print(f"run: {len(regressions)} regressions from {EXPECTED.name}", file=sys.stderr)
        return 1
    print(f"run: no regression from {EXPECTED.name} ({len(improvements)} improvements; "
          "re-record with --record-expected to keep them)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default=DEFAULT_RUNTIMES)
    parser.add_argument("--check-regressions", action="store_true")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--record-expected", action="store_true")
    parser.add_argument("-k", dest="k", default=None)
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes per runtime")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run: the suite needs root (namespaces, mounts, cgroups)", file=sys.stderr)
        return 2

    import trace as tracer  # oci-conformance/trace.py, first on sys.path

    from harness import ensure_hugetlb_v1

    if tracer.main(["--check"]) != 0:
        print("run: traceability is broken (see above)", file=sys.stderr)
        return 1
    note = ensure_hugetlb_v1()
    if note:
        print(f"run: {note}")
    reqs = tracer.load_requirements()
    mapping = tracer.load_mapping()
    deviations = json.loads(DEVIATIONS.read_text())["deviations"] if DEVIATIONS.exists() else []
    workdir = Path(tempfile.mkdtemp(prefix="oci-conformance-run-"))
    runtimes = resolve_runtimes(args.runtimes, workdir)
    shards = shard_files(tracer.collect_tests(), args.jobs)
    started = time.monotonic()
    outcomes = run_suites(runtimes, workdir, args.k, shards)
    print(f"run: {time.monotonic() - started:.0f}s for {', '.join(n for n, _ in runtimes)}")
    names = [n for n, _ in runtimes if outcomes.get(n)]
    summaries = {n: summarize(outcomes[n], reqs, mapping) for n in names}
    for n in names:
        counts: dict[str, int] = {}
        for s in summaries[n].values():
            counts[s["status"]] = counts.get(s["status"], 0) + 1
        print(f"run: {n}: requirements " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    rc = 0
    if "pyrunc" not in outcomes or not outcomes["pyrunc"]:
        if args.check_regressions or args.record_expected:
            print("run: no pyrunc results", file=sys.stderr)
            rc = 1
    else:
        if args.record_expected and not args.k:
            doc = expected_doc(outcomes["pyrunc"], summaries["pyrunc"])
            EXPECTED.write_text(json.dumps(doc, indent=1) + "\n")
            print(f"run: recorded {EXPECTED}")
        if args.check_regressions:
            if args.k:
                print("run: -k given: regression check limited to the tests that ran")
                ran = {k: v for k, v in outcomes["pyrunc"].items()}
                rc |= check_regressions_subset(ran, summaries["pyrunc"])
            else:
                rc |= check_regressions(outcomes["pyrunc"], summaries["pyrunc"])
    if args.write_results and names:
        if args.k:
            print("run: -k given: RESULTS.md not written (it must cover every test)")
        else:
            write_results(names, outcomes, summaries, reqs, deviations)
    shutil.rmtree(workdir, ignore_errors=True) if rc == 0 else print(f"run: logs kept in {workdir}")
    return rc


def check_regressions_subset(outcomes: dict[str, Any], summary: dict[str, Any]) -> int:
    """With -k only some tests ran: compare those tests, not the requirements."""
    expected = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {"tests": {}}
    bad = [
        f"{k}: passed -> {v['outcome']}"
        for k, v in outcomes.items()
        if not k.startswith("__") and v["outcome"] != "not run"
        and expected["tests"].get(k) == "passed" and v["outcome"] != "passed"
    ]  # fmt: skip
    for line in bad:
        print(f"run: REGRESSION: test {line}", file=sys.stderr)
    del summary
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
