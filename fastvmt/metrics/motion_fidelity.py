"""Motion fidelity: do the generated video's point tracks move like the reference's?

The tracklet score of Yatim et al., "Space-Time Diffusion Features for Zero-Shot Text-Driven Motion Transfer"
(CVPR 2024), also used by DiTFlow and FastVMT. Definition, as computed here:

1. Query points: a ``grid x grid`` lattice on frame 0 of each video (``x = linspace(W/64, W-1-W/64, grid)``,
   likewise ``y``; raster order), tracked through every frame by a registered tracker (``lk`` or ``cotracker``).
2. Per-step displacements ``v_k = p_{k+1} - p_k`` (``k < T-1``), normalised to unit length. A step not longer
   than ``min_motion`` px counts as zero (no direction).
   Tracklets the tracker lost in some frame (a point that left the frame or failed LK's forward-backward check)
   are, with ``incomplete="drop"`` (default), left out of both the averages and the candidate matches; with
   ``incomplete="zero"`` they stay and their invalid steps count as zero. (Dropping matters: a tracklet with
   few counted steps correlates ~0 with everything and would be every tracklet's best match when all others
   move the wrong way.)
3. Similarity of reference tracklet ``i`` and generated tracklet ``j``: the mean over steps of the dot
   products of their unit displacements, ``C[i, j] = 1/(T-1) * sum_k <u_i,k, u~_j,k>``, in ``[-1, 1]``.
4. Best-match averages: ``gen_to_ref = mean_j max_i C[i, j]`` (each generated tracklet's best reference match;
   what the released evaluation scripts report) and ``ref_to_gen = mean_i max_j C[i, j]``.
   ``direction="both"`` (default) returns their mean: the paper sums both best-match averages (each tracklet
   set against the other); halving keeps the score in ``[-1, 1]`` like the one-sided variants.

``diagonal`` treats the pairs ``(i, i)``, which start at the same grid point in both videos: ``"keep"``
(default) lets them match like any other pair; ``"exclude"`` forbids them as best matches; ``"release"``
subtracts 1 from them, as the released scripts do (``similarity - eye``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from jaxtyping import Bool, Float, Shaped
from torch import Tensor

from fastvmt.metrics.trackers.base import Tracker, Tracks
from fastvmt.metrics.video import as_uint8_video
from fastvmt.values import check_int, check_real

__all__ = [
    "MAX_GRID",
    "MotionFidelity",
    "best_match_scores",
    "check_grid",
    "evaluate_motion_fidelity",
    "motion_fidelity",
    "query_grid",
    "tracklet_similarity",
]

Direction = Literal["both", "gen_to_ref", "ref_to_gen"]
Diagonal = Literal["keep", "exclude", "release"]
Incomplete = Literal["drop", "zero"]
VideoLike = Shaped[np.ndarray, "_t ..."] | Shaped[Tensor, "_t ..."]


#: Bytes the tracklet similarity matrix may take: it is ``grid**2 x grid**2`` float64 values, and scoring holds it
#: three times (the matrix, its copy with the diagonal treated, the kept tracklets' rows and columns).
MAX_SIMILARITY_BYTES = 2**30
#: The largest grid: its three similarity matrices stay within :data:`MAX_SIMILARITY_BYTES`.
MAX_GRID = math.floor((MAX_SIMILARITY_BYTES / (3 * 8)) ** 0.25)


def check_grid(grid: object) -> int:
    """``grid`` if it is an integer in ``[2, MAX_GRID]``; ``ValueError`` naming the bound otherwise."""
    try:
        return check_int("grid (query points a side)", grid, low=2, high=MAX_GRID)
    except ValueError as exc:
        raise ValueError(f"{exc}: two grids' similarity is grid**4 float64 values, held three times in at most "
                         f"{MAX_SIMILARITY_BYTES / 2**30:g} GiB") from None


def query_grid(height: int, width: int, grid: int) -> Float[np.ndarray, "n 2"]:
    """``grid * grid`` query points ``(x, y)`` on a ``height x width`` frame, raster order, margin 1/64."""
    check_grid(grid)
    xs = np.linspace(width / 64, width - 1 - width / 64, grid)
    ys = np.linspace(height / 64, height - 1 - height / 64, grid)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=-1)


def _unit_steps(tracks: Tracks, min_motion: float) -> Float[np.ndarray, "n k 2"]:
    steps = np.diff(tracks.positions, axis=1)
    length = np.linalg.norm(steps, axis=-1, keepdims=True)
    counted = (tracks.valid[:, :-1] & tracks.valid[:, 1:])[..., None] & (length > min_motion)
    return np.where(counted, steps / np.where(counted, length, 1.0), 0.0)


def tracklet_similarity(reference: Tracks, generated: Tracks, *, min_motion: float = 0.0) -> Float[np.ndarray, "n m"]:
    """``C[i, j]``: mean dot product of the unit per-step displacements of reference ``i`` and generated ``j``."""
    if reference.positions.shape[1] != generated.positions.shape[1]:
        raise ValueError(
            f"tracks cover {reference.positions.shape[1]} and {generated.positions.shape[1]} frames; "
            "both must cover the same frames"
        )
    steps = reference.positions.shape[1] - 1
    ref = _unit_steps(reference, min_motion).reshape(len(reference.positions), -1)
    gen = _unit_steps(generated, min_motion).reshape(len(generated.positions), -1)
    return ref @ gen.T / steps


def best_match_scores(
    similarity: Float[np.ndarray, "n m"],
    *,
    diagonal: Diagonal = "keep",
    reference_kept: Bool[np.ndarray, " n"] | None = None,
    generated_kept: Bool[np.ndarray, " m"] | None = None,
) -> tuple[float, float]:
    """``(gen_to_ref, ref_to_gen)`` best-match averages of a similarity matrix (module docstring, step 4).

    ``reference_kept`` / ``generated_kept`` select the tracklets that take part (rows / columns; all by default).
    """
    if diagonal not in ("keep", "exclude", "release"):
        raise ValueError(f"diagonal must be 'keep', 'exclude' or 'release', got {diagonal!r}")
    matrix = np.array(similarity, dtype=np.float64)
    if diagonal != "keep":
        if matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
            raise ValueError(f"diagonal={diagonal!r} needs the same grid (>= 2 points) in both videos")
        np.fill_diagonal(matrix, -np.inf if diagonal == "exclude" else np.diag(matrix) - 1.0)
    rows = np.ones(matrix.shape[0], bool) if reference_kept is None else reference_kept
    cols = np.ones(matrix.shape[1], bool) if generated_kept is None else generated_kept
    matrix = matrix[rows][:, cols]
    if matrix.size == 0 or (diagonal == "exclude" and min(matrix.shape) < 2):
        raise ValueError("no tracklets left to match in one of the videos")
    return float(matrix.max(axis=0).mean()), float(matrix.max(axis=1).mean())


def _kept(tracks: Tracks, incomplete: str, name: str) -> Bool[np.ndarray, " n"]:
    if incomplete == "zero":
        return np.ones(len(tracks.valid), dtype=bool)
    complete = tracks.valid.all(axis=1)
    if not complete.any():
        raise ValueError(
            f"the tracker lost every point of the {name} video before its last frame (valid positions: "
            f"{tracks.valid_fraction:.0%}); use incomplete='zero' to score partial tracks, or another tracker"
        )
    return complete


@dataclass(frozen=True)
class MotionFidelity:
    """A motion-fidelity evaluation: the score, both one-sided averages and how well tracking went.

    ``*_valid`` is the share of valid (point, frame) positions; ``*_tracklets`` how many tracklets were scored.
    """

    score: float
    gen_to_ref: float
    ref_to_gen: float
    direction: str
    diagonal: str
    tracker: str
    grid: int
    frames: int
    reference_valid: float
    generated_valid: float
    incomplete: str
    reference_tracklets: int
    generated_tracklets: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tracker(tracker: str | Tracker, options: Mapping[str, Any] | None) -> tuple[Tracker, str]:
    if isinstance(tracker, Tracker):
        if options:
            raise ValueError("tracker_options apply to a tracker given by name, not to a Tracker instance")
        return tracker, type(tracker).__name__
    if not isinstance(tracker, str):
        raise TypeError(f"tracker must be a registered name or a Tracker instance, got {type(tracker).__name__}")
    from fastvmt import plugins

    return plugins.create("tracker", tracker, options), tracker


def evaluate_motion_fidelity(
    reference: VideoLike,
    generated: VideoLike,
    *,
    tracker: str | Tracker = "lk",
    grid: int = 55,
    direction: Direction = "both",
    diagonal: Diagonal = "keep",
    min_motion: float = 0.0,
    incomplete: Incomplete = "drop",
    tracker_options: Mapping[str, Any] | None = None,
) -> MotionFidelity:
    """Motion fidelity of ``generated`` to ``reference`` with the details (see the module docstring).

    Videos: uint8 ``(T, H, W, 3)`` or float ``(T, 3, H, W)`` in ``[-1, 1]``, numpy or torch, with the same
    number of frames ``T >= 2`` (their sizes may differ: each gets its own grid at the same relative places).
    """
    if direction not in ("both", "gen_to_ref", "ref_to_gen"):
        raise ValueError(f"direction must be 'both', 'gen_to_ref' or 'ref_to_gen', got {direction!r}")
    if diagonal not in ("keep", "exclude", "release"):
        raise ValueError(f"diagonal must be 'keep', 'exclude' or 'release', got {diagonal!r}")
    if incomplete not in ("drop", "zero"):
        raise ValueError(f"incomplete must be 'drop' or 'zero', got {incomplete!r}")
    check_real("min_motion (pixels)", min_motion, low=0.0)
    check_grid(grid)
    ref_video = as_uint8_video(reference, "reference video")
    gen_video = as_uint8_video(generated, "generated video")
    if len(ref_video) != len(gen_video):
        raise ValueError(
            f"the reference video has {len(ref_video)} frames and the generated video {len(gen_video)}; motion "
            "fidelity compares per-frame displacements, so trim or resample one to the other's frame count"
        )
    if len(ref_video) < 2:
        raise ValueError(f"motion needs at least 2 frames, the videos have {len(ref_video)}")
    ref_points = query_grid(ref_video.shape[1], ref_video.shape[2], grid)
    gen_points = query_grid(gen_video.shape[1], gen_video.shape[2], grid)
    tracker_obj, tracker_name = _tracker(tracker, tracker_options)
    ref_tracks = tracker_obj.track(ref_video, ref_points)
    gen_tracks = tracker_obj.track(gen_video, gen_points)
    ref_kept = _kept(ref_tracks, incomplete, "reference")
    gen_kept = _kept(gen_tracks, incomplete, "generated")
    similarity = tracklet_similarity(ref_tracks, gen_tracks, min_motion=min_motion)
    gen_to_ref, ref_to_gen = best_match_scores(
        similarity, diagonal=diagonal, reference_kept=ref_kept, generated_kept=gen_kept
    )
    score = {"both": (gen_to_ref + ref_to_gen) / 2, "gen_to_ref": gen_to_ref, "ref_to_gen": ref_to_gen}[direction]
    return MotionFidelity(
        score, gen_to_ref, ref_to_gen, direction, diagonal, tracker_name, grid, len(ref_video),
        ref_tracks.valid_fraction, gen_tracks.valid_fraction, incomplete, int(ref_kept.sum()), int(gen_kept.sum()),
    )


def motion_fidelity(
    reference: VideoLike,
    generated: VideoLike,
    *,
    tracker: str | Tracker = "lk",
    grid: int = 55,
    direction: Direction = "both",
    diagonal: Diagonal = "keep",
    min_motion: float = 0.0,
    incomplete: Incomplete = "drop",
    tracker_options: Mapping[str, Any] | None = None,
) -> float:
    """The motion-fidelity score in ``[-1, 1]`` (higher: the generated video moves like the reference).

    See the module docstring for the definition and :func:`evaluate_motion_fidelity` for the arguments.
    """
    return evaluate_motion_fidelity(
        reference, generated, tracker=tracker, grid=grid, direction=direction, diagonal=diagonal,
        min_motion=min_motion, incomplete=incomplete, tracker_options=tracker_options,
    ).score
