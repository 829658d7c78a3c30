"""Checks of user-given numbers (options, overrides, manifest and sidecar values): type, finiteness, range.

Each raises ``ValueError`` naming the value, what it must be and what it got, because these values come from
people (a flag, ``--set``, a JSON file), not from code: the CLI reports them as one ``error:`` line.

>>> check_real("cfg_scale", 5.8, low=0.0, high=100.0)
5.8
>>> check_int("inner_iterations", "abc", low=1)
Traceback (most recent call last):
ValueError: inner_iterations must be an integer, got str 'abc'
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_flag", "check_int", "check_real"]


def _number(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _bounds(low: float | int | None, high: float | int | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{_number(low)}, {_number(high)}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {_number(low)}"
    return f"{'<' if high_open else '<='} {_number(high)}"


def check_real(name: str, value: object, *, low: float | int | None = None, high: float | int | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float if it is a finite real number within the bounds (``*_open``: the bound excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and (number >= high if high_open else number > high)
    if below or above:
        raise ValueError(f"{name} must be {_bounds(low, high, low_open, high_open)}, got {value!r}")
    return number


def check_int(name: str, value: object, *, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an integer (not a bool, not a float) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer {_bounds(low, high, False, False)}, got {value!r}")
    return int(value)


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool (JSON ``true``/``false``), not a number or a string."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value
