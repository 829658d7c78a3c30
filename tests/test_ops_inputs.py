"""Frame pairs, argument checks and check mode of the AMF ops: every bad input gets a clear error early."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastvmt import checkmode, ops
from fastvmt.ops import checks

GRID = (2, 6, 8, 4)  # F, H, W, D


def features(shape=GRID, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype), torch.randn(shape, generator=gen, dtype=dtype)


# --- frame pairs ------------------------------------------------------------------------------------------


@given(frames=st.integers(1, 30), sf=st.integers(1, 8))
def test_forward_pairs_follow_the_spec(frames, sf):
    pairs = ops.frame_pairs(frames, sf)
    expected = [[i, j] for i in range(frames) for j in range(frames) if 0 <= j - i < sf]
    assert pairs.dtype == torch.long and pairs.tolist() == expected
    assert pairs.shape[0] == sum(min(sf, frames - i) for i in range(frames))


def test_default_forward_pairs_of_21_frames_are_78():
    assert ops.frame_pairs(21).shape == (78, 2)


@given(frames=st.integers(1, 12))
def test_all_pairs_are_every_ordered_pair_i_major(frames):
    pairs = ops.frame_pairs(frames, mode="all").tolist()
    assert pairs == [[i, j] for i in range(frames) for j in range(frames)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0,), "num_frames .frame count. must be >= 1"),
        ((3, 0), "sf .temporal span"),
        ((3, 2, "backward"), "pairs must be one of"),
    ],
)
def test_frame_pairs_rejects_bad_values(args, message):
    with pytest.raises(ValueError, match=message):
        ops.frame_pairs(*args)


# Wrong types: jaxtyping's runtime checks (on in tests) may raise first, a TypeError too; the ops' own checks,
# what users get without type checking, are also called directly.
@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (checks.check_frame_count, 2.0, "num_frames .frame count. must be an int"),
        (checks.check_span, 1.5, "sf .temporal span.* must be an int"),
        (checks.check_span, True, "sf"),
        (checks.check_window, 21.0, "window must be a positive odd int"),
        (checks.check_window, True, "window must be a positive odd int"),
    ],
)
def test_wrong_types_raise_type_errors(check, value, message):
    with pytest.raises(TypeError, match=message):
        check(value)


def test_ops_raise_type_errors_for_wrong_parameter_types():
    q, k = features()
    for kwargs in ({"sf": 1.5}, {"tau": "1"}, {"window": 21.0}, {"tile": "3x4"}, {"tile": (1.0, 2)}, {"tile": (2,)}):
        with pytest.raises(TypeError):
            ops.windowed_amf(q, k, **kwargs)


# --- argument checks of the ops ---------------------------------------------------------------------------

WINDOWED_OPS = [ops.windowed_amf, ops.window_starts]
ALL_OPS = [ops.full_amf, *WINDOWED_OPS]


def call(op, q, k, **kwargs):
    """``op`` on a small valid configuration (tile and window only for the windowed ops)."""
    if op in WINDOWED_OPS:
        kwargs = {"tile": (1, 1), "window": 3, **kwargs}
    return op(q, k, **kwargs)


@pytest.mark.parametrize("op", ALL_OPS)
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sf": 0}, ValueError, "sf .temporal span"),
        ({"pairs": "sideways"}, ValueError, "pairs must be one of"),
        ({"tau": 0.0}, ValueError, "tau must be finite and > 0"),
        ({"tau": -1.0}, ValueError, "tau"),
        ({"tau": float("nan")}, ValueError, "tau"),
        ({"tau": float("inf")}, ValueError, "tau"),
        ({"scale": 0.0}, ValueError, "scale"),
    ],
)
def test_ops_reject_bad_parameters(op, kwargs, error, message):
    q, k = features()
    with pytest.raises(error, match=message):
        op(q, k, **kwargs)


@pytest.mark.parametrize("op", WINDOWED_OPS)
@pytest.mark.parametrize("window", [0, -3, 4, 20])
def test_windowed_ops_need_a_positive_odd_window(op, window):
    q, k = features()
    with pytest.raises(ValueError, match="window must be a positive odd int"):
        op(q, k, tile=(2, 2), window=window)


@pytest.mark.parametrize("op", WINDOWED_OPS)
def test_tile_not_dividing_the_grid_names_sizes_and_tiles_that_fit(op):
    q, k = features((2, 6, 10, 4))
    with pytest.raises(ValueError) as info:
        op(q, k, tile=(4, 3))
    message = str(info.value)
    assert "tile 4x3" in message and "6x10" in message
    assert "[1, 2, 3, 6]" in message and "[1, 2, 5, 10]" in message  # the divisors of each axis


@pytest.mark.parametrize(
    ("tile", "error"),
    [((0, 2), ValueError), ((2, -1), ValueError), ((2,), TypeError), ((1.0, 2), TypeError), ("3x4", TypeError)],
)
def test_tile_must_be_two_positive_ints(tile, error):
    with pytest.raises(error, match="tile must be two positive ints"):
        checks.check_tile(tile, 6, 8)
    q, k = features()
    with pytest.raises(error):
        ops.windowed_amf(q, k, tile=tile)


def test_full_amf_rejects_unknown_mode():
    q, k = features()
    with pytest.raises(ValueError, match="mode must be one of"):
        ops.full_amf(q, k, mode="max")


# Shape and dtype errors: jaxtyping may catch them first in tests (see above).
@pytest.mark.parametrize(
    ("q", "k", "error", "message"),
    [
        (torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 6), ValueError, "same .F, H, W, D. shape"),
        (torch.zeros(6, 4, 5), torch.zeros(6, 4, 5), ValueError, "must be 4-D"),
        (torch.zeros(2, 3, 4, 5, dtype=torch.long), torch.zeros(2, 3, 4, 5), TypeError, "floating dtype"),
        (torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5, dtype=torch.float64), TypeError, "same dtype"),
        (torch.zeros(2, 0, 4, 5), torch.zeros(2, 0, 4, 5), ValueError, "must not be empty"),
        ([[1.0]], torch.zeros(2, 3, 4, 5), TypeError, "torch.Tensor"),
    ],
)
def test_feature_checks(q, k, error, message):
    with pytest.raises(error, match=message):
        checks.check_features(q, k)
    for op in ALL_OPS:
        with pytest.raises((error, TypeError)):  # TypeError: jaxtyping's shape check, when it runs first
            call(op, q, k)


# --- check mode: NaN/Inf scans -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("op", ALL_OPS)
def test_check_mode_rejects_non_finite_features(op, bad):
    q, k = features()
    k[1, 2, 3, 0] = bad
    with ops.checks_enabled(True), pytest.raises(ValueError, match="k holds 1 NaN/Inf"):
        call(op, q, k)
    with ops.checks_enabled(False):
        call(op, q, k)  # without check mode the scan is skipped


def test_check_mode_follows_the_environment_and_the_innermost_context(monkeypatch):
    monkeypatch.delenv(checkmode.ENV_CHECKS, raising=False)
    assert not ops.checks_active()
    monkeypatch.setenv(checkmode.ENV_CHECKS, "1")
    assert ops.checks_active()
    with ops.checks_enabled(False):
        assert not ops.checks_active()
        with ops.checks_enabled():
            assert ops.checks_active()
    monkeypatch.setenv(checkmode.ENV_CHECKS, "0")
    assert not ops.checks_active()


def test_check_mode_covers_the_losses():
    reference = torch.zeros(3, 4, 2)
    generated = torch.zeros(3, 4, 2)
    generated[0, 0, 0] = float("nan")
    with ops.checks_enabled(True):
        with pytest.raises(ValueError, match="generated holds 1 NaN/Inf"):
            ops.masked_mse_loss(reference, generated)
        with pytest.raises(ValueError, match="key_means holds"):
            ops.window_loss(torch.full((3, 2, 4), float("inf")), ops.frame_pairs(2, 2))
