"""Pyramidal Lucas-Kanade point tracking (OpenCV), chained frame to frame, with a forward-backward check.

No weights: a classical tracker that runs anywhere OpenCV does (extra ``eval``). Each step tracks the active
points from frame ``t`` to ``t+1``, tracks the result back to frame ``t`` and drops points whose round trip
misses by more than ``max_fb_error`` pixels, that OpenCV reports as failed, or that leave the frame. A dropped
point stays lost: its later positions repeat the last valid one and are marked invalid.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, UInt8

from fastvmt.metrics.trackers.base import Tracker, Tracks
from fastvmt.values import check_int, check_real

__all__ = ["LucasKanadeTracker"]


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            "the 'lk' tracker needs OpenCV: pip install 'fastvmt[eval]' (opencv-python-headless)"
        ) from exc
    return cv2


class LucasKanadeTracker(Tracker):
    """OpenCV ``calcOpticalFlowPyrLK`` with a forward-backward consistency check.

    Args:
        window: side of the square search window at each pyramid level, pixels.
        levels: pyramid levels above the full resolution.
        max_fb_error: largest forward-backward round-trip error, pixels, of a kept point.
        iterations, epsilon: the per-level solver's stopping criteria.
    """

    def __init__(
        self, window: int = 21, levels: int = 3, max_fb_error: float = 1.0, iterations: int = 30,
        epsilon: float = 0.01,
    ):
        if check_int("window", window, low=3) % 2 == 0:
            raise ValueError(f"window must be an odd number >= 3, got {window}")
        self.window = window
        self.levels = check_int("levels", levels, low=0)
        self.max_fb_error = check_real("max_fb_error", max_fb_error, low=0.0, low_open=True)
        self.iterations = check_int("iterations", iterations, low=1)
        self.epsilon = check_real("epsilon", epsilon, low=0.0, low_open=True)

    def _flow(self, cv2, source, target, points):
        criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, self.iterations, self.epsilon)
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            source, target, points, None, winSize=(self.window, self.window), maxLevel=self.levels,
            criteria=criteria,
        )
        return moved, status.reshape(-1).astype(bool)

    def track(self, video: UInt8[np.ndarray, "t h w 3"], points: Float[np.ndarray, "n 2"]) -> Tracks:
        cv2 = _cv2()
        frames, height, width = video.shape[:3]
        gray = [cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY) for frame in video]
        positions = np.empty((len(points), frames, 2), dtype=np.float64)
        valid = np.zeros((len(points), frames), dtype=bool)
        positions[:, 0] = points
        valid[:, 0] = (points[:, 0] >= 0) & (points[:, 0] <= width - 1) & (points[:, 1] >= 0)
        valid[:, 0] &= points[:, 1] <= height - 1
        for t in range(frames - 1):
            positions[:, t + 1] = positions[:, t]
            active = np.flatnonzero(valid[:, t])
            if active.size == 0:
                continue
            start = positions[active, t].astype(np.float32).reshape(-1, 1, 2)
            moved, ok = self._flow(cv2, gray[t], gray[t + 1], start)
            back, ok_back = self._flow(cv2, gray[t + 1], gray[t], moved)
            moved, back = moved.reshape(-1, 2), back.reshape(-1, 2)
            round_trip = np.linalg.norm(back - start.reshape(-1, 2), axis=1)
            inside = (moved[:, 0] >= 0) & (moved[:, 0] <= width - 1) & (moved[:, 1] >= 0)
            inside &= moved[:, 1] <= height - 1
            kept = ok & ok_back & inside & (round_trip <= self.max_fb_error)
            positions[active[kept], t + 1] = moved[kept]
            valid[active[kept], t + 1] = True
        return Tracks(positions, valid)
