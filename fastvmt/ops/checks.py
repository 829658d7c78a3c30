"""Argument checks of the AMF ops: clear errors before any heavy work.

Cheap checks (types, shapes, parameters) always run. Scanning the inputs for NaN/Inf costs a pass over them,
so it runs only in check mode (:mod:`fastvmt.checkmode`).
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from fastvmt.checkmode import checks_active

__all__ = [
    "check_features",
    "check_finite",
    "check_frame_count",
    "check_pairs_mode",
    "check_positive",
    "check_span",
    "check_tile",
    "check_window",
]

PAIR_MODES = ("forward", "all")


def check_features(q: object, k: object) -> None:
    """``q`` and ``k``: floating tensors of the same ``(F, H, W, D)`` shape on the same device."""
    for name, x in (("q", q), ("k", k)):
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (F, H, W, D), got {type(x).__name__}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"{name} must have a floating dtype (float32, float64, bfloat16, float16), got {x.dtype}")
        if x.ndim != 4:
            raise ValueError(
                f"{name} must be 4-D (frames, height, width, features), got shape {tuple(x.shape)}; "
                "reshape token sequences (F*H*W, D) to (F, H, W, D) first"
            )
        if min(x.shape) < 1:
            raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    if q.shape != k.shape:
        raise ValueError(f"q and k must have the same (F, H, W, D) shape, got {tuple(q.shape)} and {tuple(k.shape)}")
    if q.device != k.device:
        raise ValueError(f"q and k must be on the same device, got {q.device} and {k.device}")
    if q.dtype != k.dtype:
        raise TypeError(f"q and k must have the same dtype, got {q.dtype} and {k.dtype}")
    check_finite(q=q, k=k)


def check_finite(**tensors: Tensor) -> None:
    """In check mode: raise if a tensor holds NaN or Inf (naming it and counting the bad entries)."""
    if not checks_active():
        return
    for name, x in tensors.items():
        bad = int((~torch.isfinite(x.detach())).sum())
        if bad:
            raise ValueError(f"{name} holds {bad} NaN/Inf value(s) of {x.numel()}; check the features upstream")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(name: str, value: object, *, low: int, meaning: str) -> None:
    if not _is_int(value):
        raise TypeError(f"{name} ({meaning}) must be an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} ({meaning}) must be >= {low}, got {value!r}")


def check_frame_count(num_frames: object) -> None:
    _check_int("num_frames", num_frames, low=1, meaning="frame count")


def check_span(sf: object) -> None:
    """The temporal span ``sf``: an int >= 1."""
    _check_int("sf", sf, low=1, meaning="temporal span: frames ahead a query frame is paired with")


def check_pairs_mode(mode: object) -> None:
    if mode not in PAIR_MODES:
        raise ValueError(f"pairs must be one of {', '.join(map(repr, PAIR_MODES))}, got {mode!r}")


def check_positive(name: str, value: object) -> None:
    """A finite real number > 0 (``tau``, ``scale``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_window(window: object) -> None:
    """The window side ``l``: a positive odd int (the window is centred on the coarse match)."""
    if not _is_int(window):
        raise TypeError(f"window must be a positive odd int (e.g. 21), got {type(window).__name__} {window!r}")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd int (e.g. 21), got {window!r}")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_tile(tile: object, height: int, width: int) -> tuple[int, int]:
    """``tile`` as ``(th, tw)``: positive ints dividing the ``height x width`` token grid."""
    if not (isinstance(tile, (tuple, list)) and len(tile) == 2 and all(_is_int(t) for t in tile)):
        raise TypeError(f"tile must be two positive ints (rows, cols), e.g. (3, 4), got {tile!r}")
    if min(tile) < 1:
        raise ValueError(f"tile must be two positive ints (rows, cols), e.g. (3, 4), got {tuple(tile)!r}")
    th, tw = int(tile[0]), int(tile[1])
    if height % th or width % tw:
        raise ValueError(
            f"tile {th}x{tw} does not divide the {height}x{width} token grid "
            f"({height} % {th} = {height % th}, {width} % {tw} = {width % tw}); tile rows that fit: "
            f"{_divisors(height)}, tile columns that fit: {_divisors(width)}"
        )
    return th, tw
