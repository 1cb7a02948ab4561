"""What the generated loaders of `pyrunc.spec.compiled` call: leaf checks, containers, errors.

Hand-written, so that pyrunc/spec/codegen.py only generates what differs per class (the
classes, one loader each, the cross-field walk). Messages are the cattrs converter's, word for
word: tests/test_spec_compiled.py compares the two loaders.
"""

from __future__ import annotations

from pyrunc.spec import rules

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~2 ms to import; annotations are never evaluated here
    from typing import Any

_show = rules.show
set_field = object.__setattr__
MISSING = object()  # a required property's absence (None is JSON null)
# A JSON path as a chain of (parent, key) pairs, flattened only when an error is reported.
Path = tuple


class Bad(Exception):
    """The first structural problem: where (a `Path`) and what."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message


def parts(path: Path) -> list[str | int]:
    out: list[str | int] = []
    while path:
        path, key = path
        out.append(key)
    out.reverse()
    return out


class Value:
    """Immutable, compared and hashed by value, like the attrs classes it replaces."""

    __slots__: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, a) for a in self.__slots__))

    def __repr__(self) -> str:
        fields = ", ".join(f"{a}={getattr(self, a)!r}" for a in self.__slots__)
        return f"{type(self).__name__}({fields})"


# --- leaves ------------------------------------------------------------------------


def string(x: Any, p: Path) -> str:
    if isinstance(x, str):
        if "\0" in x or not x.isascii():
            problem = rules.string_problem(x)
            if problem is not None:
                raise Bad(p, problem)
        return x
    raise Bad(p, "expected string, got " + _show(x))


def boolean(x: Any, p: Path) -> bool:
    if isinstance(x, bool):
        return x
    raise Bad(p, "expected boolean, got " + _show(x))


def integer(x: Any, p: Path) -> int:
    if isinstance(x, int) and not isinstance(x, bool):
        return int(x)
    raise Bad(p, "expected integer, got " + _show(x))


def ranged(name: str) -> Any:
    lo, hi, what = rules.INT_RANGES[name]

    def check(x: Any, p: Path) -> int:
        number = integer(x, p)
        if lo <= number <= hi:
            return number
        raise Bad(p, f"{what}, got {number}")

    return check


def patterned(name: str) -> Any:
    what = rules.STR_PATTERNS[name][1]
    match = rules.pattern_checker(name)

    def check(x: Any, p: Path) -> str:
        text = string(x, p)
        if not match(text):
            raise Bad(p, f"invalid value {_show(text)} ({what})")
        return text

    return check


def literal(*allowed: str) -> Any:
    members = frozenset(allowed)
    listing = rules.literal_listing(allowed)

    def check(x: Any, p: Path) -> str:
        text = string(x, p)
        if text in members:
            return text
        raise Bad(p, f"invalid value {_show(text)} (expected one of {listing})")

    return check


def array(x: Any, p: Path, item: Any) -> tuple[Any, ...]:
    if not isinstance(x, (list, tuple)):
        raise Bad(p, "expected array, got " + _show(x))
    return tuple([item(v, (p, i)) for i, v in enumerate(x)])


def mapping(x: Any, p: Path, item: Any) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise Bad(p, "expected object, got " + _show(x))
    out = {}
    for k, v in x.items():
        if not isinstance(k, str):
            raise Bad((p, k), "expected string key, got " + _show(k))
        if "\0" in k or not k.isascii():
            problem = rules.string_problem(k)
            if problem is not None:
                raise Bad((p, k), "key: " + problem)
        out[k] = v if item is None else item(v, (p, k))
    return out


def obj(x: Any, p: Path) -> dict[str, Any]:
    if isinstance(x, dict):
        return x
    raise Bad(p, "expected object, got " + _show(x))


def problem(o: Any, p: Path, name: str) -> tuple[list[str | int], str] | None:
    found = rules.first_problem(o, rules.OBJECT_CHECKS[name])
    if found is None:
        return None
    return [*parts(p), *found[0]], found[1]
