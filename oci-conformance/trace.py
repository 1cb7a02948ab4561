#!/usr/bin/env python3
"""The traceability of the spec's requirements to the suite's tests.

traceability.json (hand-maintained) maps every requirement id of requirements.json either to the
tests that check it or to the reason it cannot be checked from outside the runtime. Tests declare
the ids they check with @pytest.mark.req(...); both directions must agree.

Usage: python3 oci-conformance/trace.py [--check] [--write] [--sync]
  --check  fail if an id is unmapped, a mapped test does not exist or does not declare the id,
           a test declares an id the mapping does not list, or requirements.json is stale
  --write  regenerate TRACEABILITY.md
  --sync   add the ids tests declare to traceability.json (keeps every reason; a helper for
           whoever adds tests; review the diff)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MAPPING = HERE / "traceability.json"
REQUIREMENTS = HERE / "requirements.json"
TRACE_MD = HERE / "TRACEABILITY.md"
TESTS = HERE / "tests"


def load_requirements() -> list[dict[str, Any]]:
    return json.loads(REQUIREMENTS.read_text())["requirements"]


def load_mapping() -> dict[str, dict[str, Any]]:
    return json.loads(MAPPING.read_text())["requirements"]


def collect_tests() -> dict[str, list[str]]:
    """Every test item (`file::name[param]`) and the requirement ids it declares."""
    import pytest

    found: dict[str, list[str]] = {}

    class Collector:
        def pytest_collection_finish(self, session: pytest.Session) -> None:
            for item in session.items:
                nodeid = item.nodeid.split("tests/", 1)[-1]
                found[nodeid] = [i for m in item.iter_markers("req") for i in m.args]

    os.environ.setdefault("RUNTIME", "true")  # collection never runs it
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = pytest.main(
            ["--collect-only", "-q", "-p", "no:cacheprovider", str(TESTS)],
            plugins=[Collector()],
        )
    if rc not in (0, 5):
        raise SystemExit(f"collecting the tests failed (pytest exit {rc}):\n{out.getvalue()}")
    return found


def ref_matches(ref: str, nodeid: str) -> bool:
    """A mapping reference names a test function (all its parameters) or one parameter."""
    return nodeid == ref or nodeid.startswith(ref + "[")


def check(reqs: list[dict[str, Any]], mapping: dict[str, dict[str, Any]],
          tests: dict[str, list[str]]) -> list[str]:  # fmt: skip
    problems = []
    ids = {r["id"] for r in reqs}
    for rid in sorted(ids - set(mapping)):
        problems.append(f"{rid}: not mapped (give it tests or an 'untestable' reason)")
    for rid in sorted(set(mapping) - ids):
        problems.append(
            f"{rid}: mapped but not in requirements.json (spec changed? rerun extract.py)"
        )
    for rid, entry in mapping.items():
        refs = entry.get("tests", [])
        if not refs and not entry.get("untestable"):
            problems.append(f"{rid}: neither tests nor an untestable reason")
        if refs and entry.get("untestable"):
            problems.append(f"{rid}: both tests and an untestable reason")
        for ref in refs:
            items = [n for n in tests if ref_matches(ref, n)]
            if not items:
                problems.append(f"{rid}: mapped test {ref} does not exist")
            for n in items:
                if rid not in tests[n]:
                    problems.append(
                        f"{rid}: mapped test {n} does not declare it (@pytest.mark.req)"
                    )
    for nodeid, declared in tests.items():
        for rid in declared:
            if rid not in ids:
                problems.append(f"{nodeid}: declares unknown requirement {rid}")
            elif not any(ref_matches(ref, nodeid) for ref in mapping.get(rid, {}).get("tests", [])):
                problems.append(
                    f"{nodeid}: declares {rid}, which traceability.json does not map to it"
                )
    return problems


def sync(mapping: dict[str, dict[str, Any]], tests: dict[str, list[str]]) -> int:
    """Add declared ids to the mapping at function level (or parameter level when only some
    parameters declare the id)."""
    added = 0
    by_function: dict[str, dict[str, list[str]]] = {}
    for nodeid, declared in tests.items():
        func = nodeid.split("[", 1)[0]
        by_function.setdefault(func, {})[nodeid] = declared
    for func, items in by_function.items():
        for rid in sorted({r for d in items.values() for r in d}):
            all_declare = all(rid in d for d in items.values())
            refs = [func] if all_declare else [n for n, d in items.items() if rid in d]
            entry = mapping.setdefault(rid, {})
            entry.pop("untestable", None) if refs else None
            for ref in refs:
                if ref not in entry.setdefault("tests", []):
                    entry["tests"].append(ref)
                    added += 1
    return added


def write_markdown(reqs: list[dict[str, Any]], mapping: dict[str, dict[str, Any]]) -> None:
    tested = sum(1 for r in reqs if mapping.get(r["id"], {}).get("tests"))
    lines = [
        "# Traceability: OCI runtime-spec v1.3.0 requirements to tests",
        "",
        "Generated by `python3 oci-conformance/trace.py --write` from `requirements.json` "
        "(extracted by `extract.py`) and the hand-maintained `traceability.json`. "
        "Do not edit by hand.",
        "",
        f"{len(reqs)} requirements (sentences with MUST, MUST NOT or REQUIRED in runtime.md, "
        f"runtime-linux.md, config.md, config-linux.md, features.md): {tested} checked by tests, "
        f"{len(reqs) - tested} explained as not checkable from outside.",
        "",
        "Test names are `file::function` (all parameters) or `file::function[parameter]`, "
        "under `oci-conformance/tests/`.",
        "",
    ]
    current = None
    for r in reqs:
        if r["file"] != current:
            current = r["file"]
            lines += ["", f"## {current}", "", "| id | requirement | tests, or why not testable |",
                      "| --- | --- | --- |"]  # fmt: skip
        entry = mapping.get(r["id"], {})
        if entry.get("tests"):
            where = "<br>".join(f"`{t}`" for t in entry["tests"])
        else:
            where = "untestable: " + entry.get("untestable", "**UNMAPPED**")
        if entry.get("note"):
            where += f" ({entry['note']})"
        sentence = r["sentence"].replace("|", "\\|")
        if r.get("context") and len(r["sentence"]) < 60:
            sentence += f" <sub>({r['context'].replace('|', '/')[:100]})</sub>"
        lines.append(f"| [{r['id']}]({r['url']}) | {sentence} | {where.replace('|', '/')} |")
    TRACE_MD.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--sync", action="store_true")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import extract

    if extract.main(["--check"]) != 0:
        return 1
    reqs = load_requirements()
    doc = json.loads(MAPPING.read_text()) if MAPPING.exists() else {"requirements": {}}
    mapping = doc["requirements"]
    tests = collect_tests()
    if args.sync:
        added = sync(mapping, tests)
        order = {r["id"]: i for i, r in enumerate(load_requirements())}
        doc["requirements"] = dict(sorted(mapping.items(), key=lambda kv: order.get(kv[0], 1e9)))
        MAPPING.write_text(json.dumps(doc, indent=2) + "\n")
        mapping = doc["requirements"]
        print(f"sync: added {added} test references")
    if args.write:
        write_markdown(reqs, mapping)
        print(f"wrote {TRACE_MD}")
    problems = check(reqs, mapping, tests)
    for p in problems:
        print(f"trace: {p}", file=sys.stderr)
    if problems:
        print(f"trace: {len(problems)} problems", file=sys.stderr)
        return 1 if args.check or not (args.write or args.sync) else 0
    tested = sum(1 for e in mapping.values() if e.get("tests"))
    print(f"trace: {len(reqs)} requirements, {tested} with tests, "
          f"{len(reqs) - tested} untestable with reasons, {len(tests)} tests")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
