"""Attention Motion Flow ops (docs/algorithm.md#dense-amf): checks, then the chosen backend's kernels.

``q`` and ``k`` are ``(F, H, W, D)`` float tensors; displacements are ``(d_row, d_col)`` in token units, one
per query token in raster order (``S = H * W``), for the frame pairs of :func:`~fastvmt.ops.frame_pairs`.
The logit factor is ``tau * scale``, ``scale = 1/sqrt(D)`` by default (pass another one for a head reduction
that needs it, e.g. DiTFlow's averaged logits over concatenated heads: ``1/(heads * sqrt(head_dim))``).
Every op takes ``backend=`` (see :func:`fastvmt.use_backend` for the precedence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from fastvmt.backends import AMFBackend, Case, select_backend
from fastvmt.geometry import token_positions
from fastvmt.ops.checks import check_features, check_pairs_mode, check_positive, check_span, check_tile, check_window
from fastvmt.ops.pairs import frame_pairs

__all__ = [
    "DEFAULT_SPAN",
    "DEFAULT_TAU",
    "DEFAULT_TILE",
    "DEFAULT_WINDOW",
    "WindowedAMF",
    "full_amf",
    "window_starts",
    "windowed_amf",
]

AMF_MODES = ("soft", "argmax")

#: The paper's AMF parameters (docs/algorithm.md#windowed-amf): the ops' defaults, and the presets' values.
DEFAULT_SPAN = 4
DEFAULT_TAU = 1.0
DEFAULT_TILE = (3, 4)
DEFAULT_WINDOW = 21


@dataclass(frozen=True)
class WindowedAMF:
    """Result of :func:`windowed_amf` for N frame pairs and P tiles (raster order of the tile grid).

    ``displacement`` (N, S, 2); ``key_means`` (N, P, D): mean key of each tile's window (for the window loss);
    ``starts`` (N, P, 2): top-left ``(row, col)`` of each window; ``pairs`` (N, 2): ``(i, j)`` of each row.
    """

    displacement: Float[Tensor, "n s 2"]
    key_means: Float[Tensor, "n p d"]
    starts: Int[Tensor, "n p 2"]
    pairs: Int[Tensor, "n 2"]


def _logit_factor(tau: float, scale: float | None, features: int) -> float:
    check_positive("tau", tau)
    if scale is None:
        return tau / math.sqrt(features)
    check_positive("scale", scale)
    return tau * scale


def _backend(op: str, q: Tensor, k: Tensor, requested: str | None, *, grad: bool = True) -> AMFBackend:
    needs_grad = grad and torch.is_grad_enabled() and (q.requires_grad or k.requires_grad)
    return select_backend(Case(op, q.device, q.dtype, tuple(q.shape), needs_grad), requested)


def _checked(q: Tensor, k: Tensor, sf: int, tau: float, pairs: str, scale: float | None) -> tuple[Tensor, float]:
    """Checks the common arguments; returns the frame pairs and the logit factor."""
    check_features(q, k)
    check_span(sf)
    check_pairs_mode(pairs)
    factor = _logit_factor(tau, scale, q.shape[-1])
    return frame_pairs(q.shape[0], sf, pairs, device=q.device), factor


def _displacement(positions: Tensor, height: int, width: int) -> Tensor:
    return positions - token_positions(height, width, dtype=positions.dtype, device=positions.device)


def full_amf(
    q: Float[Tensor, "f h w d"],
    k: Float[Tensor, "f h w d"],
    *,
    sf: int = DEFAULT_SPAN,
    tau: float = DEFAULT_TAU,
    pairs: str = "forward",
    scale: float | None = None,
    mode: str = "soft",
    backend: str | None = None,
) -> Float[Tensor, "n s 2"]:
    """Dense AMF (N, S, 2): expected position of each query's match over the whole key frame, minus its own.

    ``mode="argmax"``: DiTFlow's reference displacement, the position of the highest-logit key (ties: lowest
    raster index) minus the query's, without gradient.
    """
    pair_index, factor = _checked(q, k, sf, tau, pairs, scale)
    if mode not in AMF_MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, AMF_MODES))}, got {mode!r}")
    f, h, w, d = q.shape
    if mode == "argmax":
        chosen = _backend("dense_argmax", q, k, backend, grad=False)
        positions = chosen.dense_argmax_positions(q.reshape(f, h * w, d), k, pair_index)
    else:
        positions = _backend("dense", q, k, backend).dense_positions(q.reshape(f, h * w, d), k, pair_index, factor)
    return _displacement(positions, h, w)


def _window_geometry(q: Tensor, tile: object, window: object) -> tuple[tuple[int, int], tuple[int, int]]:
    """Checked ``tile`` and the window extent ``(min(l, H), min(l, W))``."""
    h, w = q.shape[1:3]
    checked_tile = check_tile(tile, h, w)
    check_window(window)
    return checked_tile, (min(window, h), min(window, w))


def _coarse_starts(
    q: Tensor, k: Tensor, pair_index: Tensor, tile: tuple[int, int], window: int, factor: float, backend: str | None
) -> Tensor:
    """Window corners (N, P, 2): spec steps 2-3, on the tiles' representative queries, without gradient.

    Computed in float32 at least: half-precision positions (bfloat16 holds 45.3 as 45.25) would move windows.
    """
    f, h, w, d = q.shape
    th, tw = tile
    work = torch.promote_types(q.dtype, torch.float32)
    representatives = q.detach()[:, th // 2 :: th, tw // 2 :: tw].reshape(f, -1, d).to(work)
    keys = k.detach().to(work)
    with torch.no_grad():
        centres = _backend("dense", representatives, keys, backend, grad=False).dense_positions(
            representatives, keys, pair_index, factor
        )
    half = window // 2
    starts = torch.round(centres).long() - half  # round half to even, as torch.round and Python's round
    starts[..., 0].clamp_(0, h - min(window, h))
    starts[..., 1].clamp_(0, w - min(window, w))
    return starts


def window_starts(
    q: Float[Tensor, "f h w d"],
    k: Float[Tensor, "f h w d"],
    *,
    sf: int = DEFAULT_SPAN,
    tile: tuple[int, int] = DEFAULT_TILE,
    window: int = DEFAULT_WINDOW,
    tau: float = DEFAULT_TAU,
    pairs: str = "forward",
    scale: float | None = None,
    backend: str | None = None,
) -> Int[Tensor, "n p 2"]:
    """Top-left ``(row, col)`` of each tile's window (N, P, 2), P = (H/th)*(W/tw) tiles in raster order.

    The coarse pass: the tile's representative query ``(a*th + th//2, b*tw + tw//2)`` is matched over the whole
    key frame (soft expectation ``c``); per axis ``start = clamp(round(c) - l//2, 0, length - e)`` with extent
    ``e = min(l, length)``, so windows always lie inside the frame. No gradient.
    """
    pair_index, factor = _checked(q, k, sf, tau, pairs, scale)
    checked_tile, _ = _window_geometry(q, tile, window)
    return _coarse_starts(q, k, pair_index, checked_tile, window, factor, backend)


def windowed_amf(
    q: Float[Tensor, "f h w d"],
    k: Float[Tensor, "f h w d"],
    *,
    sf: int = DEFAULT_SPAN,
    tile: tuple[int, int] = DEFAULT_TILE,
    window: int = DEFAULT_WINDOW,
    tau: float = DEFAULT_TAU,
    pairs: str = "forward",
    scale: float | None = None,
    backend: str | None = None,
) -> WindowedAMF:
    """FastVMT's windowed AMF: each query attends only to the window of its tile (see :func:`window_starts`).

    Displacements are in global coordinates, same layout as :func:`full_amf`; differentiable w.r.t. ``q``
    and ``k`` (the window positions are not). Also returns each window's mean key, for the window loss.
    """
    pair_index, factor = _checked(q, k, sf, tau, pairs, scale)
    checked_tile, extent = _window_geometry(q, tile, window)
    starts = _coarse_starts(q, k, pair_index, checked_tile, window, factor, backend)
    positions = _backend("windowed", q, k, backend).windowed_positions(
        q, k, pair_index, starts, checked_tile, extent, factor
    )
    key_means = _backend("key_means", q, k, backend).window_key_means(k, pair_index, starts, extent)
    return WindowedAMF(_displacement(positions, *q.shape[1:3]), key_means, starts, pair_index)
