"""JSON for the hot commands without the `json` package, whose decoder and encoder import `re`
(and with it enum, functools, collections...: ~4 ms before `state` prints anything).

The work is done by the C accelerator `_json` that `json` itself uses, so results are the same:
`loads` is json.loads, `dumps` is json.dumps byte for byte (ensure_ascii, insertion order) for
dicts, lists, tuples, str, int, float, bool and None. Anything else, and every error, is handed to
the `json` module, so callers see exactly its results and exceptions (JSONDecodeError messages
included: `_json` cannot raise them itself until json.decoder is imported).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

try:
    import _json
except ImportError:  # another interpreter: the json package does everything
    _json = None  # type: ignore[assignment]  # typeshed has _json on every interpreter

# json.decoder's _CONSTANTS, for the parse_constant hook
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
_WS = " \t\n\r"  # JSON whitespace (json.decoder's WHITESPACE)
_INF = float("inf")


class _Context:
    """What `_json.make_scanner` reads from json.decoder.JSONDecoder, with its defaults."""

    __slots__ = (
        "strict",
        "object_hook",
        "object_pairs_hook",
        "parse_float",
        "parse_int",
        "parse_constant",
        "memo",
    )

    def __init__(self, parse_constant: Callable[[str], object] | None = None) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = parse_constant or _CONSTANTS.__getitem__
        self.memo: dict = {}


class _Constant(Exception):
    """NaN or Infinity where the caller refuses them: json.loads reports it through its hook."""


def _refuse_constant(name: str) -> object:
    raise _Constant(name)


# typeshed's make_scanner takes a make_scanner: the C code only reads a context's attributes
# (json.decoder passes a JSONDecoder), hence the ignores
_scan_once = _json.make_scanner(_Context()) if _json is not None else None  # type: ignore[arg-type]
# for loads(..., parse_constant=f): the scan stops at a constant and json.loads calls f
_scan_strict = (
    _json.make_scanner(_Context(_refuse_constant))  # type: ignore[arg-type]
    if _json is not None
    else None
)


def _decode(s: str | bytes | bytearray) -> str | None:
    """`s` as text when json.loads would decode it as UTF-8 (no BOM, no UTF-16/32), else None."""
    if isinstance(s, str):
        return None if s.startswith("\ufeff") else s
    if not isinstance(s, (bytes, bytearray)) or 0 in s[:2]:
        return None  # json.detect_encoding finds UTF-16/32 from NUL bytes among the first ones
    if s.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return None  # a BOM
    return s.decode("utf-8", "surrogatepass")


def loads(
    s: str | bytes | bytearray, parse_constant: Callable[[str], object] | None = None
) -> object:
    """json.loads(s, parse_constant=...): the same value, or the same exception (raised by json
    itself). With `parse_constant`, NaN and Infinity are left to json.loads and that hook."""
    scan = _scan_once if parse_constant is None else _scan_strict
    if scan is not None:
        try:
            text = _decode(s)
            if text is not None:
                end = len(text)
                start = end - len(text.lstrip(_WS))
                obj, stop = scan(text, start)
                if not text[stop:].strip(_WS):
                    return obj
        except Exception:
            pass  # malformed: json.loads raises the error callers expect
    import json

    return json.loads(s, parse_constant=parse_constant)


class _Unsupported(Exception):
    """A value json.dumps would hand to `default` (or reject): json.dumps takes over."""


def _unsupported(o: object) -> object:
    raise _Unsupported


def dumps(
    obj: object, indent: int | str | None = None, separators: tuple[str, str] | None = None
) -> str:
    """json.dumps(obj, indent=indent, separators=separators), the same text."""
    if _json is not None:
        if separators is not None:
            item_sep, key_sep = separators
        else:
            item_sep, key_sep = (", " if indent is None else ","), ": "
        try:
            if indent is None:
                # json.dumps' own path: the C encoder (it ignores indent in 3.11, hence below)
                encode = _json.make_encoder(
                    {},
                    _unsupported,
                    _json.encode_basestring_ascii,
                    None,
                    key_sep,
                    item_sep,
                    False,
                    False,
                    True,
                )
                return "".join(encode(obj, 0))
            if not isinstance(indent, str):
                indent = " " * indent
            out: list[str] = []
            _indented(obj, out, indent, item_sep, key_sep, "\n", set())
            return "".join(out)
        except (_Unsupported, RecursionError, TypeError, ValueError):
            pass  # let json raise (or call it again) exactly as it does
    import json

    return json.dumps(obj, indent=indent, separators=separators)


def _scalar(o: object) -> str | None:
    """The JSON text of a scalar as json.encoder writes it, None for containers."""
    if isinstance(o, str):
        return _json.encode_basestring_ascii(o)
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        if o != o or o in (_INF, -_INF):
            raise _Unsupported  # NaN, Infinity: rare, json spells them
        return float.__repr__(o)
    return None


def _indented(
    o: object, out: list[str], indent: str, item_sep: str, key_sep: str, nl: str, seen: set
) -> None:
    """json.encoder._make_iterencode with an indent, for the types jsonlite supports.

    `nl` is the newline plus the current indentation; `seen` holds the containers being written
    (a circular one makes json raise its own ValueError)."""
    text = _scalar(o)
    if text is not None:
        out.append(text)
        return
    if isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        opening, closing, items = "{", "}", o.items()
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        opening, closing, items = "[", "]", None
    else:
        raise _Unsupported
    if id(o) in seen:
        raise _Unsupported
    seen.add(id(o))
    inner = nl + indent
    sep = item_sep + inner
    out.append(opening + inner)
    if items is None:
        for i, value in enumerate(o):
            if i:
                out.append(sep)
            _indented(value, out, indent, item_sep, key_sep, inner, seen)
    else:
        for i, (key, value) in enumerate(items):
            if not isinstance(key, str):
                raise _Unsupported  # json converts int, float, bool, None keys
            if i:
                out.append(sep)
            out.append(_json.encode_basestring_ascii(key) + key_sep)
            _indented(value, out, indent, item_sep, key_sep, inner, seen)
    out.append(nl + closing)
    seen.discard(id(o))
