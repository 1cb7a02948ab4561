"""JSON <-> `pyrunc.spec.model`, with the validation the runtime spec demands.

Structuring is cattrs with strict hooks: JSON types are never coerced (no
bool-as-int, no "5"-as-int, no float-as-int), integer widths and string shapes
come from tables keyed by the model's NewTypes, enums from its Literals.
Unknown properties are ignored everywhere, as config.md's Extensibility
section requires.  Rules that involve more than one field live in a second
table applied to the structured model.

Every failure becomes exactly one `ConfigError` whose message is one line,
`<source>: <json.path>: <what>`, naming the first problem found.

This is the library's typed loader and the reference for the runtime's own,
`pyrunc.spec.loader`, which runs code generated from the same model and rules
(`pyrunc.spec.codegen`) so that `create` needs neither attrs nor cattrs.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
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

from pyrunc.spec import model as m
from pyrunc.spec import rules
from pyrunc.spec.rules import PathPart, Problem, json_name
from pyrunc.spec.rules import show as _show

__all__ = [
    "load_config",
    "load_config_file",
    "load_process",
    "load_resources",
    "unstructure_config",
]

T = TypeVar("T")


class _Invalid(ValueError):
    """A leaf problem whose message is already user-facing."""


# --- names -------------------------------------------------------------------


@functools.cache
def _json_names(cl: type) -> dict[str, str]:
    return {a.name: json_name(a.name) for a in attrs.fields(cl)}


# --- leaf checks ---------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _structure_str(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected string, got {_show(value)}")
    problem = rules.string_problem(value)
    if problem is not None:
        raise _Invalid(problem)
    return value


def _structure_bool(value: Any, _: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected boolean, got {_show(value)}")
    return value


def _structure_int(value: Any, _: Any) -> int:
    if not _is_int(value):
        raise _Invalid(f"expected integer, got {_show(value)}")
    return int(value)


def _int_hook(lo: int, hi: int, what: str) -> Callable[[Any, Any], int]:
    def structure(value: Any, _: Any) -> int:
        number = _structure_int(value, None)
        if not lo <= number <= hi:
            raise _Invalid(f"{what}, got {number}")
        return number

    return structure


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
    listing = rules.literal_listing(allowed)

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
                problem = rules.string_problem(key)
                if problem is not None:
                    raise _Invalid("key: " + problem)
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
    # Any: the keys are attribute names, which mypy cannot tell from the keyword parameters
    overrides: dict[str, Any] = {a: override(rename=k) for a, k in names.items()}
    generated: Callable[[Any, Any], Any] = make_dict_structure_fn(cl, conv, **overrides)
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
    overrides: dict[str, Any] = {a: override(rename=k) for a, k in _json_names(cl).items()}
    return make_dict_unstructure_fn(cl, conv, _cattrs_omit_if_default=True, **overrides)


def _tuple_unstructure_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any], list[Any]]:
    item_type = get_args(t)[0]
    return lambda value: [conv.unstructure(item, item_type) for item in value]


def _dict_unstructure_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any], dict[str, Any]]:
    value_type = get_args(t)[1]
    return lambda value: {k: conv.unstructure(v, value_type) for k, v in value.items()}


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


@functools.cache
def _converter() -> cattrs.Converter:
    """Built on first use so importing this module stays cheap."""
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(int, _structure_int)
    for name, (lo, hi, what) in rules.INT_RANGES.items():
        conv.register_structure_hook(getattr(m, name), _int_hook(lo, hi, what))
    for name, (pattern, what) in rules.STR_PATTERNS.items():
        conv.register_structure_hook(getattr(m, name), _pattern_hook(pattern, what))
    conv.register_structure_hook_factory(_is_literal, _literal_hook)
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


# --- rules spanning several fields (the rules themselves are in pyrunc.spec.rules) ---


def _find_problem(obj: Any, path: list[PathPart]) -> Problem | None:
    """The first cross-field problem in `obj` or below, in document order."""
    cl: type = type(obj)
    check = rules.OBJECT_CHECKS.get(cl.__name__)
    if check is not None:
        problem = rules.first_problem(obj, check)
        if problem is not None:
            return [*path, *problem[0]], problem[1]
    for name, key in _json_names(cl).items():
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


def _load(data: Any, cl: type[T], source: str) -> T:
    document = rules.parse(data, source) if isinstance(data, (bytes, bytearray, str)) else data
    conv = _converter()
    try:
        value = conv.structure(document, cl)
    except (ClassValidationError, IterableValidationError, _Invalid) as exc:
        raise rules.error(source, *_first_error(exc, [])) from None
    problem = _find_problem(value, [])
    if problem is not None:
        raise rules.error(source, *problem)
    return value


# --- public API ------------------------------------------------------------------------


def load_config(data: bytes | str | dict[str, Any], source: str = "config.json") -> m.Spec:
    """Parse, structure and validate a config.json document."""
    return _load(data, m.Spec, source)


def load_config_file(path: str | os.PathLike[str]) -> m.Spec:
    """`load_config` on a file; messages are prefixed with the file's basename."""
    data, source = rules.read_document(path)
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
