"""Motion extractors: attention motion flow (AMF), windowed (FastVMT) and dense (DiTFlow); the predicted clean
latent (FlowMotion); and the windowed AMF with the predicted latent together.

The AMF extractors reduce heads (:mod:`fastvmt.strategies.heads`) and compute in float32 on the backend chosen by
:func:`fastvmt.use_backend` (or the ops' automatic choice). Their defaults are the ``fastvmt`` preset's options;
the latent-prediction extractor's are the ``flowmotion`` preset's.
"""

from __future__ import annotations

import contextlib

import torch

from fastvmt import ops
from fastvmt.interfaces import (
    ATTENTION,
    PREDICTION,
    AttentionFeatures,
    HybridMotion,
    LatentMotion,
    LatentPrediction,
    MotionExtractor,
    MotionField,
    Readings,
    TokenGrid,
)
from fastvmt.strategies.flowmotion import predicted_clean
from fastvmt.strategies.heads import HEAD_MODES, reduce_heads
from fastvmt.strategies.presets import FASTVMT, FLOWMOTION
from fastvmt.values import check_int, check_real

__all__ = ["DenseAMFExtractor", "LatentPredictionExtractor", "WindowedAMFExtractor", "WindowedAMFPredictionExtractor"]


_DEFAULTS = FASTVMT.extractor.options
_GAMMA = FLOWMOTION.extractor.options["gamma"]


def _divisors(size: int) -> list[int]:
    """The tile sizes that divide a token grid side of ``size``."""
    return [d for d in range(1, size + 1) if size % d == 0]


def _check_common(heads: str, sf: int, tau: float, pairs: str) -> None:
    if heads not in HEAD_MODES:
        raise ValueError(f"heads must be one of {', '.join(HEAD_MODES)}, got {heads!r}")
    check_int("sf", sf, low=1)
    check_real("tau", tau, low=0.0, low_open=True)
    if pairs not in ("forward", "all"):
        raise ValueError(f"pairs must be 'forward' or 'all', got {pairs!r}")


def _float_qk(features: AttentionFeatures, heads: str) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Reduced q, k in float32 for every backend. Production precision, chosen: the triton backend multiplies
    float32 in TF32, which holds a bfloat16 backbone's values exactly (docs/backends/triton.md, Precision)."""
    q, k, scale = reduce_heads(features, heads)
    return q.float(), k.float(), scale


def _span(sf: int, pairs: str, frames: int) -> int:
    return frames if pairs == "all" else sf


class WindowedAMFExtractor(MotionExtractor):
    """FastVMT's windowed AMF (docs/algorithm.md#windowed-amf): flow inside a window around each tile's coarse match.

    Also returns the window key means the corresponding-window loss needs.
    """

    def __init__(
        self,
        heads: str = _DEFAULTS["heads"],
        sf: int = _DEFAULTS["sf"],
        tile: tuple[int, int] = _DEFAULTS["tile"],
        window: int = _DEFAULTS["window"],
        tau: float = _DEFAULTS["tau"],
        pairs: str = _DEFAULTS["pairs"],
    ):
        _check_common(heads, sf, tau, pairs)
        if check_int("window", window, low=1) % 2 == 0:
            raise ValueError(f"window must be a positive odd int, got {window!r}")
        if not isinstance(tile, (tuple, list)) or len(tile) != 2:
            raise ValueError(f"tile must be two positive ints (rows, cols), e.g. [3,4], got {tile!r}")
        for t in tile:
            check_int("tile rows and columns", t, low=1)
        self.heads, self.sf, self.tile, self.window, self.tau, self.pairs = heads, sf, tuple(tile), window, tau, pairs

    def check(self, grid: TokenGrid) -> None:
        th, tw = self.tile
        if grid.height % th or grid.width % tw:
            rows, cols = _divisors(grid.height), _divisors(grid.width)
            nearest = (min(rows, key=lambda d: (abs(d - th), -d)), min(cols, key=lambda d: (abs(d - tw), -d)))
            raise ValueError(
                f"tile {th}x{tw} does not divide the {grid.height}x{grid.width} token grid (a token is 16x16 pixels, "
                f"32x32 on Wan2.2 TI2V-5B); tile heights that fit: {', '.join(map(str, rows))}; widths: "
                f"{', '.join(map(str, cols))}; the nearest tile is {nearest[0]}x{nearest[1]} "
                f"(--set extractor.tile=[{nearest[0]},{nearest[1]}]), or change the video size"
            )

    def extract(self, features: AttentionFeatures, state=None, *, reference: bool = False) -> MotionField:
        q, k, scale = _float_qk(features, self.heads)
        with torch.no_grad() if reference else contextlib.nullcontext():
            amf = ops.windowed_amf(
                q, k, sf=self.sf, tile=self.tile, window=self.window, tau=self.tau, pairs=self.pairs, scale=scale
            )
        return MotionField(
            displacement=amf.displacement,
            pairs=amf.pairs,
            grid=features.grid,
            span=_span(self.sf, self.pairs, q.shape[0]),
            key_means=amf.key_means,
            starts=amf.starts,
        )


class DenseAMFExtractor(MotionExtractor):
    """Dense AMF over whole frames (DiTFlow). ``reference_mode="argmax"`` takes the reference's displacement to
    the best-matching key instead of the soft expectation."""

    def __init__(
        self,
        heads: str = _DEFAULTS["heads"],
        sf: int = _DEFAULTS["sf"],
        tau: float = _DEFAULTS["tau"],
        pairs: str = _DEFAULTS["pairs"],
        reference_mode: str = "soft",
    ):
        _check_common(heads, sf, tau, pairs)
        if reference_mode not in ("soft", "argmax"):
            raise ValueError(f"reference_mode must be 'soft' or 'argmax', got {reference_mode!r}")
        self.heads, self.sf, self.tau, self.pairs, self.reference_mode = heads, sf, tau, pairs, reference_mode

    def extract(self, features: AttentionFeatures, state=None, *, reference: bool = False) -> MotionField:
        q, k, scale = _float_qk(features, self.heads)
        mode = self.reference_mode if reference else "soft"
        with torch.no_grad() if reference else contextlib.nullcontext():
            displacement = ops.full_amf(q, k, sf=self.sf, tau=self.tau, pairs=self.pairs, scale=scale, mode=mode)
        pairs = ops.frame_pairs(q.shape[0], self.sf, self.pairs, device=q.device)
        return MotionField(displacement, pairs, features.grid, span=_span(self.sf, self.pairs, q.shape[0]))


class LatentPredictionExtractor(MotionExtractor):
    """FlowMotion (docs/algorithm.md#flowmotion): the clean latent the backbone's velocity predicts,
    ``latents - sigma * v``, with ``v`` regularised towards the sampling path by ``gamma`` (1 keeps it as is)."""

    reads = frozenset({PREDICTION})

    def __init__(self, gamma: float = _GAMMA):
        self.gamma = check_real("gamma", gamma, low=0.0, high=1.0)

    def check(self, grid: TokenGrid) -> None:
        if grid.frames < 2:
            raise ValueError(f"the frame differences need at least 2 latent frames (9 video frames), got {grid.frames}")

    def extract(self, features: LatentPrediction, state=None, *, reference: bool = False) -> LatentMotion:
        clean = predicted_clean(features, self.gamma)
        return LatentMotion(clean.detach() if reference else clean)


class WindowedAMFPredictionExtractor(MotionExtractor):
    """The windowed AMF of the attention features and the predicted clean latent, together (the
    ``fastvmt_flowmotion`` preset); the options are those of the two extractors."""

    reads = frozenset({ATTENTION, PREDICTION})

    def __init__(
        self,
        heads: str = _DEFAULTS["heads"],
        sf: int = _DEFAULTS["sf"],
        tile: tuple[int, int] = _DEFAULTS["tile"],
        window: int = _DEFAULTS["window"],
        tau: float = _DEFAULTS["tau"],
        pairs: str = _DEFAULTS["pairs"],
        gamma: float = _GAMMA,
    ):
        self.amf = WindowedAMFExtractor(heads, sf, tile, window, tau, pairs)
        self.prediction = LatentPredictionExtractor(gamma)

    def check(self, grid: TokenGrid) -> None:
        self.amf.check(grid)
        self.prediction.check(grid)

    def fit(self, reference: Readings):
        return self.amf.fit(reference.attention)

    def extract(self, features: Readings, state=None, *, reference: bool = False) -> HybridMotion:
        return HybridMotion(
            amf=self.amf.extract(features.attention, state, reference=reference),
            latent=self.prediction.extract(features.prediction, reference=reference),
        )
