"""Session set-up for the conformance tests: which runtime, the checker, the rootfs, the results.

The runtime is the binary named by $RUNTIME (e.g. RUNTIME=/usr/sbin/runc), labelled $RUNTIME_NAME
(default: its file name). With $OCI_RESULTS_FILE set, every test's outcome and the requirement
ids it declares (`@pytest.mark.req(...)`) are written there as JSON for run.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Case,
    Host,
    Session,
    build_checker,
    build_rootfs,
    ensure_hugetlb_v1,
    run_cmd,
    umount_under,
)

NOT_ROOT = os.geteuid() != 0
_outcomes: dict[str, dict[str, Any]] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): the spec requirement ids a test checks")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    if NOT_ROOT:
        skip = pytest.mark.skip(reason="the conformance suite needs root (namespaces, mounts)")
        for item in items:
            item.add_marker(skip)


def _runtime_binary() -> tuple[str, str]:
    binary = os.environ.get("RUNTIME", "")
    if not binary:
        raise pytest.UsageError("set RUNTIME to the runtime binary, e.g. RUNTIME=/usr/sbin/runc")
    resolved = shutil.which(binary) or binary
    name = os.environ.get("RUNTIME_NAME") or Path(resolved).name
    return resolved, name


def _probe_oci_version(session: Session) -> None:
    """Use ociVersion 1.3.0 in bundles unless the runtime refuses it; then the newest it takes."""
    forced = os.environ.get("OCI_VERSION")
    candidates = [forced] if forced else ["1.3.0", "1.2.0", "1.1.0", "1.0.2"]
    refused: list[str] = []
    refused_err = ""
    for version in candidates:
        session.oci_version = version
        case = Case(session, "probe")
        try:
            case.set_args("/bin/true")
            cid, res = case.create()
            if res.ok:
                if refused:
                    session.notes.append(
                        f"refuses ociVersion {', '.join(refused)} "
                        f"({refused_err.strip()[:120]!r}); bundles use {version}"
                    )
                return
            refused.append(version)
            refused_err = res.err
        finally:
            case.cleanup()
    session.oci_version = candidates[0]
    session.notes.append(f"could not create even a trivial container: {refused_err.strip()[:300]}")


@pytest.fixture(scope="session")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    if NOT_ROOT:
        pytest.skip("needs root")
    binary, name = _runtime_binary()
    if not os.access(binary, os.X_OK):
        pytest.exit(f"RUNTIME={binary} is not executable", returncode=2)
    workdir = Path(tempfile.mkdtemp(prefix=f"oci-conformance-{name}-"))
    workdir.chmod(0o755)
    notes = []
    hugetlb = ensure_hugetlb_v1()
    if hugetlb:
        notes.append(hugetlb)
    checker = build_checker(workdir)
    rootfs = build_rootfs(workdir / "template", checker)
    s = Session(
        runtime_name=name,
        binary=binary,
        workdir=workdir,
        checker=checker,
        rootfs=rootfs,
        host=Host.probe(),
        token=secrets.token_hex(2),
        notes=notes,
    )
    _probe_oci_version(s)
    version = run_cmd([binary, "--version"])
    s.notes.insert(0, (version.out.strip().splitlines() or ["?"])[0])
    yield s
    _write_session_notes(s)
    umount_under(workdir)
    _remove_leftover_cgroups(s.token)
    shutil.rmtree(workdir, ignore_errors=True)


def _remove_leftover_cgroups(token: str) -> None:
    """rmdir the cgroups this session's containers left (runtimes that leak them on a failed
    create; test_failed_create_leaves_nothing reports that): keeps the host clean for CI."""
    found = []
    # other processes create and remove cgroups meanwhile: walk without failing on them
    for top, dirs, _ in os.walk("/sys/fs/cgroup", onerror=lambda e: None):
        if top.count("/") > 7:
            dirs[:] = []
        found += [os.path.join(top, d) for d in dirs if f"oc{token}-" in d]
    for path in sorted(found, key=lambda p: p.count("/"), reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass


def _write_session_notes(s: Session) -> None:
    path = os.environ.get("OCI_RESULTS_FILE")
    if path:
        _outcomes["__session__"] = {
            "runtime": s.runtime_name,
            "binary": s.binary,
            "oci_version": s.oci_version,
            "notes": s.notes,
        }


@pytest.fixture
def case(session: Session, request: pytest.FixtureRequest) -> Iterator[Case]:
    """A fresh bundle, state root and io directory; everything force-deleted afterwards."""
    c = Case(session, request.node.name)
    yield c
    problems = c.cleanup()
    assert not problems, "; ".join(problems)


# --- outcomes for run.py ------------------------------------------------------------------


def _short(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = getattr(report, "longreprtext", "") or ""
    lines = []
    for ln in text.splitlines():
        if not ln.startswith("E "):
            continue
        body = ln[2:].strip()
        if lines and body.startswith(("assert ", "+", "where ", "Use -v")):
            break  # pytest's introspection of the assertion: the message came first
        lines.append(body.removeprefix("AssertionError: ").removeprefix("Failed: "))
    return "\n".join(lines)[:1500] or text[-1500:]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid.split("tests/", 1)[-1]
    rec = _outcomes.setdefault(nodeid, {"outcome": "not run", "message": "", "duration": 0.0})
    if report.when == "setup" and rec["outcome"] == "not run":
        rec["outcome"] = "passed"
    rec["duration"] += report.duration
    if report.failed:
        rec["outcome"] = "failed" if report.when == "call" else "error"
        rec["message"] = (rec["message"] + "\n" + _short(report)).strip()
    elif report.skipped and rec["outcome"] == "passed":
        rec["outcome"] = "skipped"
        rec["message"] = _short(report)


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        nodeid = item.nodeid.split("tests/", 1)[-1]
        reqs = [i for m in item.iter_markers("req") for i in m.args]
        _outcomes.setdefault(nodeid, {"outcome": "not run", "message": "", "duration": 0.0})
        _outcomes[nodeid]["reqs"] = reqs


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    del session, exitstatus
    path = os.environ.get("OCI_RESULTS_FILE")
    if path:
        Path(path).write_text(json.dumps(_outcomes, indent=1, sort_keys=True) + "\n")
