"""The tracker extension point: follow points placed on frame 0 through a video."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, UInt8

__all__ = ["Tracker", "Tracks"]


@dataclass(frozen=True)
class Tracks:
    """Point tracks: ``positions[n, t]`` is the ``(x, y)`` pixel position of point ``n`` in frame ``t``.

    ``valid[n, t]`` says whether the tracker vouches for that position (visible and not lost); a step between
    two frames counts only when both ends are valid.
    """

    positions: Float[np.ndarray, "n t 2"]
    valid: Bool[np.ndarray, "n t"]

    def __post_init__(self) -> None:
        if self.positions.shape[:2] != self.valid.shape:
            raise ValueError(f"positions {self.positions.shape} and valid {self.valid.shape} disagree on (n, t)")

    @property
    def valid_fraction(self) -> float:
        """Share of (point, frame) positions that are valid."""
        return float(self.valid.mean()) if self.valid.size else 0.0


class Tracker(ABC):
    """Tracks query points from frame 0 to the last frame of an RGB video.

    Plugins register subclasses with ``fastvmt_register_trackers``; options are constructor arguments.
    """

    @abstractmethod
    def track(self, video: UInt8[np.ndarray, "t h w 3"], points: Float[np.ndarray, "n 2"]) -> Tracks:
        """Tracks of ``points`` (``(x, y)`` pixels on frame 0) through ``video``."""
