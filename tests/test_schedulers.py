"""Gradient schedulers: guided steps and compute-vs-reuse decisions."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastvmt.interfaces import InnerStep
from fastvmt.strategies.schedulers import EveryIteration, Interval, LossPlateau, WarmupInterval, guided_step_count


def computed_iterations(scheduler, num_inner, losses_fn=lambda j: 1.0):
    """Drive a scheduler like the guidance loop does; return the iterations that computed."""
    losses, reused, computed = [], 0, []
    for j in range(num_inner):
        if scheduler.should_compute(InnerStep(0, 50, j, num_inner, tuple(losses), reused)):
            computed.append(j)
            losses.append(losses_fn(j))
            reused = 0
        else:
            reused += 1
    return computed


def test_fastvmt_default_interval_computes_4_of_10():
    assert computed_iterations(Interval(every=3), 10) == [0, 3, 6, 9]


def test_every_computes_every_iteration():
    assert computed_iterations(EveryIteration(), 5) == [0, 1, 2, 3, 4]


def test_warmup_interval_spends_its_gradients_early():
    assert computed_iterations(WarmupInterval(warmup=2, every=4), 10) == [0, 1, 2, 6]


def test_loss_plateau_recomputes_while_loss_moves_and_reuses_on_plateau():
    moving = computed_iterations(LossPlateau(rtol=0.01, max_reuse=3), 10, losses_fn=lambda j: 1.0 / (j + 1))
    flat = computed_iterations(LossPlateau(rtol=0.01, max_reuse=3), 10, losses_fn=lambda j: 1.0)
    assert moving == list(range(10))
    assert flat == [0, 1, 5, 9]


@given(every=st.integers(1, 6), num_inner=st.integers(1, 20))
def test_interval_first_iteration_computes_and_count_matches(every, num_inner):
    computed = computed_iterations(Interval(every=every), num_inner)
    assert computed[0] == 0
    assert len(computed) == -(-num_inner // every)


@given(fraction=st.floats(0.0, 1.0), num_steps=st.integers(1, 100))
def test_guided_steps_are_a_leading_block_of_the_right_size(fraction, num_steps):
    scheduler = Interval(guided_fraction=fraction)
    guided = [k for k in range(num_steps) if scheduler.is_guided(k, num_steps)]
    assert guided == list(range(len(guided)))
    assert len(guided) == guided_step_count(fraction, num_steps)
    assert abs(len(guided) - fraction * num_steps) <= 1
    assert (len(guided) > 0) == (fraction > 0)


def test_spec_default_guides_10_of_50():
    assert guided_step_count(0.2, 50) == 10


@pytest.mark.parametrize(
    "make", [lambda: Interval(every=0), lambda: Interval(guided_fraction=1.5), lambda: WarmupInterval(warmup=0),
             lambda: LossPlateau(rtol=-1.0)]
)
def test_bad_options_raise(make):
    with pytest.raises(ValueError):
        make()
