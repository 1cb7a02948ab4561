"""The config.json rules both loaders share: names, leaf constraints, cross-field checks, messages.

Kept free of attrs and cattrs (and of `re` until a pattern is checked) so that the compiled
loader (`pyrunc.spec.compiled`, what `create`, `run` and `exec` use) imports in well under a
millisecond.  The typed attrs model and its cattrs converter (`pyrunc.spec.converter`) read the
same tables, keyed by the model's NewType and class names, so the two cannot drift apart
silently; tests/test_spec_compiled.py checks that they agree.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections cost ~3 ms to import; annotations stay strings
    from collections.abc import Callable, Iterator
    from typing import Any

PathPart = str | int
Problem = tuple[list[PathPart], str]



# --- names -------------------------------------------------------------------

# Attribute names whose camelCase spelling is not mechanical.
JSON_NAME_EXCEPTIONS = {
    "class_": "class",
    "class_id": "classID",
    "clos_id": "closID",
    "container_id": "containerID",
    "host_id": "hostID",
    "block_io": "blockIO",
    "kernel_tcp": "kernelTCP",
    "disable_oom_killer": "disableOOMKiller",
    "exec_cpu_affinity": "execCPUAffinity",
    "throttle_read_iops_device": "throttleReadIOPSDevice",
    "throttle_write_iops_device": "throttleWriteIOPSDevice",
}


def json_name(attr_name: str) -> str:
    """The JSON property name for a model attribute name."""
    if attr_name in JSON_NAME_EXCEPTIONS:
        return JSON_NAME_EXCEPTIONS[attr_name]
    head, *rest = attr_name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


# --- leaf constraints ------------------------------------------------------------


def show(value: Any) -> str:
    """A short one-line rendering of a JSON value for messages."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, str) and len(value) > 60:
        value = value[:57] + "..."
    import json  # only on the way to an error message

    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value).replace("\n", " ")


# NewType name -> (minimum, maximum, what the value must be).
INT_RANGES: dict[str, tuple[int, int, str]] = {
    "Int32": (-(2**31), 2**31 - 1, "expected int32 (-2147483648 to 2147483647)"),
    "Int64": (-(2**63), 2**63 - 1, "expected int64 (-9223372036854775808 to 9223372036854775807)"),
    "Uint8": (0, 2**8 - 1, "expected uint8 (0 to 255)"),
    "Uint16": (0, 2**16 - 1, "expected uint16 (0 to 65535)"),
    "Uint32": (0, 2**32 - 1, "expected uint32 (0 to 4294967295)"),
    "Uint64": (0, 2**64 - 1, "expected uint64 (0 to 18446744073709551615)"),
    "FileMode": (0, 0o777, "expected permission bits (0 to 511)"),
    "OomScoreAdj": (-1000, 1000, "expected -1000 to 1000"),
    "IOPriorityLevel": (0, 7, "expected 0 to 7"),
    "Swappiness": (0, 100, "expected 0 to 100"),
    "HookTimeout": (1, 2**63 - 1, "must be greater than zero"),
}

_SEMVER = (
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?"
)

# NewType name -> (full-match pattern, what the value must be).
STR_PATTERNS: dict[str, tuple[str, str]] = {
    "SemVer": (_SEMVER, "must be a SemVer 2.0.0 version such as 1.3.0"),
    "AbsPath": (r"/.*", "must be an absolute path"),
    "CapabilityName": (r"CAP_[A-Z0-9_]+", "must be a capability name such as CAP_CHOWN"),
    "RlimitType": (r"RLIMIT_[A-Z]+", "must be an rlimit name such as RLIMIT_NOFILE"),
    "HugePageSize": (r"[1-9][0-9]*[KMG]B", "must be a page size such as 64KB, 2MB or 1GB"),
    "CPUList": (r"[0-9, -]*", "must be a CPU list such as 0-3,7"),
    "MemBwSchema": (r"MB:[^\n]*", "must start with MB: and be a single line"),
    "SchemataLine": (r"[^\n]*", "must be a single line"),
    "DeviceAccess": (r"[rwm]*", "must be a combination of r, w and m"),
}


def string_problem(text: str) -> str | None:
    """What makes `text` unusable for the kernel or for UTF-8 (paths, argv, env, names: the
    kernel ends a C string at a NUL; a lone surrogate has no UTF-8 encoding), or None."""
    if "\0" in text:
        return f"invalid string {show(text)}: contains a NUL byte"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            shown = show(text.encode("utf-8", "backslashreplace").decode())
            return f"invalid string {shown}: not valid Unicode (a lone surrogate)"
    return None


def pattern_checker(name: str) -> Callable[[str], bool]:
    """A full-match test for STR_PATTERNS[name], written out without `re` (importing it costs
    ~4 ms of every create); tests check each against the regular expression."""
    return _MATCHERS[name]


_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_IDENT = _DIGITS | _UPPER | frozenset("abcdefghijklmnopqrstuvwxyz-")  # [0-9a-zA-Z-]


def _numeric(word: str) -> bool:
    """0|[1-9][0-9]*"""
    return bool(word) and set(word) <= _DIGITS and (word == "0" or word[0] != "0")


def _semver(text: str) -> bool:
    core, plus, build = text.partition("+")
    if plus and not all(word and set(word) <= _IDENT for word in build.split(".")):
        return False
    core, dash, pre = core.partition("-")
    numbers = core.split(".")
    if len(numbers) != 3 or not all(_numeric(n) for n in numbers):
        return False
    if dash:
        for word in pre.split("."):
            if not word or not set(word) <= _IDENT:
                return False
            if set(word) <= _DIGITS and not _numeric(word):
                return False
    return True


def _prefixed(prefix: str, chars: frozenset[str]) -> Callable[[str], bool]:
    def match(text: str) -> bool:
        rest = text[len(prefix) :]
        return text.startswith(prefix) and bool(rest) and set(rest) <= chars

    return match


def _page_size(text: str) -> bool:
    """[1-9][0-9]*[KMG]B"""
    number, unit = text[:-2], text[-2:]
    return unit in ("KB", "MB", "GB") and _numeric(number) and number != "0"


_CPU_LIST = frozenset("0123456789, -")
_ACCESS = frozenset("rwm")

_MATCHERS: dict[str, Callable[[str], bool]] = {
    "SemVer": _semver,
    "AbsPath": lambda text: text.startswith("/"),
    "CapabilityName": _prefixed("CAP_", _UPPER | _DIGITS | {"_"}),
    "RlimitType": _prefixed("RLIMIT_", _UPPER),
    "HugePageSize": _page_size,
    "CPUList": lambda text: set(text) <= _CPU_LIST,
    "MemBwSchema": lambda text: text.startswith("MB:") and "\n" not in text,
    "SchemataLine": lambda text: "\n" not in text,
    "DeviceAccess": lambda text: set(text) <= _ACCESS,
}


def literal_listing(allowed: tuple[str, ...]) -> str:
    return ", ".join(sorted(allowed))


# --- rules spanning several fields --------------------------------------------------

_TIME_CLOCKS = ("boottime", "monotonic")


def _check_spec(spec: Any) -> Iterator[Problem]:
    if "" in spec.annotations:
        yield ["annotations", ""], "keys must not be empty"


def _check_process(process: Any) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, rlimit in enumerate(process.rlimits):
        if rlimit.type in seen:
            yield ["rlimits", index, "type"], f"duplicate rlimit type {show(rlimit.type)}"
        seen.add(rlimit.type)


def _check_mount(mount: Any) -> Iterator[Problem]:
    if mount.uid_mappings and not mount.gid_mappings:
        yield ["gidMappings"], "required property missing (uidMappings is set)"
    if mount.gid_mappings and not mount.uid_mappings:
        yield ["uidMappings"], "required property missing (gidMappings is set)"


def _check_linux(linux: Any) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, namespace in enumerate(linux.namespaces):
        if namespace.type in seen:
            yield ["namespaces", index, "type"], f"duplicate namespace type {show(namespace.type)}"
        seen.add(namespace.type)
    for clock in linux.time_offsets:
        if clock not in _TIME_CLOCKS:
            yield (
                ["timeOffsets", clock],
                f"invalid clock {show(clock)} (expected one of {', '.join(_TIME_CLOCKS)})",
            )


def _check_device(device: Any) -> Iterator[Problem]:
    if device.type != "p":
        for name, number in (("major", device.major), ("minor", device.minor)):
            if number is None:
                yield [name], f"required property missing (type is {show(device.type)})"


def _check_weight_device(device: Any) -> Iterator[Problem]:
    if device.weight is None and device.leaf_weight is None:
        yield [], "at least one of weight or leafWeight is required"


def _check_rdma(rdma: Any) -> Iterator[Problem]:
    if rdma.hca_handles is None and rdma.hca_objects is None:
        yield [], "at least one of hcaHandles or hcaObjects is required"


def _check_seccomp(seccomp: Any) -> Iterator[Problem]:
    if seccomp.listener_metadata is not None and seccomp.listener_path is None:
        yield ["listenerMetadata"], "must not be set without listenerPath"


def _check_syscall(syscall: Any) -> Iterator[Problem]:
    if not syscall.names:
        yield ["names"], "must contain at least one entry"


# model class name -> its cross-field rule (run after structuring, in document order)
OBJECT_CHECKS: dict[str, Callable[[Any], Iterator[Problem]]] = {
    "Spec": _check_spec,
    "Process": _check_process,
    "Mount": _check_mount,
    "Linux": _check_linux,
    "LinuxDevice": _check_device,
    "LinuxWeightDevice": _check_weight_device,
    "LinuxRdma": _check_rdma,
    "LinuxSeccomp": _check_seccomp,
    "LinuxSyscall": _check_syscall,
}


def first_problem(obj: Any, check: Callable[[Any], Iterator[Problem]]) -> Problem | None:
    for problem in check(obj):
        return problem
    return None


# --- messages and parsing --------------------------------------------------------------


def _is_identifier(part: str) -> bool:
    if not part or not (part[0].isascii() and (part[0].isalpha() or part[0] == "_")):
        return False
    return all(c.isascii() and (c.isalnum() or c in "_-") for c in part[1:])


def format_path(parts: list[PathPart]) -> str:
    """`linux.resources.devices[0].access`, with non-identifier keys quoted."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_identifier(part):
            out += f".{part}" if out else part
        else:
            import json

            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def error(source: str, path: list[PathPart], message: str) -> ConfigError:
    where = format_path(path)
    return ConfigError(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def read_document(path: str | os.PathLike[str]) -> tuple[bytes, str]:
    """A document's bytes and the name its messages start with (the file's basename)."""
    name = os.fspath(path)
    source = os.path.basename(name) or name
    try:
        with open(name, "rb") as f:
            return f.read(), source
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {name}: {exc.strerror or exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse(data: bytes | bytearray | str, source: str) -> Any:
    from pyrunc import jsonlite  # json.loads' results and errors, without importing re

    try:
        return jsonlite.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ConfigError(f"{source}: invalid JSON: {reason}".replace("\n", " ")) from None
