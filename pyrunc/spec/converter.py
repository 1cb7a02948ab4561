"""JSON <-> `pyrunc.spec.model`, with the validation the runtime spec demands.

Structuring is cattrs with strict hooks: JSON types are never coerced (no
bool-as-int, no "5"-as-int, no float-as-int), integer widths and string shapes
come from tables keyed by the model's NewTypes, enums from its Literals.
Unknown properties are ignored everywhere, as config.md's Extensibility
section requires.  Rules that involve more than one field live in a second
table applied to the structured model.

Every failure becomes exactly one `ConfigError` whose message is one line,
`<source>: <json.path>: <what>`, naming the first problem found.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from pyrunc.errors import ConfigError
from pyrunc.spec import model as m

__all__ = [
    "load_config",
    "load_config_file",
    "load_process",
    "load_resources",
    "unstructure_config",
]

T = TypeVar("T")
PathPart = str | int


class _Invalid(ValueError):
    """A leaf problem whose message is already user-facing."""


# --- names -------------------------------------------------------------------

# Attribute names whose camelCase spelling is not mechanical.
_JSON_NAME_EXCEPTIONS = {
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
    if attr_name in _JSON_NAME_EXCEPTIONS:
        return _JSON_NAME_EXCEPTIONS[attr_name]
    head, *rest = attr_name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


@functools.cache
def _json_names(cl: type) -> dict[str, str]:
    return {a.name: json_name(a.name) for a in attrs.fields(cl)}


# --- leaf checks ---------------------------------------------------------------


def _show(value: Any) -> str:
    """A short one-line rendering of a JSON value for messages."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, str) and len(value) > 60:
        value = value[:57] + "..."
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value).replace("\n", " ")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _structure_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected string, got {_show(value)}")
    return value


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected boolean, got {_show(value)}")
    return value


def _structure_int(value: Any, _: Any) -> int:
    if not _is_int(value):
        raise _Invalid(f"expected integer, got {_show(value)}")
    return int(value)


# NewType -> (minimum, maximum, what the value must be).
_INT_RANGES: dict[Any, tuple[int, int, str]] = {
    m.Int32: (-(2**31), 2**31 - 1, "expected int32 (-2147483648 to 2147483647)"),
    m.Int64: (-(2**63), 2**63 - 1, "expected int64 (-9223372036854775808 to 9223372036854775807)"),
    m.Uint8: (0, 2**8 - 1, "expected uint8 (0 to 255)"),
    m.Uint16: (0, 2**16 - 1, "expected uint16 (0 to 65535)"),
    m.Uint32: (0, 2**32 - 1, "expected uint32 (0 to 4294967295)"),
    m.Uint64: (0, 2**64 - 1, "expected uint64 (0 to 18446744073709551615)"),
    m.FileMode: (0, 0o777, "expected permission bits (0 to 511)"),
    m.OomScoreAdj: (-1000, 1000, "expected -1000 to 1000"),
    m.IOPriorityLevel: (0, 7, "expected 0 to 7"),
    m.Swappiness: (0, 100, "expected 0 to 100"),
    m.HookTimeout: (1, 2**63 - 1, "must be greater than zero"),
}


def _int_hook(lo: int, hi: int, what: str) -> Callable[[Any, Any], int]:
    def structure(value: Any, _: Any) -> int:
        number = _structure_int(value, None)
        if not lo <= number <= hi:
            raise _Invalid(f"{what}, got {number}")
        return number

    return structure


_SEMVER = (
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(-(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?"
)

# NewType -> (full-match pattern, what the value must be).
_STR_PATTERNS: dict[Any, tuple[str, str]] = {
    m.SemVer: (_SEMVER, "must be a SemVer 2.0.0 version such as 1.3.0"),
    m.AbsPath: (r"/.*", "must be an absolute path"),
    m.CapabilityName: (r"CAP_[A-Z0-9_]+", "must be a capability name such as CAP_CHOWN"),
    m.RlimitType: (r"RLIMIT_[A-Z]+", "must be an rlimit name such as RLIMIT_NOFILE"),
    m.HugePageSize: (r"[1-9][0-9]*[KMG]B", "must be a page size such as 64KB, 2MB or 1GB"),
    m.CPUList: (r"[0-9, -]*", "must be a CPU list such as 0-3,7"),
    m.MemBwSchema: (r"MB:[^\n]*", "must start with MB: and be a single line"),
    m.SchemataLine: (r"[^\n]*", "must be a single line"),
    m.DeviceAccess: (r"[rwm]*", "must be a combination of r, w and m"),
}


def _pattern_hook(pattern: str, what: str) -> Callable[[Any, Any], str]:
    compiled = re.compile(pattern, re.DOTALL)

    def structure(value: Any, _: Any) -> str:
        text = _structure_str(value, None)
        if compiled.fullmatch(text) is None:
            raise _Invalid(f"invalid value {_show(text)} ({what})")
        return text

    return structure


def _literal_hook(literal: Any) -> Callable[[Any, Any], Any]:
    allowed = get_args(literal)
    listing = ", ".join(sorted(allowed))

    def structure(value: Any, _: Any) -> Any:
        text = _structure_str(value, None)
        if text not in allowed:
            raise _Invalid(f"invalid value {_show(text)} (expected one of {listing})")
        return text

    return structure


# --- containers ------------------------------------------------------------------


def _is_homogeneous_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_dict(t: Any) -> bool:
    return get_origin(t) is dict


def _tuple_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
    item_type = get_args(t)[0]
    handler = conv.get_structure_hook(item_type)

    def structure(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise _Invalid(f"expected array, got {_show(value)}")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(handler(item, item_type))
            except (ValueError, TypeError, KeyError, BaseValidationError) as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"index {index}", index, item_type),
                ]
                raise IterableValidationError("invalid array item", [exc], t) from None
        return tuple(items)

    return structure


def _dict_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], dict[str, Any]]:
    value_type = get_args(t)[1]
    raw = value_type is Any
    handler = None if raw else conv.get_structure_hook(value_type)

    def structure(value: Any, _: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Invalid(f"expected object, got {_show(value)}")
        result = {}
        for key, item in value.items():
            try:
                if not isinstance(key, str):
                    raise _Invalid(f"expected string key, got {_show(key)}")
                result[key] = item if handler is None else handler(item, value_type)
            except (ValueError, TypeError, KeyError, BaseValidationError) as exc:
                exc.__notes__ = [
                    *getattr(exc, "__notes__", []),
                    IterableValidationNote(f"key {key!r}", key, value_type),
                ]
                raise IterableValidationError("invalid object member", [exc], t) from None
        return result

    return structure


def _class_structure_hook(conv: cattrs.Converter, cl: type) -> Callable[[Any, Any], Any]:
    names = _json_names(cl)
    generated = make_dict_structure_fn(
        cl, conv, **{a: override(rename=k) for a, k in names.items()}
    )
    # Go-written configs use null for "absent"; treat it so for optional fields.
    nullable = frozenset(names[a.name] for a in attrs.fields(cl) if a.default is not attrs.NOTHING)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, dict):
            raise _Invalid(f"expected object, got {_show(value)}")
        if any(value[k] is None for k in nullable.intersection(value)):
            value = {k: v for k, v in value.items() if not (v is None and k in nullable)}
        return generated(value, cl)

    return structure


# --- unstructuring -------------------------------------------------------------


def _class_unstructure_hook(conv: cattrs.Converter, cl: type) -> Callable[[Any], dict[str, Any]]:
    overrides = {a: override(rename=k) for a, k in _json_names(cl).items()}
    return make_dict_unstructure_fn(cl, conv, _cattrs_omit_if_default=True, **overrides)


def _tuple_unstructure_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any], list[Any]]:
    item_type = get_args(t)[0]
    return lambda value: [conv.unstructure(item, item_type) for item in value]


def _dict_unstructure_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any], dict[str, Any]]:
    value_type = get_args(t)[1]
    return lambda value: {k: conv.unstructure(v, value_type) for k, v in value.items()}


@functools.cache
def _converter() -> cattrs.Converter:
    """Built on first use so importing this module stays cheap."""
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    for newtype, (lo, hi, what) in _INT_RANGES.items():
        conv.register_structure_hook(newtype, _int_hook(lo, hi, what))
    for newtype, (pattern, what) in _STR_PATTERNS.items():
        conv.register_structure_hook(newtype, _pattern_hook(pattern, what))
    conv.register_structure_hook_factory(lambda t: get_origin(t) is Literal, _literal_hook)
    conv.register_structure_hook_factory(
        _is_homogeneous_tuple, functools.partial(_tuple_hook, conv)
    )
    conv.register_structure_hook_factory(_is_dict, functools.partial(_dict_hook, conv))
    conv.register_structure_hook_factory(attrs.has, functools.partial(_class_structure_hook, conv))
    conv.register_unstructure_hook_factory(
        _is_homogeneous_tuple, functools.partial(_tuple_unstructure_hook, conv)
    )
    conv.register_unstructure_hook_factory(
        _is_dict, functools.partial(_dict_unstructure_hook, conv)
    )
    conv.register_unstructure_hook_factory(
        attrs.has, functools.partial(_class_unstructure_hook, conv)
    )
    return conv


# --- rules spanning several fields --------------------------------------------------

Problem = tuple[list[PathPart], str]
_TIME_CLOCKS = ("boottime", "monotonic")


def _check_spec(spec: m.Spec) -> Iterator[Problem]:
    if "" in spec.annotations:
        yield ["annotations", ""], "keys must not be empty"


def _check_process(process: m.Process) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, rlimit in enumerate(process.rlimits):
        if rlimit.type in seen:
            yield ["rlimits", index, "type"], f"duplicate rlimit type {_show(rlimit.type)}"
        seen.add(rlimit.type)


def _check_mount(mount: m.Mount) -> Iterator[Problem]:
    if mount.uid_mappings and not mount.gid_mappings:
        yield ["gidMappings"], "required property missing (uidMappings is set)"
    if mount.gid_mappings and not mount.uid_mappings:
        yield ["uidMappings"], "required property missing (gidMappings is set)"


def _check_linux(linux: m.Linux) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, namespace in enumerate(linux.namespaces):
        if namespace.type in seen:
            yield ["namespaces", index, "type"], f"duplicate namespace type {_show(namespace.type)}"
        seen.add(namespace.type)
    for clock in linux.time_offsets:
        if clock not in _TIME_CLOCKS:
            yield (
                ["timeOffsets", clock],
                f"invalid clock {_show(clock)} (expected one of {', '.join(_TIME_CLOCKS)})",
            )


def _check_device(device: m.LinuxDevice) -> Iterator[Problem]:
    if device.type != "p":
        for name, number in (("major", device.major), ("minor", device.minor)):
            if number is None:
                yield [name], f"required property missing (type is {_show(device.type)})"


def _check_weight_device(device: m.LinuxWeightDevice) -> Iterator[Problem]:
    if device.weight is None and device.leaf_weight is None:
        yield [], "at least one of weight or leafWeight is required"


def _check_rdma(rdma: m.LinuxRdma) -> Iterator[Problem]:
    if rdma.hca_handles is None and rdma.hca_objects is None:
        yield [], "at least one of hcaHandles or hcaObjects is required"


def _check_seccomp(seccomp: m.LinuxSeccomp) -> Iterator[Problem]:
    if seccomp.listener_metadata is not None and seccomp.listener_path is None:
        yield ["listenerMetadata"], "must not be set without listenerPath"


def _check_syscall(syscall: m.LinuxSyscall) -> Iterator[Problem]:
    if not syscall.names:
        yield ["names"], "must contain at least one entry"


_OBJECT_CHECKS: dict[type, Callable[[Any], Iterator[Problem]]] = {
    m.Spec: _check_spec,
    m.Process: _check_process,
    m.Mount: _check_mount,
    m.Linux: _check_linux,
    m.LinuxDevice: _check_device,
    m.LinuxWeightDevice: _check_weight_device,
    m.LinuxRdma: _check_rdma,
    m.LinuxSeccomp: _check_seccomp,
    m.LinuxSyscall: _check_syscall,
}


def _find_problem(obj: Any, path: list[PathPart]) -> Problem | None:
    """The first cross-field problem in `obj` or below, in document order."""
    check = _OBJECT_CHECKS.get(type(obj))
    if check is not None:
        for rel, message in check(obj):
            return [*path, *rel], message
    for name, key in _json_names(type(obj)).items():
        value = getattr(obj, name)
        children: Any = ()
        if attrs.has(type(value)):
            children = [(key, value)]
        elif isinstance(value, tuple):
            children = [((key, i), v) for i, v in enumerate(value) if attrs.has(type(v))]
        elif isinstance(value, dict):
            children = [((key, k), v) for k, v in value.items() if attrs.has(type(v))]
        for where, child in children:
            problem = _find_problem(
                child, [*path, *((where,) if isinstance(where, str) else where)]
            )
            if problem is not None:
                return problem
    return None


# --- error reporting ---------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def _format_path(parts: list[PathPart]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part, ensure_ascii=False)}]"
    return out


def _first_error(exc: BaseException, path: list[PathPart]) -> Problem:
    """Descend a cattrs exception tree to its first leaf, collecting the JSON path."""
    if isinstance(exc, (ClassValidationError, IterableValidationError)):
        with_notes, without = exc.group_exceptions()
        if with_notes:
            sub, note = with_notes[0]
            if isinstance(note, AttributeValidationNote):
                part: PathPart = _json_names(exc.cl).get(note.name, note.name)
            else:
                part = note.index
            return _first_error(sub, [*path, part])
        if without:
            return _first_error(without[0], path)
        return path, "invalid value"
    if isinstance(exc, _Invalid):
        return path, str(exc)
    if isinstance(exc, KeyError):
        return path, "required property missing"
    return path, f"invalid value ({exc})".replace("\n", " ")


def _error(source: str, path: list[PathPart], message: str) -> ConfigError:
    where = _format_path(path)
    return ConfigError(f"{source}: {where}: {message}" if where else f"{source}: {message}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(data: bytes | bytearray | str, source: str) -> Any:
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ConfigError(f"{source}: invalid JSON: {reason}".replace("\n", " ")) from None


def _load(data: Any, cl: type[T], source: str) -> T:
    document = _parse(data, source) if isinstance(data, (bytes, bytearray, str)) else data
    conv = _converter()
    try:
        value = conv.structure(document, cl)
    except (ClassValidationError, IterableValidationError, _Invalid) as exc:
        raise _error(source, *_first_error(exc, [])) from None
    problem = _find_problem(value, [])
    if problem is not None:
        raise _error(source, *problem)
    return value


# --- public API ------------------------------------------------------------------------


def load_config(data: bytes | str | dict[str, Any], source: str = "config.json") -> m.Spec:
    """Parse, structure and validate a config.json document."""
    return _load(data, m.Spec, source)


def load_config_file(path: str | os.PathLike[str]) -> m.Spec:
    """`load_config` on a file; messages are prefixed with the file's basename."""
    name = os.fspath(path)
    source = os.path.basename(name) or name
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read {name}: {exc.strerror or exc}") from None
    return load_config(data, source)


def load_resources(
    data: bytes | str | dict[str, Any], source: str = "resources.json"
) -> m.LinuxResources:
    """A standalone LinuxResources document, as `update --resources` reads."""
    return _load(data, m.LinuxResources, source)


def load_process(data: bytes | str | dict[str, Any], source: str = "process.json") -> m.Process:
    """A standalone Process document, as `exec --process` reads."""
    return _load(data, m.Process, source)


def unstructure_config(spec: Any) -> dict[str, Any]:
    """The JSON form of a `Spec` (or any model object): camelCase, absent fields omitted."""
    return _converter().unstructure(spec)
