"""Argument checks at the library's public entry points.

A misuse of the API (``assess_pair(None, d)``, ``parse_hla_typing(42)``) raises
a :class:`TypeError` whose message names the argument and the expected type, or
a :class:`~kirmatch.errors.KirmatchError` for a bad value - never an
``AttributeError`` from deep inside. The checks run once at the public
boundary; internal helpers trust their callers.

>>> check_type("text", 42, str)
Traceback (most recent call last):
...
TypeError: text must be str, not int (42)
>>> check_type("options", None, dict, none_ok=True) is None
True
>>> check_sequence("hla", ["A*02:01", 7], str)
Traceback (most recent call last):
...
TypeError: hla[1] must be str, not int (7)
>>> check_sequence("command", "kirmatch batch", str)
Traceback (most recent call last):
...
TypeError: command must be a sequence (list or tuple) of str, not str ('kirmatch batch')
>>> check_number("dsa_high_mfi", float("inf"), minimum=0)
Traceback (most recent call last):
...
kirmatch.errors.UsageError: dsa_high_mfi must be a finite number, not inf
>>> check_path("path", "")
Traceback (most recent call last):
...
kirmatch.errors.UsageError: path is empty: give a file name
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from kirmatch.errors import UsageError

__all__ = [
    "check_mapping",
    "check_number",
    "check_path",
    "check_sequence",
    "check_type",
    "is_nan",
    "type_error",
    "type_name",
]


def type_name(tp: type | tuple[type, ...]) -> str:
    """``str``, or ``str or HLAGenotype`` for a tuple of types."""
    if isinstance(tp, tuple):
        return " or ".join(t.__name__ for t in tp)
    return tp.__name__


def type_error(name: str, value: Any, expected: str) -> TypeError:
    """The :class:`TypeError` of a misuse: ``<name> must be <expected>, not <type> (<repr>)``."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return TypeError(f"{name} must be {expected}, not {type(value).__name__} ({shown})")


def check_type(name: str, value: Any, tp: type | tuple[type, ...], *,
               none_ok: bool = False, expected: str | None = None) -> Any:
    """Return ``value`` if it is an instance of ``tp`` (or ``None`` with
    ``none_ok``); otherwise raise a :class:`TypeError` naming ``name``.

    Booleans are not accepted where numbers are expected. ``expected`` replaces
    the generated type name in the message (e.g. ``"str or a number"``).

    Raises
    ------
    TypeError
        ``value`` has another type.
    """
    if value is None and none_ok:
        return value
    ok = isinstance(value, tp)
    if ok and isinstance(value, bool):
        wanted = tp if isinstance(tp, tuple) else (tp,)
        ok = bool in wanted or any(t is object for t in wanted)
    if not ok:
        what = expected or type_name(tp)
        raise type_error(name, value, f"{what}{' or None' if none_ok else ''}")
    return value


def check_sequence(name: str, value: Any, item_tp: type | tuple[type, ...], *,
                   none_ok: bool = False, iterable: bool = False,
                   item_none_ok: bool = False) -> tuple[Any, ...] | None:
    """Return ``value`` as a tuple after checking that it is a sequence (list,
    tuple; with ``iterable`` any iterable) - never a string, bytes or a mapping -
    whose items are all ``item_tp``. Item errors name ``name[i]``.

    Raises
    ------
    TypeError
        ``value`` is not such a sequence, or an item has another type.
    """
    if value is None and none_ok:
        return None
    kind = Iterable if iterable else Sequence
    if not isinstance(value, kind) or isinstance(value, (str, bytes, bytearray, Mapping)):
        what = "an iterable" if iterable else "a sequence (list or tuple)"
        raise type_error(name, value, f"{what} of {type_name(item_tp)}"
                         f"{' or None' if none_ok else ''}")
    items = tuple(value)
    for i, item in enumerate(items):
        check_type(f"{name}[{i}]", item, item_tp, none_ok=item_none_ok)
    return items


def check_mapping(name: str, value: Any, *, none_ok: bool = False) -> Mapping[str, Any] | None:
    """Return ``value`` if it is a mapping with string keys.

    Raises
    ------
    TypeError
        ``value`` is not a mapping, or a key is not a string.
    """
    if value is None and none_ok:
        return None
    check_type(name, value, Mapping, expected="a mapping (dict)", none_ok=none_ok)
    for key in value:
        if not isinstance(key, str):
            raise type_error(f"{name} key", key, "str")
    return value  # type: ignore[no-any-return]


def check_path(name: str, value: Any, *, none_ok: bool = False) -> Path | None:
    """Return ``value`` as a :class:`~pathlib.Path` (from ``str`` or ``os.PathLike``).

    Raises
    ------
    TypeError
        ``value`` is not a string or path-like object (bytes paths are refused).
    UsageError
        ``value`` is an empty string (which :class:`~pathlib.Path` would read
        as the current directory).
    """
    if value is None and none_ok:
        return None
    check_type(name, value, (str, os.PathLike), none_ok=none_ok,
               expected="str or a path-like object")
    text = os.fspath(value)
    if not isinstance(text, str):
        raise type_error(name, value, "a str path, not a bytes path")
    if not text.strip():
        raise UsageError(f"{name} is empty: give a file name", raw=text)
    return Path(text)


def check_number(name: str, value: Any, *, minimum: float | None = None,
                 maximum: float | None = None) -> float:
    """Return ``value`` as a float after checking that it is a finite real number
    (not a bool) within ``minimum``..``maximum`` (inclusive).

    Raises
    ------
    TypeError
        ``value`` is not a real number (or is a bool).
    UsageError
        ``value`` is NaN, infinite or out of range.
    """
    check_type(name, value, Real, expected="a number")
    x = float(value)
    if not math.isfinite(x):
        raise UsageError(f"{name} must be a finite number, not {value!r}", raw=str(value))
    if (minimum is not None and x < minimum) or (maximum is not None and x > maximum):
        lo = "" if minimum is None else f">= {minimum:g}"
        hi = "" if maximum is None else f"<= {maximum:g}"
        raise UsageError(f"{name} must be {' and '.join(p for p in (lo, hi) if p)}, "
                         f"not {value!r}", raw=str(value))
    return x


def is_nan(value: Any) -> bool:
    """True for a float NaN (pandas' missing value), which typed-text parameters
    read as "not given".

    >>> is_nan(float("nan")), is_nan(None), is_nan("nan")
    (True, False, False)
    """
    return isinstance(value, float) and value != value
