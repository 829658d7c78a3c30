"""Evaluation metrics of motion transfer: tracklet motion fidelity (trackers are plugins), CLIP scores and the
end-point error between two attention motion flows."""

from fastvmt.metrics.amf_error import amf_end_point_error
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
    "amf_end_point_error",
    "as_uint8_video",
    "best_match_scores",
    "evaluate_motion_fidelity",
    "motion_fidelity",
    "query_grid",
    "tracklet_similarity",
]
