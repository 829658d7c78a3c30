"""CoTracker point tracking from a local checkpoint (no downloads).

Needs the ``cotracker`` package (installed from the facebookresearch/co-tracker repository; it is not on PyPI)
and a checkpoint file on disk, e.g. ``scaled_offline.pth``. The adapter builds
``cotracker.predictor.CoTrackerPredictor(checkpoint=PATH, **predictor_options)`` and calls it with the video as
float ``(1, T, 3, H, W)`` in ``[0, 255]`` and the query points as ``(1, N, 3)`` rows ``(0, x, y)``; the predictor
returns tracks ``(1, T, N, 2)`` in pixels and visibility ``(1, T, N)`` (or ``(1, T, N, 1)``). CoTracker estimates
positions of occluded points too; like the released motion-fidelity evaluations, every position counts as valid
unless ``use_visibility=True`` marks occluded ones invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float, UInt8

from fastvmt.metrics.trackers.base import Tracker, Tracks

__all__ = ["CoTrackerTracker"]


class CoTrackerTracker(Tracker):
    """CoTracker (Karaev et al.) loaded from ``checkpoint``, a local file.

    Args:
        checkpoint: path of the CoTracker weights; required, fastvmt never downloads them.
        device: torch device to run on.
        predictor_options: extra keyword arguments of ``CoTrackerPredictor`` (e.g. ``window_len``).
        use_visibility: mark positions the model predicts occluded as invalid.
    """

    def __init__(
        self, checkpoint: str | Path | None = None, device: str = "cpu",
        predictor_options: Mapping[str, Any] | None = None, use_visibility: bool = False,
    ):
        if checkpoint is None:
            raise ValueError(
                "the 'cotracker' tracker needs a local checkpoint file (fastvmt downloads no weights): pass "
                "tracker_options={'checkpoint': '/path/to/scaled_offline.pth'} "
                "(CLI: --tracker cotracker --tracker-option checkpoint=/path/to/scaled_offline.pth)"
            )
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"CoTracker checkpoint {str(path)!r} does not exist or is not a file")
        try:
            from cotracker.predictor import CoTrackerPredictor
        except ImportError as exc:
            raise ImportError(
                "the 'cotracker' tracker needs the cotracker package, which is not on PyPI: install it from the "
                "facebookresearch/co-tracker repository (pip install <path to a clone>), or use tracker='lk'"
            ) from exc
        import torch

        self._torch = torch
        self.device = torch.device(device)
        self.checkpoint = path
        self.use_visibility = use_visibility
        self._predictor = CoTrackerPredictor(checkpoint=str(path), **dict(predictor_options or {}))
        self._predictor = self._predictor.to(self.device).eval()

    def track(self, video: UInt8[np.ndarray, "t h w 3"], points: Float[np.ndarray, "n 2"]) -> Tracks:
        torch = self._torch
        clip = torch.from_numpy(np.ascontiguousarray(video)).to(self.device).permute(0, 3, 1, 2)[None].float()
        queries = torch.zeros((1, len(points), 3), dtype=torch.float32, device=self.device)
        queries[0, :, 1:] = torch.from_numpy(np.asarray(points, dtype=np.float32)).to(self.device)
        with torch.no_grad():
            tracks, visibility = self._predictor(clip, queries=queries)
        frames = len(video)
        if tuple(tracks.shape) != (1, frames, len(points), 2):
            raise RuntimeError(f"CoTracker returned tracks of shape {tuple(tracks.shape)}, expected "
                               f"(1, {frames}, {len(points)}, 2)")
        positions = tracks[0].permute(1, 0, 2).double().cpu().numpy()
        valid = visibility.reshape(frames, len(points)).T.bool().cpu().numpy()
        if not self.use_visibility:
            valid = np.ones_like(valid)
        return Tracks(positions, valid)
