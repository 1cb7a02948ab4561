"""The operation codes have one list, pyrunc/instructions.py: the executor (`_fast`, built from
_fast.pyx with the _ops.pxi that setup.py generates from it) was compiled with the same."""

from __future__ import annotations

import re
from pathlib import Path

from pyrunc import _fast, instructions

REPO = Path(__file__).resolve().parent.parent


def test_the_built_executor_has_the_codes_of_ops_py() -> None:
    compiled = _fast.op_codes()
    assert compiled == instructions.codes()
    assert len(set(v for k, v in compiled.items() if k.startswith("OP_"))) == len(
        [k for k in compiled if k.startswith("OP_")]
    ), "two operations share a code"


def test_the_executor_declares_no_code_of_its_own() -> None:
    """_fast.pyx only includes the generated declarations; every OP_/TGT_ name it uses is one
    of instructions.py's."""
    source = (REPO / "pyrunc" / "_fast.pyx").read_text()
    assert 'include "_ops.pxi"' in source
    assert not re.search(r"^\s+(OP|TGT)_[A-Z0-9_]+ = ", source, re.M)
    used = set(re.findall(r"\b((?:OP|TGT)_[A-Z0-9_]+)\b", source))
    assert used <= set(instructions.codes()), used - set(instructions.codes())


def test_pxi_is_what_ops_py_generates() -> None:
    pxi = REPO / "pyrunc" / "_ops.pxi"
    if not pxi.exists():  # a build from the sdist's generated C has none
        return
    assert pxi.read_text() == instructions.pxi()
