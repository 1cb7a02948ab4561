"""features.md: the Features structure printed by `<runtime> features`.

Providing one is a MAY: a runtime without the command skips these tests (with that reason).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from harness import SCHEMA_DIR, Case, Session, read_hook_log, run_cmd, schema_errors

req = pytest.mark.req
HOOK_KINDS = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
]


@pytest.fixture(scope="module")
def features(session: Session) -> dict[str, Any]:
    res = run_cmd([session.binary, "features"])
    if not res.ok:
        pytest.skip(
            f"no Features structure (`features` failed: {res.err.strip()[:120]!r}); it is a MAY"
        )
    try:
        return json.loads(res.out)
    except ValueError:
        pytest.fail(f"`features` printed something that is not JSON: {res.out[:200]!r}")


def _semver(v: str) -> tuple[int, int, int, bool]:
    m = re.match(r"^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?", v)
    if not m:
        raise ValueError(v)
    # a pre-release sorts before its release
    return int(m[1]), int(m[2]), int(m[3]), m[4] is None


@req(
    "features.md#specification-version-1",
    "features.md#specification-version-3",
    "features.md#specification-version-5",
)
def test_features_versions(features: dict[str, Any]) -> None:
    """ociVersionMin and ociVersionMax are present, SemVer, and max is not below min."""
    problems = schema_errors("features-schema.json", features)
    lo, hi = features.get("ociVersionMin"), features.get("ociVersionMax")
    if not isinstance(lo, str) or not isinstance(hi, str):
        problems.append(f"ociVersionMin {lo!r}, ociVersionMax {hi!r}")
    else:
        try:
            if _semver(hi) < _semver(lo):
                problems.append(f"ociVersionMax {hi} is less than ociVersionMin {lo}")
        except ValueError as exc:
            problems.append(f"not SemVer: {exc}")
    assert not problems, "; ".join(problems)


def _schema_properties(name: str, pointer: list[str]) -> set[str]:
    doc = json.loads((SCHEMA_DIR / name).read_text())
    for key in pointer:
        doc = doc[key]
    return set(doc.get("properties", {}))


@req("features.md#specification-version-6")
def test_features_only_defined_properties(features: dict[str, Any]) -> None:
    """No property that this version of the spec does not define (top level and `linux`)."""
    known_top = _schema_properties("features-schema.json", [])
    known_linux = _schema_properties("features-linux.json", ["linux"])
    extra = sorted(set(features) - known_top)
    linux = features.get("linux") or {}
    extra += sorted(f"linux.{k}" for k in set(linux) - known_linux)
    assert not extra, f"properties not defined by the spec: {extra}"


@req("features.md#annotations-1")
def test_features_annotations(features: dict[str, Any]) -> None:
    """annotations, if any, is a map of non-empty string keys to string values."""
    ann = features.get("annotations")
    if ann is None:
        return
    assert isinstance(ann, dict), f"annotations is {type(ann).__name__}"
    bad = {k: v for k, v in ann.items() if not k or not isinstance(v, str)}
    assert not bad, f"annotations breaking the config.json conventions: {bad}"


@pytest.mark.parametrize(
    "which",
    [
        pytest.param("ociVersionMin", marks=req("features.md#specification-version-2")),
        pytest.param("ociVersionMax", marks=req("features.md#specification-version-4")),
    ],
)
def test_features_versions_accepted(case: Case, features: dict[str, Any], which: str) -> None:
    case.config["ociVersion"] = features[which]
    case.set_args("/bin/true")
    _, res = case.create()
    assert res.ok, f"create refused ociVersion {features[which]} ({which}): {res}"


@req("features.md#hooks-1")
def test_features_hooks_supported(case: Case, features: dict[str, Any]) -> None:
    """Every hook kind the runtime lists runs when configured."""
    kinds = features.get("hooks")
    if not kinds:
        pytest.skip("the runtime lists no hooks")
    log = case.io / "hooks.log"
    hooks: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        if kind == "startContainer":
            path, logpath = "/conformance/checker", "/conformance/io/hooks.log"
        else:
            path, logpath = str(case.session.checker), str(log)
        hooks[kind] = [{"path": path, "args": ["checker", "hook", kind, logpath]}]
    case.config["hooks"] = hooks
    case.set_args("/bin/true")
    cid = case.run_to_completion()
    case.delete(cid)
    ran = {r["hook"] for r in read_hook_log(log)}
    missing = [k for k in kinds if k not in ran]
    assert not missing, f"listed hooks that did not run: {missing}"


def _option_mount(case: Case, option: str) -> list[dict[str, Any]]:
    """A mount that uses OPTION in a way that makes sense for it."""
    source = case.dir / "src"
    source.mkdir(exist_ok=True)
    bindish = option in ("bind", "rbind", "idmap", "ridmap") or option.lstrip("r") in (
        "private", "shared", "slave", "unbindable",
    )  # fmt: skip
    if option == "remount":
        return [
            {
                "destination": "/mnt/opt2",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["size=1m"],
            },
            {
                "destination": "/mnt/opt2",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["remount"],
            },
        ]
    if bindish:
        m: dict[str, Any] = {
            "destination": "/mnt/opt2", "type": "none", "source": str(source),
            "options": ["rbind" if option.startswith("r") else "bind", option],
        }  # fmt: skip
        if option in ("idmap", "ridmap"):
            mapping = [{"containerID": 0, "hostID": 1000, "size": 1}]
            m["uidMappings"], m["gidMappings"] = mapping, mapping
        return [m]
    if option.startswith("r") and option[1:] in ("ro", "rw", "nosuid", "suid", "nodev", "dev",
                                                  "noexec", "exec", "atime", "noatime",
                                                  "diratime", "nodiratime", "relatime",
                                                  "norelatime", "strictatime", "nostrictatime",
                                                  "symfollow", "nosymfollow"):  # fmt: skip
        return [{"destination": "/mnt/opt2", "type": "none", "source": str(source),
                 "options": ["rbind", option]}]  # fmt: skip
    return [{"destination": "/mnt/opt2", "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m", option]}]  # fmt: skip


@req("features.md#mount-options-1")
def test_features_mount_options_recognized(case: Case, features: dict[str, Any]) -> None:
    """Every listed mount option is recognized: a container using it (in a mount that suits
    it) is created, rather than the option being refused or handed to the filesystem."""
    options = features.get("mountOptions")
    if not options:
        pytest.skip("the runtime lists no mount options")
    base = json.loads(json.dumps(case.config))
    base["process"]["args"] = ["/bin/true"]

    def try_option(option: str) -> str | None:
        config = json.loads(json.dumps(base))
        config["mounts"] = config["mounts"] + _option_mount(case, option)
        config["linux"]["cgroupsPath"] = f"{case.cgroups_path}-{option}"
        bundle = case.dir / f"bundle-{option}"
        case.write_config(config, bundle=bundle)
        cid = case.new_id()
        res = case.rt("create", "--bundle", str(bundle), cid)
        case.delete(cid, force=True)
        return None if res.ok else f"{option}: {res.err.strip()[:160]}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(try_option, options) if f]
    assert not failures, "\n".join(failures)
