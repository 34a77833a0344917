"""Argument checks at the library's public entry points.

A misuse of the API (``assess_pair(None, d)``, ``parse_hla_typing(42)``) raises
a :class:`TypeError` whose message names the argument and the expected type, or
a :class:`~kirmatch.errors.KirmatchError` for a bad value - never an
``AttributeError`` from deep inside.

>>> check_type("text", 42, str)
Traceback (most recent call last):
...
TypeError: text must be str, not int (42)
>>> check_type("options", None, dict, none_ok=True) is None
True
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_type", "type_name"]


def type_name(tp: type | tuple[type, ...]) -> str:
    """``str``, or ``str or HLAGenotype`` for a tuple of types."""
    if isinstance(tp, tuple):
        return " or ".join(t.__name__ for t in tp)
    return tp.__name__


def check_type(name: str, value: Any, tp: type | tuple[type, ...], *,
               none_ok: bool = False) -> Any:
    """Return ``value`` if it is an instance of ``tp`` (or ``None`` with
    ``none_ok``); otherwise raise a :class:`TypeError` naming ``name``.

    Booleans are not accepted where numbers are expected.
    """
    if value is None and none_ok:
        return value
    ok = isinstance(value, tp)
    if ok and isinstance(value, bool):
        wanted = tp if isinstance(tp, tuple) else (tp,)
        ok = bool in wanted or any(t is object for t in wanted)
    if not ok:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise TypeError(f"{name} must be {type_name(tp)}"
                        f"{' or None' if none_ok else ''}, not {type(value).__name__} "
                        f"({shown})")
    return value
