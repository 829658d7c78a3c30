"""Motion fidelity and the LK tracker on synthetic videos with known motion."""

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from fastvmt.metrics import (  # noqa: E402
    Tracks,
    as_uint8_video,
    best_match_scores,
    evaluate_motion_fidelity,
    motion_fidelity,
    tracklet_similarity,
)
from fastvmt.metrics.trackers.lk import LucasKanadeTracker  # noqa: E402

HEIGHT, WIDTH = 96, 128


def texture(seed: int, size: int = 320) -> np.ndarray:
    """A smooth random RGB texture (blurred noise), uint8."""
    rng = np.random.default_rng(seed)
    noise = rng.random((size, size, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigmaX=2.5)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).astype(np.uint8)


def translating_video(tex: np.ndarray, offsets: list[tuple[float, float]]) -> np.ndarray:
    """Frames of ``tex`` seen through a fixed window while the content moves by ``offsets[t]`` (dx, dy) pixels."""
    frames = []
    for dx, dy in offsets:
        shift = np.float32([[1, 0, dx - 96], [0, 1, dy - 96]])  # look at the texture's interior
        frames.append(cv2.warpAffine(tex, shift, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR))
    return np.stack(frames)


def path(steps: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Cumulative offsets starting at (0, 0)."""
    out = [(0.0, 0.0)]
    for dx, dy in steps:
        out.append((out[-1][0] + dx, out[-1][1] + dy))
    return out


# Right for four frames, then down-left: a motion whose time reversal points the other way at every step.
BENT = path([(1.6, 0.3)] * 4 + [(-0.8, 1.4)] * 4)


def test_lk_recovers_a_subpixel_translation():
    step = np.array([1.3, -0.6])
    video = translating_video(texture(0), path([tuple(step)] * 6))
    xs, ys = np.meshgrid(np.linspace(16, WIDTH - 17, 10), np.linspace(16, HEIGHT - 17, 8))
    points = np.stack([xs.ravel(), ys.ravel()], axis=-1)  # at least 16 px from the borders: none leaves
    tracks = LucasKanadeTracker().track(video, points)
    assert tracks.valid.mean() > 0.95
    interior = tracks.valid.all(axis=1)
    steps = np.diff(tracks.positions[interior], axis=1)
    error = np.linalg.norm(steps - step, axis=-1)
    assert np.percentile(error, 95) < 0.2, f"95th percentile step error {np.percentile(error, 95):.3f} px"
    total = tracks.positions[interior, -1] - tracks.positions[interior, 0]
    assert np.median(np.linalg.norm(total - 6 * step, axis=-1)) < 0.2


def test_lk_marks_points_that_leave_the_frame_invalid():
    video = translating_video(texture(1), path([(6.0, 0.0)] * 4))
    points = np.array([[WIDTH - 3.0, HEIGHT / 2], [WIDTH / 2, HEIGHT / 2]])
    tracks = LucasKanadeTracker().track(video, points)
    assert not tracks.valid[0, -1]
    assert tracks.valid[1].all()


def test_same_video_scores_highest_and_reversed_motion_scores_low():
    video = translating_video(texture(2), BENT)
    same_motion_other_look = translating_video(texture(3), BENT)
    reversed_motion = video[::-1].copy()
    other_motion = translating_video(texture(2), path([(0.2, -1.5)] * 8))
    kwargs = dict(grid=12)
    self_score = motion_fidelity(video, video, **kwargs)
    transfer = motion_fidelity(video, same_motion_other_look, **kwargs)
    reversed_score = motion_fidelity(video, reversed_motion, **kwargs)
    other = motion_fidelity(video, other_motion, **kwargs)
    assert self_score == pytest.approx(1.0, abs=1e-3)
    assert self_score >= max(transfer, reversed_score, other)
    assert transfer > 0.95
    assert reversed_score < transfer - 0.4
    assert other < transfer - 0.4
    # A steady translation played backwards moves against the reference at every step.
    steady = translating_video(texture(2), path([(1.2, 0.5)] * 6))
    assert motion_fidelity(steady, steady[::-1].copy(), **kwargs) < -0.9


def test_incomplete_tracklets_are_dropped_or_zeroed():
    steady = translating_video(texture(2), path([(1.2, 0.5)] * 6))
    backwards = steady[::-1].copy()
    dropped = evaluate_motion_fidelity(steady, backwards, grid=12)
    zeroed = evaluate_motion_fidelity(steady, backwards, grid=12, incomplete="zero")
    assert dropped.reference_tracklets < 144 and zeroed.reference_tracklets == 144  # border points leave
    # Kept, a lost tracklet correlates ~0 with everything and becomes the best match of wrong-way tracklets.
    assert zeroed.score > dropped.score + 0.5
    blank = np.zeros((4, 32, 32, 3), np.uint8)  # no texture: LK loses every point
    with pytest.raises(ValueError, match="lost every point"):
        motion_fidelity(blank, blank, grid=4)


def test_float_tensor_videos_give_the_uint8_score():
    from fastvmt.io.frames import frames_to_tensor

    video = translating_video(texture(4), BENT)
    as_float = frames_to_tensor(video)
    np.testing.assert_array_equal(as_uint8_video(as_float), video)
    assert motion_fidelity(as_float, video, grid=8) == pytest.approx(motion_fidelity(video, video, grid=8))


def _tracks(steps: np.ndarray) -> Tracks:
    """Tracks from per-step displacements ``(n, k, 2)``, all valid."""
    positions = np.concatenate([np.zeros_like(steps[:, :1]), np.cumsum(steps, axis=1)], axis=1)
    return Tracks(positions, np.ones(positions.shape[:2], dtype=bool))


def test_similarity_directions_and_diagonal_options():
    right, down = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    reference = _tracks(np.array([[right, right], [down, down]]))
    generated = _tracks(np.array([[right, right], [right, down], [-right, -right]]))
    similarity = tracklet_similarity(reference, generated)
    np.testing.assert_allclose(similarity, [[1.0, 0.5, -1.0], [0.0, 0.5, 0.0]])
    gen_to_ref, ref_to_gen = best_match_scores(similarity)
    assert gen_to_ref == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert ref_to_gen == pytest.approx((1.0 + 0.5) / 2)
    kept = best_match_scores(similarity, generated_kept=np.array([False, True, True]))
    assert kept == pytest.approx(((0.5 + 0.0) / 2, (0.5 + 0.5) / 2))
    square = tracklet_similarity(reference, reference)
    assert best_match_scores(square, diagonal="exclude") == pytest.approx((0.0, 0.0))
    assert best_match_scores(square, diagonal="release") == pytest.approx((0.0, 0.0))
    with pytest.raises(ValueError, match="same grid"):
        best_match_scores(similarity, diagonal="exclude")


def test_invalid_and_static_steps_count_as_no_motion():
    steps = np.array([[[1.0, 0.0], [0.0, 0.0]]])
    tracks = _tracks(steps)
    assert tracklet_similarity(tracks, tracks)[0, 0] == pytest.approx(0.5)
    lost = Tracks(tracks.positions, np.array([[True, True, False]]))
    assert tracklet_similarity(lost, tracks)[0, 0] == pytest.approx(0.5)
    assert np.isfinite(tracklet_similarity(lost, lost)).all()


def test_evaluation_reports_both_directions():
    video = translating_video(texture(5), BENT)
    result = evaluate_motion_fidelity(video, video[::-1].copy(), grid=8, direction="gen_to_ref")
    assert result.score == result.gen_to_ref
    assert result.tracker == "lk" and result.frames == len(video)
    assert 0.0 < result.reference_valid <= 1.0


@pytest.mark.parametrize(
    "reference,generated,kwargs,error,match",
    [
        (np.zeros((9, 32, 32, 3), np.uint8), np.zeros((8, 32, 32, 3), np.uint8), {}, ValueError, "9 frames"),
        (np.zeros((1, 32, 32, 3), np.uint8), np.zeros((1, 32, 32, 3), np.uint8), {}, ValueError, "at least 2"),
        (np.zeros((4, 32, 32, 4), np.uint8), np.zeros((4, 32, 32, 3), np.uint8), {}, ValueError, "RGB"),
        (np.zeros((4, 32, 32), np.uint8), np.zeros((4, 32, 32, 3), np.uint8), {}, ValueError, "4 dimensions"),
        (np.full((4, 3, 32, 32), 2.0), np.zeros((4, 32, 32, 3), np.uint8), {}, ValueError, r"\[-1, 1\]"),
        (np.zeros((4, 32, 32, 3), np.int32), np.zeros((4, 32, 32, 3), np.uint8), {}, TypeError, "dtype"),
        (np.zeros((4, 32, 32, 3), np.uint8), np.zeros((4, 32, 32, 3), np.uint8), {"grid": 1}, ValueError, "grid"),
        (np.zeros((4, 32, 32, 3), np.uint8), np.zeros((4, 32, 32, 3), np.uint8), {"tracker": "nope"}, LookupError,
         "available: cotracker, lk"),
    ],
)
def test_bad_inputs_raise_clear_errors(reference, generated, kwargs, error, match):
    with pytest.raises(error, match=match):
        motion_fidelity(reference, generated, **kwargs)


def test_bad_option_values_are_rejected():
    video = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises((TypeError, ValueError), match="direction"):
        motion_fidelity(video, video, direction="sideways")
    with pytest.raises((TypeError, ValueError), match="diagonal"):
        motion_fidelity(video, video, diagonal="maybe")
