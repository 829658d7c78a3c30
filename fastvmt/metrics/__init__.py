"""Evaluation metrics of motion transfer: tracklet motion fidelity (trackers are plugins) and CLIP scores."""

from fastvmt.metrics.clip_scores import ClipScorer
from fastvmt.metrics.motion_fidelity import (
    MotionFidelity,
    best_match_scores,
    evaluate_motion_fidelity,
    motion_fidelity,
    query_grid,
    tracklet_similarity,
)
from fastvmt.metrics.trackers import Tracker, Tracks
from fastvmt.metrics.video import as_uint8_video

__all__ = [
    "ClipScorer",
    "MotionFidelity",
    "Tracker",
    "Tracks",
    "as_uint8_video",
    "best_match_scores",
    "evaluate_motion_fidelity",
    "motion_fidelity",
    "query_grid",
    "tracklet_similarity",
]
