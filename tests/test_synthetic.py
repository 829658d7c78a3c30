"""The procedural clip: deterministic, and its pixels move exactly as its ground truth says."""

import numpy as np
import pytest

from fastvmt.synthetic import moving_scene


def test_same_seed_same_clip_other_seed_other_clip():
    first, motion = moving_scene(seed=7)
    again, _ = moving_scene(seed=7)
    other, _ = moving_scene(seed=8)
    assert first.shape == (17, 96, 128, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert np.abs(first.astype(int) - other).mean() > 10
    np.testing.assert_array_equal(motion.object_centers, moving_scene(seed=8)[1].object_centers)


def _bright_centroids(frames):
    """Centroid (row, col) of the bright pixels of each frame: the object, measured from pixels only."""
    centroids = []
    for frame in frames:
        rows, cols = np.nonzero(frame.mean(axis=-1) > 0.75 * 255)
        centroids.append((rows.mean(), cols.mean()))
    return np.array(centroids)


@pytest.mark.parametrize("velocity", [(1.0, 2.5), (-0.75, 1.25), (0.0, -3.0), (2.0, 0.4)])
def test_object_moves_by_its_velocity(velocity):
    frames, motion = moving_scene(17, 96, 128, seed=1, pan=(0.5, -1.0), object_velocity=velocity)
    centroids = _bright_centroids(frames)
    times = np.arange(len(frames))
    measured = [np.polyfit(times, centroids[:, axis], 1)[0] for axis in (0, 1)]
    np.testing.assert_allclose(measured, velocity, atol=0.05)
    np.testing.assert_allclose(centroids, motion.object_centers, atol=0.35)


def _background(motion, t, margin=3.0):
    """Pixels of frame t at least ``margin`` away from the disc."""
    rows, cols = np.mgrid[0 : motion.size[0], 0 : motion.size[1]]
    centre = motion.object_centers[t]
    return np.hypot(rows - centre[0], cols - centre[1]) > motion.object_radius + margin


@pytest.mark.parametrize(("pan", "step"), [((1.0, 2.0), 1), ((0.0, 1.5), 2), ((-0.5, 0.25), 4)])
def test_background_moves_by_the_pan(pan, step):
    """Where ``step * pan`` is a whole shift, ``frame[t + step]`` is ``frame[t]`` moved by it."""
    frames, motion = moving_scene(13, 64, 96, seed=2, pan=pan, object_velocity=(0.5, 1.0))
    dy, dx = (round(step * p) for p in pan)
    height, width = motion.size
    for t in range(len(frames) - step):
        src = (slice(max(-dy, 0), height - max(dy, 0)), slice(max(-dx, 0), width - max(dx, 0)))
        dst = (slice(max(dy, 0), height - max(-dy, 0)), slice(max(dx, 0), width - max(-dx, 0)))
        visible = _background(motion, t)[src] & _background(motion, t + step)[dst]
        assert visible.mean() > 0.5
        difference = np.abs(frames[t + step][dst].astype(int) - frames[t][src])[visible]
        assert difference.max() <= 1  # bilinear samples of the same texture points, rounded to uint8


def test_ground_truth_flow_warps_each_frame_onto_the_next():
    frames, motion = moving_scene(9, 80, 96, seed=4, pan=(0.0, 2.0), object_velocity=(1.0, -2.0))
    rows, cols = np.mgrid[0:80, 0:96]
    for t in range(len(frames) - 1):
        flow = motion.flow(t)
        assert flow.shape == (80, 96, 2)
        to_rows = rows + np.round(flow[..., 0]).astype(int)
        to_cols = cols + np.round(flow[..., 1]).astype(int)
        inside = (to_rows >= 0) & (to_rows < 80) & (to_cols >= 0) & (to_cols < 96)
        # Skip the disc's rim (mixed pixels) and background the disc covers in the next frame.
        rim = np.abs(np.hypot(rows - motion.object_centers[t, 0], cols - motion.object_centers[t, 1])
                     - motion.object_radius) < 2  # fmt: skip
        covered_next = motion.object_mask(t + 1)[to_rows.clip(0, 79), to_cols.clip(0, 95)] > 0
        on_object = motion.object_mask(t) == 1
        check = inside & ~rim & (on_object | ~covered_next)
        assert on_object[check].sum() > 300 and (~on_object[check]).sum() > 3000
        moved = frames[t + 1][to_rows[check], to_cols[check]].astype(int)
        assert np.abs(moved - frames[t][check]).max() <= 1


def test_object_is_bright_and_background_is_not():
    frames, motion = moving_scene(5, seed=5)
    luminance = frames.mean(axis=-1)
    for t in range(5):
        mask = motion.object_mask(t)
        assert luminance[t][mask == 1].min() >= 0.8 * 255 - 1
        assert luminance[t][mask == 0].max() <= 0.65 * 255 + 1


def test_an_object_leaving_the_frame_is_refused():
    with pytest.raises(ValueError, match="leaves the 128x96 frame.*velocity\\[1\\]"):
        moving_scene(17, 96, 128, object_velocity=(0.0, 9.0))
