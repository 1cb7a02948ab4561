"""The compiled loader (pyrunc.spec.loader, what create/run/exec use) against the attrs/cattrs one.

pyrunc.spec.compiled is generated from the attrs model by pyrunc.spec.codegen.  These tests
check that the committed file is what the generator makes today, and that both loaders agree
exactly, values and error messages alike, on the spec's own test documents, on every message
case of test_spec.py and on thousands of mutated documents.
"""

from __future__ import annotations

import copy
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from test_spec import BASE, CASES, JUNK, SPEC_TESTS, _docs, _mutate, needs_shared

from pyrunc.errors import ConfigError
from pyrunc.spec import codegen, compiled, converter, loader, rules, structuring

REPO = Path(__file__).resolve().parents[1]


def plain(value: Any) -> Any:
    """A comparable form of a model value from either implementation: class name + fields."""
    if attrs.has(type(value)):
        names = [a.name for a in attrs.fields(type(value))]
    elif isinstance(value, structuring.Value):
        names = list(type(value).__slots__)
    else:
        names = None
    if names is not None:
        return (type(value).__name__, {n: plain(getattr(value, n)) for n in names})
    if isinstance(value, tuple):
        return ("tuple", [plain(v) for v in value])
    if isinstance(value, list):
        return ("list", [plain(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: plain(v) for k, v in value.items()})
    return (type(value).__name__, value)


def outcome(load: Any, data: Any, source: str = "config.json") -> tuple[str, Any]:
    try:
        return "ok", plain(load(copy.deepcopy(data), source))
    except ConfigError as exc:
        return "error", str(exc)


def agree(data: Any, kind: str = "config") -> tuple[str, Any]:
    reference = outcome(getattr(converter, f"load_{kind}"), data)
    fast = outcome(getattr(loader, f"load_{kind}"), data)
    assert fast == reference
    return fast


def test_generated_module_is_current() -> None:
    assert codegen.OUTPUT.read_text() == codegen.generate(), (
        "pyrunc/spec/compiled.py is stale: run python3 -m pyrunc.spec.codegen"
    )


def test_same_fields_as_the_model() -> None:
    from pyrunc.spec import model

    for name, cl in vars(model).items():
        if isinstance(cl, type) and attrs.has(cl):
            assert getattr(compiled, name).__slots__ == tuple(a.name for a in attrs.fields(cl))


@needs_shared
@pytest.mark.parametrize(
    "path", _docs("good") + _docs("bad"), ids=lambda p: p.parent.name + "/" + p.name
)
def test_spec_documents(path: Path) -> None:
    data = path.read_bytes()
    kind, _ = agree(data)
    assert kind == ("ok" if path.parent.name == "good" else "error")


@pytest.mark.parametrize(("doc", "expected"), CASES, ids=[c[1].split(":")[0] for c in CASES])
def test_message_cases(doc: dict[str, Any], expected: str) -> None:
    assert agree(json.dumps(doc)) == ("error", f"config.json: {expected}")


@pytest.mark.parametrize("data", ["{]", "", '{"ociVersion": NaN}', "[]", '"x"', "null", "{}"])
def test_document_level(data: str) -> None:
    assert agree(data)[0] == "error"


def test_process_and_resources_documents() -> None:
    assert agree({"cwd": "/", "args": ["ls"], "terminal": False}, "process")[0] == "ok"
    assert agree({}, "process")[0] == "error"
    assert agree({"cwd": "relative"}, "process")[0] == "error"
    assert (
        agree({"memory": {"limit": 1 << 20, "swap": -1}, "pids": {"limit": 0}}, "resources")[0]
        == "ok"
    )
    assert agree({"cpu": {"shares": "1024"}}, "resources") == (
        "error",
        'config.json: cpu.shares: expected integer, got "1024"',
    )


def test_values_are_immutable_and_compare_by_value() -> None:
    a = loader.load_config(json.dumps(BASE))
    b = loader.load_config(json.dumps(BASE))
    assert a == b and hash(a.root) == hash(b.root)
    assert a.process is not None and a.process.args == ("sh",)
    with pytest.raises(AttributeError):
        a.hostname = "x"  # type: ignore[misc]
    assert compiled.Root(path="r") != compiled.Root(path="r", readonly=True)
    assert compiled.Linux().sysctl == {} and compiled.Linux().namespaces == ()


@needs_shared
def test_mutations_agree() -> None:
    """Thousands of documents one to three random edits away from the spec's full example."""
    original = json.loads((SPEC_TESTS / "good" / "spec-example.json").read_text())
    rng = random.Random(7)
    seen = {"ok": 0, "error": 0}
    for _ in range(3000):
        seen[agree(_mutate(original, rng))[0]] += 1
    assert seen["ok"] > 100 and seen["error"] > 100, seen


def test_junk_in_every_place_of_base() -> None:
    """Each JUNK value at every position of BASE (and of its nested objects' missing keys)."""
    doc = copy.deepcopy(BASE)
    doc["linux"].update(
        {"resources": {"memory": {"limit": 1}, "devices": [{"allow": True}]}, "sysctl": {"a": "b"}}
    )
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            paths.append([*path, key])
            if isinstance(value, (dict, list)):
                walk(value, [*path, key])

    walk(doc, [])
    for path in paths:
        for junk in JUNK:
            mutated = copy.deepcopy(doc)
            node = mutated
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = copy.deepcopy(junk)
            agree(mutated)


def test_create_path_imports_neither_attrs_nor_cattrs() -> None:
    code = (
        "import sys, pyrunc.lifecycle.create, pyrunc.lifecycle.run, pyrunc.lifecycle.exec; "
        "sys.exit(bool({'attrs', 'cattrs', 'pyrunc.spec.model'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, check=False).returncode == 0


# --- the patterns, written out without `re`, against their regular expressions ------------

PATTERN_SAMPLES = [
    "",
    "/",
    "//x",
    "a/",
    "CAP_",
    "CAP_X",
    "CAP_x",
    "CAP_SYS_ADMIN",
    "cap_x",
    "RLIMIT_",
    "RLIMIT_NOFILE",
    "RLIMIT_NO1",
    "2MB",
    "02MB",
    "0MB",
    "64KB",
    "1GB",
    "1TB",
    "MB",
    "1mb",
    "0-3,7",
    "0 - 3",
    "a",
    "MB:0=100",
    "MB:",
    "MB:\n",
    "MB",
    "line\nline",
    "rwm",
    "rw",
    "x",
    "1.0.0",
    "1.0",
    "01.0.0",
    "1.0.0-",
    "1.0.0-rc.1",
    "1.0.0-0a.01",
    "1.0.0-01",
    "1.0.0-0",
    "1.0.0-a..b",
    "1.0.0+",
    "1.0.0+b.1",
    "1.0.0+b..1",
    "1.0.0-rc.1+build.5",
    "1.0.0-x-y-z.--",
    "1.2.3+0001",
    "1.0.0\n",
    "1.0.0-é",
    "1.0.0-a+b+c",
    "١.0.0",
    "1.0.0-١",
    "CAP_١",
    "RLIMIT_É",
    "1.0.0-rc+",
    "\n",
    "1.2.3.4",
]


@pytest.mark.parametrize("name", sorted(rules.STR_PATTERNS))
def test_patterns_match_their_regular_expressions(name: str) -> None:
    import re

    regex = re.compile(rules.STR_PATTERNS[name][0], re.DOTALL)
    match = rules.pattern_checker(name)
    for text in PATTERN_SAMPLES:
        assert match(text) == (regex.fullmatch(text) is not None), (name, text)


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the test extras
    pass
else:
    _ALPHABET = st.sampled_from(list("0129aZzRMKGBCAPLIT_-+.:/ ,\nrwmé١"))

    @settings(max_examples=3000, deadline=None)
    @given(name=st.sampled_from(sorted(rules.STR_PATTERNS)), text=st.text(_ALPHABET, max_size=14))
    def test_patterns_match_generated_strings(name: str, text: str) -> None:
        import re

        regex = re.compile(rules.STR_PATTERNS[name][0], re.DOTALL)
        for candidate in (text, "CAP_" + text, "RLIMIT_" + text, "MB:" + text, "1.0.0-" + text,
                          "1.0.0+" + text, "1." + text):  # fmt: skip
            expected = regex.fullmatch(candidate) is not None
            assert rules.pattern_checker(name)(candidate) == expected, (name, candidate)
