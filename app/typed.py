"""Typing a plain dict (YAML) into frozen dataclasses: the engine behind :mod:`app.config`.

Each leaf is checked against its annotation (``int``, ``float``, ``bool``, ``str``, ``Literal``, tuples,
dicts, unions with None), converted only where lossless (``2e6`` -> 2000000), and against the range in its
field's metadata (``low``/``high``, ``low_open``/``high_open``); a dataclass may report further problems
through ``problems()``. Every failure is one :class:`~app.errors.ConfigError` line naming the source (a file
or the command line), the dotted key and what is valid.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin, get_type_hints

from app.errors import ConfigError


def build(
    cls: type,
    data: Any,
    prefix: str,
    source: str,
    section_types: dict[str, type] | None = None,
    key_hint: Callable[[str, str], str | None] | None = None,
) -> Any:
    """``cls`` built from ``data`` (a mapping), each field typed and checked; ``prefix`` is the dotted path of
    this section (``algo.``), ``source`` where the data came from. ``section_types`` replaces a field's
    annotation (the ``algo`` section's type comes from the algorithm registry). ``key_hint(prefix, key)``
    may explain an unknown key (a key that moved to another section)."""
    section = prefix.rstrip(".") or "the configuration"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {section}: must be a mapping, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            moved = key_hint(prefix, str(key)) if key_hint else None
            hint = f" ({moved})" if moved else hint
            raise ConfigError(
                f"{source}: unknown key '{prefix}{key}'{hint}; valid keys in {section}: {', '.join(fields)}"
            )
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        tp = (section_types or {}).get(name, hints[name])
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, data[name], f"{key}.", source, key_hint=key_hint)
        else:
            value = coerce(data[name], tp, key, source)
            check_range(value, f.metadata, key, source)
            kwargs[name] = value
    if section_types and "algo" in section_types and "algo" not in kwargs:
        kwargs["algo"] = section_types["algo"]()
    built = cls(**kwargs)
    for key, problem in getattr(built, "problems", lambda: [])():
        raise ConfigError(f"{source}: {prefix}{key}: {problem}")
    return built


def type_name(tp: Any) -> str:
    """How an annotation reads in an error: ``an integer``, ``one of a, b``, ``a list of numbers``."""
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is bool:
        return "true or false"
    if tp is str:
        return "a string"
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(str(c) for c in get_args(tp))
    if origin is tuple:
        return f"a list of {type_name(get_args(tp)[0])}s"
    if origin is dict:
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else type_name(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert only where lossless."""

    def fail(extra: str = "") -> ConfigError:
        return ConfigError(f"{source}: {key}: must be {type_name(tp)}, got {value!r}{extra}")

    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key, source)
            except ConfigError:
                pass
        raise fail()
    if origin is Literal:
        choices = get_args(tp)
        if value in choices:
            return value
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        raise fail(f" (did you mean {close[0]!r}?)" if close else "")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if tp is int:
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int):
            return value
        number = as_number(value)
        if number is not None and math.isfinite(number) and float(number).is_integer():
            return int(number)
        raise fail()
    if tp is float:
        if isinstance(value, bool):
            raise fail()
        number = value if isinstance(value, int | float) else as_number(value)
        if number is None:
            raise fail()
        if not math.isfinite(number):
            raise fail(" (must be finite)")
        return float(number)
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail()
    if origin is tuple:
        if not isinstance(value, list | tuple) or not value:
            raise fail()
        (item_tp, *_rest) = get_args(tp)
        return tuple(coerce(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise fail()
        return copy.deepcopy(value)
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")


def as_number(value: Any) -> float | None:
    """Parse numbers YAML leaves as strings (``2e6``, ``1e-3``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return None
    return None


def check_range(value: Any, meta: typing.Mapping[str, Any], key: str, source: str) -> None:
    if isinstance(value, tuple):
        for i, item in enumerate(value):
            check_range(item, meta, f"{key}[{i}]", source)
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    low, high = meta.get("low"), meta.get("high")
    low_open, high_open = meta.get("low_open", False), meta.get("high_open", False)
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'(' if low_open else '['}{low}"
        hi = "" if high is None else f"{high}{')' if high_open else ']'}"
        if low is not None and high is not None:
            valid = f"in {lo}, {hi}"
        elif low is not None:
            valid = f"{'>' if low_open else '>='} {low}"
        else:
            valid = f"{'<' if high_open else '<='} {high}"
        raise ConfigError(f"{source}: {key}: must be {valid}, got {value}")
