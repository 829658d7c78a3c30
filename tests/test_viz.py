"""Flow pictures: colour wheel conventions, arrows, labelled panels and AMF frames."""

import colorsys

import numpy as np
import pytest
import torch

from fastvmt.interfaces import TokenGrid
from fastvmt.viz import (
    amf_frames,
    color_wheel_legend,
    consecutive_flow,
    draw_arrows,
    flow_to_color,
    side_by_side,
)

AXES = {"right": (0.0, 1.0), "down": (1.0, 0.0), "left": (0.0, -1.0), "up": (-1.0, 0.0)}


def _hsv(rgb):
    return colorsys.rgb_to_hsv(*(np.asarray(rgb, float) / 255))


def test_axis_directions_get_distinct_hues_and_zero_is_white():
    colors = flow_to_color(np.array([AXES[name] for name in AXES] + [(0.0, 0.0)]), max_magnitude=1.0)
    assert colors.dtype == np.uint8 and colors.shape == (5, 3)
    hues = [_hsv(c)[0] * 360 for c in colors[:4]]
    for a in range(4):
        for b in range(a + 1, 4):
            gap = abs(hues[a] - hues[b])
            assert min(gap, 360 - gap) > 40, (list(AXES)[a], list(AXES)[b], hues)
    assert colors[4].tolist() == [255, 255, 255]
    # The Middlebury legend: right red, down yellow, left cyan-blue, up violet.
    right, down, left, up = hues
    assert min(right, 360 - right) < 10 and 40 < down < 70 and 180 < left < 215 and 250 < up < 290


@pytest.mark.parametrize("direction", list(AXES.values()) + [(0.6, -0.8)])
def test_saturation_grows_with_magnitude(direction):
    magnitudes = np.linspace(0, 1, 11)
    colors = flow_to_color(magnitudes[:, None] * np.array(direction), max_magnitude=1.0)
    saturation = [_hsv(c)[1] for c in colors]
    assert saturation[0] == 0 and saturation[-1] > 0.95
    assert all(b > a for a, b in zip(saturation, saturation[1:]))
    beyond = flow_to_color(np.array([2 * np.array(direction)]), max_magnitude=1.0)[0]
    assert _hsv(beyond)[2] < 0.8  # beyond max_magnitude: same hue, darkened


def test_default_scale_is_the_largest_magnitude_and_batch_shape_is_kept():
    flow = np.random.default_rng(0).normal(size=(2, 3, 4, 2))
    colors = flow_to_color(flow)
    assert colors.shape == (2, 3, 4, 3)
    largest = np.unravel_index(np.argmax(np.hypot(flow[..., 0], flow[..., 1])), flow.shape[:3])
    assert _hsv(colors[largest])[1] > 0.95
    np.testing.assert_array_equal(flow_to_color(2 * flow), colors)  # scale-free without max_magnitude
    assert (flow_to_color(np.zeros((3, 2))) == 255).all()
    assert flow_to_color(np.array([[np.nan, 1.0]])).tolist() == [[0, 0, 0]]


def test_legend_points_from_its_centre():
    legend = color_wheel_legend(65)
    assert legend.shape == (65, 65, 3)
    assert legend[32, 32].tolist() == [255, 255, 255] and legend[0, 0].tolist() == [255, 255, 255]
    for d_row, d_col in AXES.values():
        rim = legend[32 + int(30 * d_row), 32 + int(30 * d_col)]
        np.testing.assert_allclose(rim, flow_to_color(np.array([d_row, d_col]), max_magnitude=1.0), atol=20)


def _changed(before, after):
    return np.nonzero((before != after).any(axis=-1))


def test_arrows_follow_the_flow_direction():
    frame = np.zeros((64, 64, 3), np.uint8)
    flow = np.zeros((4, 4, 2))
    dots = draw_arrows(frame, flow, color=(255, 0, 0))  # still tokens are dots
    flow[1, 1] = (0.0, 1.5)  # token (1, 1): pixel centre (23.5, 23.5), 1.5 tokens = 24 pixels to the right
    drawn = draw_arrows(frame, flow, color=(255, 0, 0))
    assert (frame == 0).all()  # the input is not modified
    rows, cols = _changed(dots, drawn)
    assert cols.min() >= 22 and 46 <= cols.max() <= 49
    assert np.abs(rows - 23.5).max() <= 5 and (drawn[23, 30:44] == (255, 0, 0)).all()

    flow[1, 1] = (-1.0, 0.0)  # up by one token = 16 pixels
    rows, cols = _changed(dots, draw_arrows(frame, flow, color=(255, 0, 0)))
    assert rows.max() <= 25 and 6 <= rows.min() <= 9
    assert np.abs(cols - 23.5).max() <= 5


def test_arrow_stride_and_scale():
    frame = np.zeros((32, 32, 3), np.uint8)
    flow = np.zeros((8, 8, 2))
    every = draw_arrows(frame, flow)
    sparse = draw_arrows(frame, flow, stride=4)
    assert len(_changed(frame, every)[0]) == 64 and len(_changed(frame, sparse)[0]) == 4
    flow[:] = (0.0, 1.0)
    short = len(_changed(frame, draw_arrows(frame, flow, stride=4))[0])
    long = len(_changed(frame, draw_arrows(frame, flow, stride=4, scale=3.0))[0])
    assert long > short
    with pytest.raises(ValueError, match="stride"):
        draw_arrows(frame, flow, stride=0)


def test_side_by_side_scales_labels_and_broadcasts_images():
    video = np.full((3, 32, 40, 3), 100, np.uint8)
    small = np.full((8, 10, 3), 200, np.uint8)
    joined = side_by_side([video, small], gap=4)
    assert joined.shape == (3, 32, 40 + 4 + 40, 3)
    assert (joined[:, :, :40] == 100).all() and (joined[:, :, 40:44] == 0).all() and (joined[:, :, 44:] == 200).all()

    labelled = side_by_side([video, small], labels=["reference", "flow"], gap=4)
    strip = labelled.shape[1] - 32
    assert strip > 0 and labelled.shape[0] == 3
    assert (labelled[:, strip:, :40] == 100).all()  # the panel below its label is intact
    assert labelled[0, :strip, :40].max() > 128 and labelled[0, :strip, 44:].max() > 128  # text drawn
    np.testing.assert_array_equal(labelled[0], labelled[2])

    images = side_by_side([small, small[:4]], gap=0)
    assert images.shape == (8, 30, 3)


def test_side_by_side_refuses_mismatched_inputs():
    video = np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="frame counts"):
        side_by_side([video, video[:2]])
    with pytest.raises(ValueError, match="one label per panel"):
        side_by_side([video], labels=["a", "b"])


def _forward_amf(frames, height, width, span):
    """A synthetic AMF: pair (i, j) moves every token by (j - i) * (i + 1, -1) tokens."""
    pairs = torch.tensor([(i, j) for i in range(frames) for j in range(i, min(frames, i + span))])
    step = torch.stack([pairs[:, 0] + 1.0, -torch.ones(len(pairs))], dim=-1) * (pairs[:, 1] - pairs[:, 0])[:, None]
    return step[:, None, :].expand(-1, height * width, -1).contiguous(), pairs


def test_consecutive_flow_picks_the_pairs_i_to_i_plus_1():
    displacement, pairs = _forward_amf(4, 3, 5, span=3)
    flow = consecutive_flow(displacement, pairs, TokenGrid(4, 3, 5))
    assert flow.shape == (3, 3, 5, 2)
    for i in range(3):
        assert (flow[i] == np.array([i + 1.0, -1.0])).all()
    with pytest.raises(ValueError, match="no pair \\(0, 1\\)"):
        consecutive_flow(*_forward_amf(4, 3, 5, span=1), (4, 3, 5))
    with pytest.raises(ValueError, match="grid"):
        consecutive_flow(displacement, pairs, (4, 5, 5))


def test_amf_frames_colours_share_one_scale_and_arrows_sit_on_their_frames():
    displacement, pairs = _forward_amf(3, 4, 5, span=2)
    video = np.stack([np.full((32, 40, 3), 10 * t, np.uint8) for t in range(9)])  # 4 (3 - 1) + 1 frames
    pictures = amf_frames(displacement, pairs, (3, 4, 5), frames=video, stride=2)
    assert pictures.colors.shape == (2, 4, 5, 3) and pictures.arrows.shape == (2, 32, 40, 3)
    assert pictures.max_magnitude == pytest.approx(np.hypot(2, 1))
    assert _hsv(pictures.colors[1, 0, 0])[1] > _hsv(pictures.colors[0, 0, 0])[1]  # larger flow, more saturated
    for i in range(2):  # pair (i, i + 1) is drawn on video frame 4 i
        assert np.median(pictures.arrows[i]) == 40 * i
        assert (pictures.arrows[i] != 40 * i).any()
    assert amf_frames(displacement, pairs, TokenGrid(3, 4, 5)).arrows is None
    with pytest.raises(ValueError, match="give 3 frames"):
        amf_frames(displacement, pairs, (3, 4, 5), frames=video[:7])
