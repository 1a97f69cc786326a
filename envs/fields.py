"""Typed config fields with help texts and ranges, shared by every config section."""

from __future__ import annotations

import copy
from dataclasses import field
from typing import Any


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Any:
    """A dataclass field with a help text and an optional range [low, high] (open ends with ``*_open``)."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open}
    if isinstance(default, dict):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


__all__ = ["param"]
