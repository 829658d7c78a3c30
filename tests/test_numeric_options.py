"""Numeric options: every number a user gives is refused when it is not finite, of the wrong type or out of range,
with a ValueError naming it; the bounds on sizes and counts sit exactly where they are documented."""

import math

import pytest

from fastvmt.geometry import LARGEST_RELEASED_VIDEO, MAX_FRAME_PIXELS, MAX_VIDEO_PIXELS, SIZE_FACTOR, check_video_size
from fastvmt.strategies.presets import FASTVMT
from fastvmt.strategies.spec import CFG_SCALE_RANGE, MAX_LEARNING_RATE, Strategy, check_field
from fastvmt.values import check_int, check_real

NOT_FINITE = [math.nan, math.inf, -math.inf]
NOT_NUMBERS = ["1", None, True, [1.0]]


@pytest.mark.parametrize("value", NOT_FINITE + NOT_NUMBERS)
def test_check_real_refuses_what_is_not_a_finite_number(value):
    with pytest.raises(ValueError, match="x must be a"):
        check_real("x", value)


def test_check_real_bounds_are_open_or_closed_as_asked():
    assert check_real("x", 0, low=0.0) == 0.0 and isinstance(check_real("x", 3, low=0.0), float)
    with pytest.raises(ValueError, match=r"x must be > 0, got 0"):
        check_real("x", 0, low=0.0, low_open=True)
    with pytest.raises(ValueError, match=r"x must be in \[0, 1\], got 1.5"):
        check_real("x", 1.5, low=0.0, high=1.0)


@pytest.mark.parametrize("value", [1.0, True, "3", math.nan])
def test_check_int_refuses_what_is_not_an_integer(value):
    with pytest.raises(ValueError, match="n must be an integer"):
        check_int("n", value)


#: Each numeric strategy field: a value it takes, and values it refuses (besides NaN and infinity).
FIELDS = {
    "cfg_scale": (5, [-0.5, CFG_SCALE_RANGE[1] + 1, 1e30]),
    "denoising_strength": (1, [0.0, 1.0001, -1.0]),
    "shift": (3, [0.0, -2.0]),
    "weight_decay": (0, [-0.01, 1.5]),
    "learning_rate": ([0.003, 0.002], [0.001, [0.1], [0.1, MAX_LEARNING_RATE * 2], [-0.1, 0.1], ["a", 0.1]]),
    "inner_iterations": (3, [0, 2.0, "abc"]),
    "block": (0, [-1, 1.5, True]),
}


@pytest.mark.parametrize("name", list(FIELDS))
def test_each_strategy_field_takes_its_range_and_refuses_the_rest(name):
    good, bad = FIELDS[name]
    assert FASTVMT.override(**{name: good}) == FASTVMT.override(**{name: check_field(name, good)})
    refused = bad + ([] if name in ("inner_iterations", "block") else NOT_FINITE)
    if name == "learning_rate":
        refused += [[value, 0.1] for value in NOT_FINITE]
    for value in refused:
        with pytest.raises(ValueError, match=f"strategy 'fastvmt': {name}"):
            FASTVMT.override(**{name: value})


def test_a_strategy_read_from_json_is_checked_field_by_field():
    data = {**FASTVMT.to_dict(), "inner_iterations": "ten"}
    with pytest.raises(ValueError, match="inner_iterations must be an integer, got str 'ten'"):
        Strategy.from_dict(data)
    partial = {key: value for key, value in FASTVMT.to_dict().items() if key != "shift"}
    with pytest.raises(ValueError, match="strategy fields missing: shift"):
        Strategy.from_dict(partial)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("loss.lambda_amf", math.nan, "lambda_amf must be a finite number"),
        ("loss.lambda_win", -1.0, "lambda_win must be >= 0"),
        ("loss.alpha", math.inf, "alpha must be a number in"),
        ("extractor.tau", 0.0, "tau must be > 0"),
        ("extractor.sf", 0, "sf must be an integer >= 1"),
        ("extractor.window", 4, "window must be a positive odd int"),
        ("extractor.tile", (3, 0), "tile rows and columns must be an integer >= 1"),
        ("extractor.tile", 3, "tile"),  # in the test run, the typing hook words it
        ("scheduler.guided_fraction", math.nan, "guided_fraction must be a finite number"),
        ("scheduler.every", 0, "every must be an integer >= 1"),
        ("extractor.window", "abc", "window"),
    ],
)
def test_component_options_are_checked_when_the_components_are_built(option, value, message):
    from fastvmt.strategies.components import build_components

    with pytest.raises(ValueError, match=message):
        build_components(FASTVMT.override(**{option: value}))


def test_json_integers_reach_float_options_as_floats():
    from fastvmt.strategies.components import build_components

    components = build_components(FASTVMT.override(**{"loss.lambda_win": 2, "scheduler.guided_fraction": 1}))
    assert components.loss.lambda_win == 2.0 and isinstance(components.loss.lambda_win, float)
    assert components.scheduler.guided_fraction == 1.0


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("cfg_scale", math.nan, "cfg_scale must be a finite number"),
        ("cfg_scale", 101.0, r"cfg_scale must be in \[0, 100\]"),
        ("denoising_strength", math.inf, "denoising_strength must be a finite number"),
        ("num_inference_steps", 1001, r"\[1, 1000\]"),
        ("num_inference_steps", 2.5, "must be an integer"),
        ("seed", 2**64, "seed must be an integer in"),
        ("num_frames", "nine", "num_frames must be an integer"),
        ("height", 50, "multiple of 16"),
        ("offload", "yes", "offload must be true or false"),
        ("dtype", "float64", "dtype must be one of"),
    ],
)
def test_run_settings_are_checked_value_by_value(setting, value, message):
    from fastvmt.transfer_run import check_options

    with pytest.raises(ValueError, match=message):
        check_options({setting: value})


def test_eval_numbers_are_checked():
    import numpy as np

    from fastvmt.metrics import evaluate_motion_fidelity
    from fastvmt.metrics.motion_fidelity import MAX_GRID, check_grid
    from fastvmt.metrics.trackers.lk import LucasKanadeTracker

    video = np.zeros((5, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="min_motion"):
        evaluate_motion_fidelity(video, video, min_motion=math.nan)
    assert check_grid(MAX_GRID) == MAX_GRID and 3 * 8 * MAX_GRID**4 <= 2**30 < 3 * 8 * (MAX_GRID + 1) ** 4
    with pytest.raises(ValueError, match="grid"):
        evaluate_motion_fidelity(video, video, grid=MAX_GRID + 1)
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        LucasKanadeTracker(epsilon=0.0)


def test_the_size_bound_sits_at_nine_times_wans_largest_released_video():
    frames, height, width = LARGEST_RELEASED_VIDEO
    assert (MAX_FRAME_PIXELS, MAX_VIDEO_PIXELS) == (SIZE_FACTOR * height * width, SIZE_FACTOR * frames * height * width)
    check_video_size(frames, 3 * height, 3 * width)  # 81 frames of 4K UHD: the largest video taken
    check_video_size(4093, 16, 16)  # 1024 latent frames
    for refused, message in (((frames + 4, 3 * height, 3 * width), "pixels; fastvmt takes at most"),
                             ((5, 3 * height + 16, 3 * width), "a frame"),
                             ((5, 16384 + 16, 16), "16384 pixels a side"),
                             ((4097, 16, 16), "more than the 4093")):
        with pytest.raises(ValueError, match=message):
            check_video_size(*refused)


def test_steps_and_seeds_have_their_bounds():
    from fastvmt.generation.sampling import MAX_SEED, MAX_STEPS, FlowMatchSchedule, check_seed

    assert len(FlowMatchSchedule.wan(MAX_STEPS, shift=5.0)) == MAX_STEPS
    assert check_seed(0) == 0 and check_seed(MAX_SEED) == MAX_SEED
    for steps in (0, MAX_STEPS + 1, 10**12):
        with pytest.raises(ValueError, match=r"\[1, 1000\]"):
            FlowMatchSchedule.wan(steps, shift=5.0)
    for seed in (-1, MAX_SEED + 1, 1.0):
        with pytest.raises(ValueError, match="seed"):
            check_seed(seed)
