"""A process that keeps renaming a file, for the races of openat2's scoped lookups.

Any rename anywhere on the host bumps the kernel's global rename_lock; an openat2 with
RESOLVE_IN_ROOT or RESOLVE_BENEATH that walks ".." during one fails with EAGAIN ("the caller
may retry", openat2(2)), as does one during any mount or umount. On a busy host (a CI runner)
this happens by chance; this makes it happen on most lookups.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOOP = """
import os, sys
a, b = sys.argv[1] + "/a", sys.argv[1] + "/b"
open(a, "w").close()
print(flush=True)
while True:
    os.rename(a, b)
    os.rename(b, a)
"""


@contextmanager
def renaming(directory: Path) -> Iterator[None]:
    """While the block runs, a child renames a file in `directory` back and forth."""
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", LOOP, str(directory)],
                            stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"\n"
        time.sleep(0.05)
        assert proc.poll() is None
        yield
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
