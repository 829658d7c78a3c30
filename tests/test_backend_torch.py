"""Backends against the reference oracle (docs/algorithm.md#properties, (d)), and the torch backend's own machinery.

Every registered backend except ``reference`` that says it can run the case on CPU is compared with the
reference, values and gradients w.r.t. q and k, on drawn shapes with arbitrary (not only coarse-pass) window
corners. Tolerances: float64 1e-9 absolute and relative; float32 2e-4 absolute + 1e-4 relative (positions are
up to ~12 tokens, gradients O(1-10); only summation order and the backends' float32 softmax differ).
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastvmt import ops, plugins
from fastvmt.backends import Case, backend_named
from fastvmt.backends.torch_backend import TorchBackend
from fastvmt.backends.torch_backend.grouping import plan_windows

from tests.support.windows import assert_window_starts_agree

BACKENDS = [name for name in plugins.names("backend") if name != "reference"]
DTYPES = [torch.float32, torch.float64]
TOLERANCES = {torch.float64: {"atol": 1e-9, "rtol": 1e-9}, torch.float32: {"atol": 2e-4, "rtol": 1e-4}}
REFERENCE = backend_named("reference")


def runnable(name, dtype, op):
    backend = backend_named(name)
    ok, reason = backend.supports(Case(op, torch.device("cpu"), dtype, (1, 1, 1, 8), True))
    if not ok:
        pytest.skip(f"{name}: {reason}")
    return backend


@st.composite
def cases(draw, max_frames=3):
    th, tw = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    h, w = th * draw(st.integers(1, 4)), tw * draw(st.integers(1, 4))
    window = draw(st.sampled_from([1, 3, 5, 7, 9]))
    return {
        "frames": draw(st.integers(1, max_frames)),
        "size": (h, w),
        "dim": draw(st.sampled_from([1, 3, 8, 16])),
        "tile": (th, tw),
        "extent": (min(window, h), min(window, w)),
        "sf": draw(st.integers(1, 3)),
        "scale": draw(st.floats(0.1, 2.0)),
        "seed": draw(st.integers(0, 2**16)),
    }


def inputs(case, dtype):
    """q, k (with gradients), pairs and arbitrary in-bounds window corners, from a seeded generator."""
    gen = torch.Generator().manual_seed(case["seed"])
    (h, w), d = case["size"], case["dim"]
    q = torch.randn(case["frames"], h, w, d, generator=gen, dtype=dtype).requires_grad_(True)
    k = torch.randn(case["frames"], h, w, d, generator=gen, dtype=dtype).requires_grad_(True)
    pairs = ops.frame_pairs(case["frames"], case["sf"])
    tiles = (h // case["tile"][0]) * (w // case["tile"][1])
    (eh, ew), n = case["extent"], len(pairs)
    rows = torch.randint(0, h - eh + 1, (n, tiles), generator=gen)
    cols = torch.randint(0, w - ew + 1, (n, tiles), generator=gen)
    starts = torch.stack([rows, cols], dim=-1)
    return q, k, pairs, starts, gen


def assert_same_values_and_grads(out, expected, q, k, gen, tol):
    torch.testing.assert_close(out, expected, **tol)
    cotangent = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    for got, want in zip(torch.autograd.grad(out, (q, k), cotangent), torch.autograd.grad(expected, (q, k), cotangent)):
        torch.testing.assert_close(got, want, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
@given(case=cases())
def test_windowed_positions_equal_the_reference(name, dtype, case):
    backend = runnable(name, dtype, "windowed")
    q, k, pairs, starts, gen = inputs(case, dtype)
    args = (pairs, starts, case["tile"], case["extent"], case["scale"])
    out = backend.windowed_positions(q, k, *args)
    assert out.dtype == dtype and out.shape == (len(pairs), q.shape[1] * q.shape[2], 2)
    assert_same_values_and_grads(out, REFERENCE.windowed_positions(q, k, *args), q, k, gen, TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
@given(case=cases(), representatives=st.booleans())
def test_dense_positions_equal_the_reference(name, dtype, case, representatives):
    backend = runnable(name, dtype, "dense")
    q, k, pairs, _, gen = inputs(case, dtype)
    th, tw = case["tile"]
    queries = q[:, th // 2 :: th, tw // 2 :: tw] if representatives else q  # any number of queries per frame
    queries = queries.reshape(q.shape[0], -1, q.shape[-1])
    out = backend.dense_positions(queries, k, pairs, case["scale"])
    assert out.dtype == dtype
    expected = REFERENCE.dense_positions(queries, k, pairs, case["scale"])
    assert_same_values_and_grads(out, expected, q, k, gen, TOLERANCES[dtype])


def assert_points_at_a_best_key(out, q, k, pairs, tol):
    """Each argmax position's key scores the query's maximum logit (float64) within ``tol``.

    Not the reference's exact key: summation order differs between backends and CPUs, so near-ties may swap.
    """
    f, h, w, d = k.shape
    queries = q.detach().double().reshape(f, h * w, d)[pairs[:, 0]]
    keys = k.detach().double().reshape(f, h * w, d)[pairs[:, 1]]
    logits = torch.einsum("nsd,nmd->nsm", queries, keys)
    chosen = (out[..., 0] * w + out[..., 1]).long()
    best = logits.gather(2, chosen[..., None])[..., 0]
    torch.testing.assert_close(best, logits.amax(dim=2), **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
@given(case=cases())
def test_argmax_positions_point_at_a_best_key(name, dtype, case):
    backend = runnable(name, dtype, "dense_argmax")
    q, k, pairs, _, _ = inputs(case, dtype)
    f, h, w, d = q.shape
    out = backend.dense_argmax_positions(q.reshape(f, h * w, d), k, pairs)
    assert_points_at_a_best_key(out, q, k, pairs, TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", BACKENDS)
@given(case=cases())
def test_window_key_means_equal_the_reference(name, dtype, case):
    backend = runnable(name, dtype, "key_means")
    q, k, pairs, starts, gen = inputs(case, dtype)
    out = backend.window_key_means(k, pairs, starts, case["extent"])
    expected = REFERENCE.window_key_means(k, pairs, starts, case["extent"])
    torch.testing.assert_close(out, expected, **TOLERANCES[dtype])
    cotangent = torch.randn(out.shape, generator=gen, dtype=dtype)
    torch.testing.assert_close(
        torch.autograd.grad(out, k, cotangent)[0], torch.autograd.grad(expected, k, cotangent)[0], **TOLERANCES[dtype]
    )


# --- the torch backend's tile packing, chunks, saved probabilities and hand-written backward ------------------

LAYOUTS = st.tuples(st.sampled_from([1, 2, 3, 4, 8, 16]), st.integers(1, 6), st.integers(1, 6))


@given(
    case=cases(),
    layout=st.one_of(st.none(), LAYOUTS),
    chunk_bytes=st.sampled_from([1, 5000, 1 << 26]),
    save_bytes=st.sampled_from([0, 1 << 30]),
)
def test_torch_windowed_is_exact_for_any_packing_chunk_size_and_saving(case, layout, chunk_bytes, save_bytes):
    """Forced packings (masks, several levels), chunks down to one unit, probabilities kept or recomputed."""
    q, k, pairs, starts, gen = inputs(case, torch.float64)
    args = (pairs, starts, case["tile"], case["extent"], case["scale"])
    backend = TorchBackend(chunk_bytes=chunk_bytes, save_bytes=save_bytes, layout=layout)
    out = backend.windowed_positions(q, k, *args)
    assert_same_values_and_grads(out, REFERENCE.windowed_positions(q, k, *args), q, k, gen, TOLERANCES[torch.float64])


def test_torch_windowed_supports_a_second_backward():
    """``retain_graph``: kept probabilities must survive the first backward."""
    gen = torch.Generator().manual_seed(9)
    q = torch.randn(3, 6, 8, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 6, 8, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    pairs = ops.frame_pairs(3, 2)
    starts = torch.stack([torch.randint(0, 4, (5, 12), generator=gen), torch.randint(0, 6, (5, 12), generator=gen)], -1)
    out = TorchBackend(layout=(4, 3, 3)).windowed_positions(q, k, pairs, starts, (2, 2), (3, 3), 0.5)
    first = torch.autograd.grad(out.sum(), (q, k), retain_graph=True)
    second = torch.autograd.grad(out.sum(), (q, k))
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("layout", "save_bytes"), [((1, 1, 1), 0), ((4, 2, 2), 0), ((16, 12, 12), 1 << 30)])
def test_torch_windowed_backward_passes_gradcheck(layout, save_bytes):
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(2, 4, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 4, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    pairs = ops.frame_pairs(2, 2)
    starts = torch.stack([torch.randint(0, 2, (3, 6), generator=gen), torch.randint(0, 4, (3, 6), generator=gen)], -1)
    backend = TorchBackend(chunk_bytes=3000, save_bytes=save_bytes, layout=layout)  # several chunks
    windowed = lambda a, b: backend.windowed_positions(a, b, pairs, starts, (2, 2), (3, 3), 0.8)  # noqa: E731
    assert torch.autograd.gradcheck(windowed, (q, k), fast_mode=True)


@pytest.mark.parametrize(
    "options",
    [
        {"chunk_bytes": 1},
        {"chunk_bytes": 1, "save_bytes": 0},
        {"save_bytes": 0},
        {},
        {"dense_kernel": "sdpa", "chunk_bytes": 1},
    ],
)
def test_torch_dense_is_exact_for_any_kernel_chunk_size_and_saving(options):
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(3, 4, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    pairs = ops.frame_pairs(3, mode="all")
    backend = TorchBackend(**options)
    queries = q.reshape(3, 20, 6)
    out = backend.dense_positions(queries, k, pairs, 0.4)
    expected = REFERENCE.dense_positions(queries, k, pairs, 0.4)
    assert_same_values_and_grads(out, expected, q, k, gen, TOLERANCES[torch.float64])
    assert_points_at_a_best_key(backend.dense_argmax_positions(queries, k, pairs), q, k, pairs, TOLERANCES[q.dtype])
    dense = lambda a, b: backend.dense_positions(a.reshape(3, 20, 6), b, pairs, 0.4)  # noqa: E731
    assert torch.autograd.gradcheck(dense, (q, k), fast_mode=True)


@given(
    size=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    tile=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    window=st.integers(1, 9),
    layout=st.one_of(st.none(), LAYOUTS),
    seed=st.integers(0, 2**16),
)
def test_plans_cover_every_tile_once_with_blocks_holding_their_windows(size, tile, window, layout, seed):
    h, w = size[0] * tile[0], size[1] * tile[1]
    extent = (min(window, h), min(window, w))
    gen = torch.Generator().manual_seed(seed)
    tiles = size[0] * size[1]
    rows = torch.randint(0, h - extent[0] + 1, (3, tiles), generator=gen)
    cols = torch.randint(0, w - extent[1] + 1, (3, tiles), generator=gen)
    starts = torch.stack([rows, cols], -1)
    seen = torch.zeros(3, tiles, dtype=torch.long)
    for level in plan_windows(starts, (h, w), tile, extent, layout=layout):
        er, ec = level.block
        assert extent[0] <= er <= h and extent[1] <= ec <= w
        assert (level.corners >= 0).all()
        assert (level.corners[:, 0] <= h - er).all() and (level.corners[:, 1] <= w - ec).all()
        assert (level.offsets >= 0).all()
        assert (level.offsets[..., 0] <= er - extent[0]).all() and (level.offsets[..., 1] <= ec - extent[1]).all()
        pair = level.pair[:, None].expand_as(level.tiles)
        assert torch.equal(level.corners[:, None, :] + level.offsets, starts[pair, level.tiles])
        ones = torch.ones(pair.numel(), dtype=torch.long)
        seen.index_put_((pair.reshape(-1), level.tiles.reshape(-1)), ones, accumulate=True)
    assert (seen == 1).all()


def test_planner_packs_tiles_with_shared_windows_into_big_unmasked_units():
    shared = torch.full((4, 10 * 13, 2), 5)  # 130 tiles a pair: 8 units of 16, and 2 tiles left over
    levels = plan_windows(shared, (30, 52), (3, 4), (21, 21))
    assert [(level.tiles_per_unit, level.pair.numel()) for level in levels] == [(16, 4 * 8), (2, 4)]
    assert all(level.block == (21, 21) and not level.needs_mask((21, 21)) for level in levels)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_torch_backend_computes_half_inputs_in_float32(dtype):
    gen = torch.Generator().manual_seed(4)
    q, k = torch.randn(2, 6, 8, 16, generator=gen), torch.randn(2, 6, 8, 16, generator=gen)
    low = ops.windowed_amf(q.to(dtype), k.to(dtype), tile=(2, 2), window=5, backend="torch")
    full = ops.windowed_amf(q.to(dtype).float(), k.to(dtype).float(), tile=(2, 2), window=5, backend="reference")
    assert low.displacement.dtype == dtype
    # the coarse pass runs in float32: the same corners as float32 inputs give, up to float32 summation order
    representatives = q.to(dtype).double()[:, 1::2, 1::2].reshape(2, -1, 16)
    centres = REFERENCE.dense_positions(representatives, k.to(dtype).double(), full.pairs, 16**-0.5)
    assert_window_starts_agree(low.starts, full.starts, centres, margin=1e-4)
    resolution = 8 * torch.finfo(dtype).eps  # output rounding of positions up to 8 tokens
    torch.testing.assert_close(low.displacement.float(), full.displacement, atol=resolution, rtol=0)


def test_torch_backend_refuses_non_floating_inputs():
    ok, reason = TorchBackend().supports(Case("windowed", torch.device("cpu"), torch.int32, (1, 2, 2, 4), False))
    assert not ok and "floating" in reason
    with pytest.raises(ValueError, match="chunk_bytes"):
        TorchBackend(chunk_bytes=0)
    with pytest.raises(ValueError, match="dense_kernel must be one of"):
        TorchBackend(dense_kernel="flash")
