"""Gradient schedulers: guided steps and compute-vs-reuse decisions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastvmt.strategies.presets import FASTVMT, GUIDED_FRACTION
from fastvmt.strategies.schedulers import (
    EveryIteration,
    Interval,
    LossPlateau,
    WarmupInterval,
    computed_iterations,
    guided_step_count,
)


def computed(scheduler, num_inner, loss=lambda j: 1.0):
    """The iterations ``scheduler`` computes at in the first guided step of 50."""
    return computed_iterations(scheduler, 0, 50, num_inner, loss)


def test_fastvmt_default_interval_computes_4_of_10():
    assert computed(Interval(), FASTVMT.inner_iterations) == [0, 3, 6, 9]


def test_every_computes_every_iteration():
    assert computed(EveryIteration(), 5) == [0, 1, 2, 3, 4]


def test_warmup_interval_spends_its_gradients_early():
    assert computed(WarmupInterval(warmup=2, every=4), 10) == [0, 1, 2, 6]


def test_loss_plateau_recomputes_while_loss_moves_and_reuses_on_plateau():
    moving = computed(LossPlateau(rtol=0.01, max_reuse=3), 10, loss=lambda j: 1.0 / (j + 1))
    flat = computed(LossPlateau(rtol=0.01, max_reuse=3), 10, loss=lambda j: 1.0)
    assert moving == list(range(10))
    assert flat == [0, 1, 5, 9]


@given(every=st.integers(1, 6), num_inner=st.integers(1, 20))
def test_interval_first_iteration_computes_and_count_matches(every, num_inner):
    iterations = computed(Interval(every=every), num_inner)
    assert iterations[0] == 0
    assert len(iterations) == -(-num_inner // every)


@given(fraction=st.floats(0.0, 1.0), num_steps=st.integers(1, 100))
def test_guided_steps_are_a_leading_block_of_the_right_size(fraction, num_steps):
    scheduler = Interval(guided_fraction=fraction)
    guided = [k for k in range(num_steps) if scheduler.is_guided(k, num_steps)]
    assert guided == list(range(len(guided)))
    assert len(guided) == guided_step_count(fraction, num_steps)
    assert abs(len(guided) - fraction * num_steps) <= 1
    assert (len(guided) > 0) == (fraction > 0)


def test_spec_default_guides_10_of_50():
    assert guided_step_count(GUIDED_FRACTION, 50) == 10


@pytest.mark.parametrize(
    "make", [lambda: Interval(every=0), lambda: Interval(guided_fraction=1.5), lambda: WarmupInterval(warmup=0),
             lambda: LossPlateau(rtol=-1.0)]
)
def test_bad_options_raise(make):
    with pytest.raises(ValueError):
        make()
