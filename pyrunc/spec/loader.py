"""Load config.json (and the process and resources documents) into `pyrunc.spec.compiled` values.

What the runtime uses: the same checks and messages as `pyrunc.spec.converter`, without
importing attrs or cattrs (see pyrunc/spec/codegen.py for why).  Every failure is one
`ConfigError`, `<source>: <json.path>: <what>`, naming the first problem in document order.
"""

from __future__ import annotations

import os

from pyrunc.spec import compiled, rules, structuring

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~2 ms to import; annotations are never evaluated here
    from typing import Any

    from pyrunc.spec.compiled import LinuxResources, Process, Spec

__all__ = ["load_config", "load_config_file", "load_process", "load_resources"]


def _load(data: Any, name: str, source: str) -> Any:
    document = rules.parse(data, source) if isinstance(data, (bytes, bytearray, str)) else data
    try:
        value = compiled.LOADERS[name](document, ())
    except structuring.Bad as exc:
        raise rules.error(source, structuring.parts(exc.path), exc.message) from None
    check = compiled.CHECKS.get(name)
    problem = check(value, ()) if check is not None else None
    if problem is not None:
        raise rules.error(source, *problem)
    return value


def load_config(data: bytes | str | dict[str, Any], source: str = "config.json") -> Spec:
    """Parse, structure and validate a config.json document."""
    return _load(data, "Spec", source)


def load_config_file(path: str | os.PathLike[str]) -> Spec:
    """`load_config` on a file; messages are prefixed with the file's basename."""
    data, source = rules.read_document(path)
    return load_config(data, source)


def load_resources(
    data: bytes | str | dict[str, Any], source: str = "resources.json"
) -> LinuxResources:
    """A standalone LinuxResources document, as `update --resources` reads."""
    return _load(data, "LinuxResources", source)


def load_process(data: bytes | str | dict[str, Any], source: str = "process.json") -> Process:
    """A standalone Process document, as `exec --process` reads."""
    return _load(data, "Process", source)
