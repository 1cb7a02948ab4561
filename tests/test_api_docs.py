"""docs/api.md's examples, each run as written in a fresh interpreter: a ```python block, then
the ```text block after it (when there is one) is the output it must print.

BUNDLE (a busybox bundle whose rootfs others may read, for the sandbox's unprivileged root),
ROOTFS and ROOT (an empty state root) are defined first, as the document says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO

DOC = REPO / "docs" / "api.md"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def examples() -> list[tuple[str, str | None]]:
    blocks = BLOCK.findall(DOC.read_text())
    out: list[tuple[str, str | None]] = []
    for i, (kind, body) in enumerate(blocks):
        if kind == "python":
            after = blocks[i + 1] if i + 1 < len(blocks) else None
            out.append((body, after[1] if after and after[0] == "text" else None))
    return out


@pytest.fixture(scope="module")
def readable_bundle(busybox_bundle: Path) -> Iterator[str]:
    parent = tempfile.mkdtemp(prefix="pkg-apidocs-")
    os.chmod(parent, 0o755)
    subprocess.run(["cp", "-a", str(busybox_bundle), f"{parent}/bundle"], check=True)
    yield f"{parent}/bundle"
    shutil.rmtree(parent)


@pytest.mark.parametrize("index", range(len(examples())))
def test_example(index: int, readable_bundle: str, root: Path, tmp_path: Path) -> None:
    code, expected = examples()[index]
    script = tmp_path / "example.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        f"BUNDLE = {readable_bundle!r}; ROOTFS = BUNDLE + '/rootfs'; ROOT = {str(root)!r}\n"
        + code
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    if expected is not None:
        assert proc.stdout == expected, proc.stdout
    assert os.listdir(root) == []  # every example cleans up after itself
