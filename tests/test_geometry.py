"""Video geometry rules: valid frame counts (4k+1), sizes (multiples of 16), latent and token shapes."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastvmt.geometry import (
    SIZE_MULTIPLE,
    TEMPORAL_FACTOR,
    check_frame_count,
    check_multiple,
    frame_count_at_least,
    frame_count_at_most,
    token_grid,
    video_frame_count,
    video_geometry,
)
from fastvmt.interfaces import TokenGrid


def _is_valid_count(frames: int) -> bool:
    return frames >= 1 and (frames - 1) % 4 == 0


def test_wan_constants():
    assert (TEMPORAL_FACTOR, SIZE_MULTIPLE) == (4, 16)
    assert token_grid(81, 480, 832) == TokenGrid(21, 30, 52)


@given(st.integers(1, 500))
def test_frame_count_at_most_is_the_nearest_valid_count_not_above(frames):
    below = frame_count_at_most(frames)
    assert _is_valid_count(below) and below <= frames < below + 4


@given(st.integers(1, 500))
def test_frame_count_at_least_is_the_nearest_valid_count_not_below(frames):
    above = frame_count_at_least(frames)
    assert _is_valid_count(above) and above - 4 < frames <= above


@given(st.integers(1, 500))
def test_check_frame_count_accepts_valid_counts_and_names_their_neighbours(frames):
    if _is_valid_count(frames):
        assert check_frame_count(frames) == frames
        return
    with pytest.raises(ValueError, match=r"num_frames must be 4k\+1") as excinfo:
        check_frame_count(frames)
    named = [int(n) for n in re.findall(r"\d+", str(excinfo.value).split("; use ")[1])]
    assert named == [frame_count_at_most(frames), frame_count_at_least(frames)]


def test_check_frame_count_minimum_and_types():
    with pytest.raises(ValueError, match="at least 5, got 1; use 5"):
        check_frame_count(1, minimum=5)
    with pytest.raises(ValueError, match="at least 1, got 0"):
        check_frame_count(0)
    with pytest.raises(TypeError):
        check_frame_count(9.0)
    with pytest.raises(ValueError, match="positive"):
        frame_count_at_least(0)


@given(st.integers(-20, 2000))
def test_check_multiple_accepts_multiples_of_16_and_names_the_nearest(value):
    if value >= 16 and value % 16 == 0:
        assert check_multiple("height", value) == value
        return
    with pytest.raises(ValueError, match="^height must be") as excinfo:
        check_multiple("height", value)
    named = [int(n) for n in re.findall(r"\d+", str(excinfo.value).split("; use ")[1])]
    assert named and all(n >= 16 and n % 16 == 0 and abs(n - value) < 16 for n in named if value > 0)


@given(st.integers(1, 30))
def test_video_frame_count_inverts_the_latent_frame_count(latent_frames):
    frames = video_frame_count(latent_frames)
    geometry = video_geometry(frames, 32, 48, latent_channels=16)
    assert geometry.latent_shape == (1, 16, latent_frames, 4, 6)
    assert geometry.grid == token_grid(frames, 32, 48) == TokenGrid(latent_frames, 2, 3)
