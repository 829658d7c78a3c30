"""The guidance losses of docs/algorithm.md#losses: AMF loss, masked MSE, corresponding-window loss."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastvmt import ops


@pytest.fixture(autouse=True, scope="module")
def _check_mode():
    with ops.checks_enabled(True):
        yield


def randn(shape, seed, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- AMF loss ---------------------------------------------------------------------------------------------


@given(frames=st.integers(1, 6), sf=st.integers(1, 4), tokens=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_amf_loss_is_zero_for_equal_flows_and_detaches_the_reference(frames, sf, tokens, seed):
    pairs = ops.frame_pairs(frames, sf)
    reference = randn((len(pairs), tokens, 2), seed).requires_grad_(True)
    generated = reference.detach().clone().requires_grad_(True)
    loss = ops.amf_loss(reference, generated, pairs=pairs, sf=sf)
    assert loss.shape == () and float(loss) == 0.0
    (ops.amf_loss(reference, generated + 1.0, pairs=pairs, sf=sf)).backward()
    assert reference.grad is None and generated.grad is not None


@given(frames=st.integers(2, 6), sf=st.integers(1, 5), alpha=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_amf_loss_weights_each_pair_by_its_offset(frames, sf, alpha, seed):
    """An error confined to pair n costs w_d * sum_s ||err||^2 / N, w_d = 1 - alpha * d / (sf - 1)."""
    pairs = ops.frame_pairs(frames, sf)
    n_pairs, tokens = len(pairs), 3
    reference = torch.zeros(n_pairs, tokens, 2, dtype=torch.float64)
    error = randn((tokens, 2), seed, torch.float64)
    for n, (i, j) in enumerate(pairs.tolist()):
        generated = reference.clone()
        generated[n] = error
        weight = 1.0 if sf == 1 else 1.0 - alpha * (j - i) / (sf - 1)
        loss = ops.amf_loss(reference, generated, pairs=pairs, sf=sf, alpha=alpha)
        assert float(loss) == pytest.approx(weight * float(error.square().sum()) / n_pairs, rel=1e-12)


def test_amf_loss_default_weights_of_the_release():
    pairs = ops.frame_pairs(5, 4)
    weights = ops.offset_weights(pairs, 4)
    offsets = (pairs[:, 1] - pairs[:, 0]).tolist()
    expected = {0: 1.0, 1: 1 - 0.2 / 3, 2: 1 - 0.4 / 3, 3: 0.8}
    assert weights.tolist() == pytest.approx([expected[d] for d in offsets])


def test_amf_loss_uses_absolute_offsets_for_all_pairs():
    pairs = ops.frame_pairs(3, mode="all")
    weights = ops.offset_weights(pairs, 3, alpha=0.5)
    by_pair = dict(zip(map(tuple, pairs.tolist()), weights.tolist()))
    assert by_pair[(0, 2)] == by_pair[(2, 0)] == pytest.approx(0.5)
    assert by_pair[(1, 0)] == by_pair[(0, 1)] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"sf": 2}, ValueError, "frames apart do not fit the temporal span sf=2"),
        ({"sf": 4, "alpha": 1.5}, ValueError, "alpha must be a number in"),
        ({"sf": 0}, ValueError, "sf .temporal span"),
    ],
)
def test_amf_loss_rejects_bad_arguments(kwargs, error, message):
    pairs = ops.frame_pairs(4, 4)
    flows = torch.zeros(len(pairs), 3, 2)
    with pytest.raises(error, match=message):
        ops.amf_loss(flows, flows, pairs=pairs, **kwargs)


def test_loss_shape_errors_name_the_problem():
    from fastvmt.ops.losses import _check_displacements, _check_pairs

    pairs = ops.frame_pairs(3, 2)
    reference, generated = torch.zeros(len(pairs), 3, 2), torch.zeros(len(pairs), 4, 2)
    with pytest.raises(ValueError, match="differ in shape"):
        _check_displacements(reference, generated)
    with pytest.raises(ValueError, match=r"pairs must have shape \(2, 2\)"):
        _check_pairs(pairs, 2)
    # through the op (jaxtyping's TypeError may come first when type checking is on)
    with pytest.raises((ValueError, TypeError)):
        ops.amf_loss(reference, generated, pairs=pairs, sf=2)
    with pytest.raises((ValueError, TypeError)):
        ops.amf_loss(torch.zeros(2, 3, 2), torch.zeros(2, 3, 2), pairs=pairs, sf=2)


# --- masked MSE ---------------------------------------------------------------------------------------------


@given(pairs=st.integers(1, 4), tokens=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_masked_mse_averages_over_tokens_where_the_reference_moves(pairs, tokens, seed):
    reference = randn((pairs, tokens, 2), seed, torch.float64)
    still = randn((pairs, tokens), seed + 1) > 0
    reference[still] = 0.0
    generated = randn((pairs, tokens, 2), seed + 2, torch.float64)
    loss = ops.masked_mse_loss(reference, generated)
    moving = ~still
    if moving.any():
        expected = torch.nn.functional.mse_loss(generated[moving], reference[moving])
        assert float(loss) == pytest.approx(float(expected), rel=1e-12)
    else:
        assert float(loss) == 0.0
    # what the generated flow does where the reference is still does not matter
    changed = generated.clone()
    changed[still] += 5.0
    assert float(ops.masked_mse_loss(reference, changed)) == pytest.approx(float(loss), rel=1e-12)
    assert float(ops.masked_mse_loss(reference, reference)) == 0.0


def test_masked_mse_is_zero_with_a_graph_when_nothing_moves():
    generated = torch.ones(2, 3, 2, requires_grad=True)
    loss = ops.masked_mse_loss(torch.zeros(2, 3, 2), generated)
    assert float(loss) == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(generated.grad, torch.zeros_like(generated))


# --- corresponding-window loss -------------------------------------------------------------------------------


def literal_window_loss(key_means, pairs):
    """The definition, loop by loop."""
    by_pair = {tuple(p): n for n, p in enumerate(pairs.tolist())}
    per_anchor = []
    for i in sorted({i for i, _ in by_pair}):
        targets = sorted(j for a, j in by_pair if a == i and j > i)
        if len(targets) < 2:
            continue
        total = 0.0
        for p in range(key_means.shape[1]):
            for t in range(len(targets) - 1):
                step = key_means[by_pair[(i, targets[t + 1])], p] - key_means[by_pair[(i, targets[t])], p]
                total += float(step.double().norm()) / (len(targets) - 1)
        per_anchor.append(total / key_means.shape[1])
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


@given(
    frames=st.integers(1, 6),
    sf=st.integers(1, 4),
    mode=st.sampled_from(["forward", "all"]),
    tiles=st.integers(1, 4),
    dim=st.integers(1, 5),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_window_loss_equals_the_literal_loop(frames, sf, mode, tiles, dim, shuffle, seed):
    pairs = ops.frame_pairs(frames, sf, mode)
    if shuffle:  # the loss must not depend on the order of the pairs
        pairs = pairs[torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))]
    key_means = randn((len(pairs), tiles, dim), seed).requires_grad_(True)
    loss = ops.window_loss(key_means, pairs)
    assert loss.dtype == torch.float32 and loss.requires_grad
    assert float(loss) == pytest.approx(literal_window_loss(key_means.detach(), pairs), rel=1e-5, abs=1e-6)
    loss.backward()
    assert torch.isfinite(key_means.grad).all()


def test_window_loss_ignores_anchors_with_fewer_than_two_later_targets():
    pairs = ops.frame_pairs(4, 3)  # anchors 0, 1 have two targets j > i; 2 has one; 3 none
    key_means = randn((len(pairs), 2, 3), 0)
    loss = ops.window_loss(key_means, pairs)
    ignored = [n for n, (i, j) in enumerate(pairs.tolist()) if i >= 2 or j == i]
    changed = key_means.clone()
    changed[ignored] += 10.0
    assert float(ops.window_loss(changed, pairs)) == pytest.approx(float(loss))
    counted = [n for n, (i, j) in enumerate(pairs.tolist()) if i == 0 and j > 0][0]
    changed[counted] += 1.0
    assert float(ops.window_loss(changed, pairs)) != pytest.approx(float(loss))


def test_window_loss_is_zero_for_constant_windows_and_without_counted_anchors():
    pairs = ops.frame_pairs(5, 4)
    constant = randn((1, 3, 4), 1).expand(len(pairs), 3, 4).clone().requires_grad_(True)
    loss = ops.window_loss(constant, pairs)
    assert float(loss) == 0.0
    loss.backward()
    assert torch.isfinite(constant.grad).all()
    two_frames = ops.frame_pairs(2, 4)  # anchor 0 has a single target j > 0
    key_means = randn((len(two_frames), 3, 4), 2).requires_grad_(True)
    loss = ops.window_loss(key_means, two_frames)
    assert float(loss) == 0.0 and loss.requires_grad


def test_window_loss_computes_in_float32_for_half_inputs():
    pairs = ops.frame_pairs(4, 4)
    key_means = randn((len(pairs), 2, 3), 4).to(torch.bfloat16)
    loss = ops.window_loss(key_means, pairs)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx(literal_window_loss(key_means.float(), pairs), rel=1e-5)
