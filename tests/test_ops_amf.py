"""The AMF ops against their definitions (docs/algorithm.md#dense-amf, #properties) on every backend that runs them.

Expected values are computed here from the definitions, in float64 with explicit loops: the coarse match of
each tile's representative query, the clamped window, the masked softmax, the window key mean. Tolerances:
float64 1e-9 (only summation order differs).
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastvmt import ops, plugins
from fastvmt.backends import Case, backend_named

from tests.support.windows import assert_window_starts_agree

BACKENDS = plugins.names("backend")
TOL64 = {"atol": 1e-9, "rtol": 1e-9}


@pytest.fixture(autouse=True, scope="module")
def _check_mode():
    with ops.checks_enabled(True):
        yield


def runnable(name, dtype=torch.float64, op="windowed"):
    """Skip unless backend ``name`` runs ``op`` on CPU in ``dtype``."""
    ok, reason = backend_named(name).supports(Case(op, torch.device("cpu"), dtype, (1, 1, 1, 8), True))
    if not ok:
        pytest.skip(f"{name}: {reason}")


@st.composite
def configs(draw, max_frames=3):
    th, tw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return {
        "frames": draw(st.integers(1, max_frames)),
        "height": th * draw(st.integers(1, 4)),
        "width": tw * draw(st.integers(1, 4)),
        "dim": draw(st.sampled_from([1, 2, 5, 8])),
        "tile": (th, tw),
        "window": draw(st.sampled_from([1, 3, 5, 7])),
        "sf": draw(st.integers(1, 3)),
        "tau": draw(st.floats(0.25, 4.0)),
        "pairs": draw(st.sampled_from(["forward", "forward", "all"])),
        "seed": draw(st.integers(0, 2**16)),
    }


def features(cfg, dtype=torch.float64, grad=False):
    gen = torch.Generator().manual_seed(cfg["seed"])
    shape = (cfg["frames"], cfg["height"], cfg["width"], cfg["dim"])
    q = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(grad)
    k = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(grad)
    return q, k


def op_kwargs(cfg, *keys):
    return {key: cfg[key] for key in ("sf", "tau", "pairs", *keys)}


def grid_positions(h, w):
    return torch.tensor([(r, c) for r in range(h) for c in range(w)], dtype=torch.float64)


def expected_position(query, keys, positions, factor):
    """Soft expected position of one query over a set of keys, from the definition."""
    return torch.softmax(factor * keys.double() @ query.double(), dim=0) @ positions


def literal_starts(q, k, pairs, tile, window, factor):
    """Spec steps 2-3: coarse match of each tile's representative query, then the clamped window corner.

    Returns the corners ``(N, P, 2)`` and the coarse centres ``(N, P, 2)`` they were rounded from."""
    _, h, w, _ = q.shape
    th, tw = tile
    keys_pos = grid_positions(h, w)
    corners, centres = [], []
    for i, j in pairs.tolist():
        keys = k[j].reshape(-1, k.shape[-1])
        for a in range(h // th):
            for b in range(w // tw):
                centre = expected_position(q[i, a * th + th // 2, b * tw + tw // 2], keys, keys_pos, factor)
                centres.append([float(c) for c in centre])
                for axis, length in enumerate((h, w)):
                    extent = min(window, length)
                    corners.append(min(max(round(float(centre[axis])) - window // 2, 0), length - extent))
    shape = (pairs.shape[0], (h // th) * (w // tw), 2)
    return torch.tensor(corners, dtype=torch.long).reshape(shape), torch.tensor(centres).reshape(shape)


def literal_windowed(q, k, pairs, starts, tile, window, factor):
    """Per query: softmax over the keys of its tile's window only, expected position minus its own."""
    _, h, w, d = q.shape
    th, tw = tile
    eh, ew = min(window, h), min(window, w)
    out = torch.empty(len(pairs), h * w, 2, dtype=torch.float64)
    for n, (i, j) in enumerate(pairs.tolist()):
        for r in range(h):
            for c in range(w):
                r0, c0 = starts[n, (r // th) * (w // tw) + c // tw].tolist()
                keys = k[j, r0 : r0 + eh, c0 : c0 + ew].reshape(-1, d)
                positions = grid_positions(eh, ew) + torch.tensor([r0, c0], dtype=torch.float64)
                out[n, r * w + c] = expected_position(q[i, r, c], keys, positions, factor) - torch.tensor([r, c])
    return out


def literal_dense(q, k, pairs, factor):
    _, h, w, d = q.shape
    positions = grid_positions(h, w)
    out = torch.empty(len(pairs), h * w, 2, dtype=torch.float64)
    for n, (i, j) in enumerate(pairs.tolist()):
        for s in range(h * w):
            out[n, s] = expected_position(q[i].reshape(-1, d)[s], k[j].reshape(-1, d), positions, factor) - positions[s]
    return out


def factor_of(cfg):
    return cfg["tau"] / math.sqrt(cfg["dim"])


@pytest.mark.parametrize("name", BACKENDS)
@given(cfg=configs())
def test_windowed_amf_is_the_masked_softmax_of_the_spec(name, cfg):
    """Property (a): every query attends exactly to its tile's window, windows from the coarse pass."""
    runnable(name)
    q, k = features(cfg)
    result = ops.windowed_amf(q, k, tile=cfg["tile"], window=cfg["window"], backend=name, **op_kwargs(cfg))
    pairs = ops.frame_pairs(cfg["frames"], cfg["sf"], cfg["pairs"])
    assert torch.equal(result.pairs, pairs)
    starts, centres = literal_starts(q, k, pairs, cfg["tile"], cfg["window"], factor_of(cfg))
    assert_window_starts_agree(result.starts, starts, centres)
    expected = literal_windowed(q, k, pairs, starts, cfg["tile"], cfg["window"], factor_of(cfg))
    torch.testing.assert_close(result.displacement, expected, **TOL64)
    # window key means: the mean key over each window block
    eh, ew = min(cfg["window"], cfg["height"]), min(cfg["window"], cfg["width"])
    means = torch.stack(
        [
            torch.stack([k[j, r : r + eh, c : c + ew].mean(dim=(0, 1)) for r, c in starts[n].tolist()])
            for n, (_, j) in enumerate(pairs.tolist())
        ]
    )
    torch.testing.assert_close(result.key_means, means, **TOL64)


@pytest.mark.parametrize("name", BACKENDS)
@given(cfg=configs())
def test_full_amf_is_the_softmax_expectation_over_the_whole_frame(name, cfg):
    runnable(name, op="dense")
    q, k = features(cfg)
    pairs = ops.frame_pairs(cfg["frames"], cfg["sf"], cfg["pairs"])
    result = ops.full_amf(q, k, backend=name, **op_kwargs(cfg))
    torch.testing.assert_close(result, literal_dense(q, k, pairs, factor_of(cfg)), **TOL64)


@pytest.mark.parametrize("name", BACKENDS)
@given(cfg=configs())
def test_argmax_amf_points_at_the_best_key(name, cfg):
    runnable(name, op="dense_argmax")
    q, k = features(cfg, grad=True)
    result = ops.full_amf(q, k, mode="argmax", backend=name, **op_kwargs(cfg))
    assert not result.requires_grad
    h, w = cfg["height"], cfg["width"]
    positions = grid_positions(h, w)
    for n, (i, j) in enumerate(ops.frame_pairs(cfg["frames"], cfg["sf"], cfg["pairs"]).tolist()):
        best = (q[i].reshape(h * w, -1) @ k[j].reshape(h * w, -1).T).argmax(dim=1)
        torch.testing.assert_close(result[n], positions[best] - positions, **TOL64)


@pytest.mark.parametrize("name", BACKENDS)
@given(cfg=configs())
def test_windows_covering_the_frame_give_the_full_amf(name, cfg):
    """Property (b): l >= H and l >= W makes the windowed AMF the dense one (values and gradients)."""
    runnable(name)
    q, k = features(cfg, grad=True)
    window = 2 * max(cfg["height"], cfg["width"]) + 1
    windowed = ops.windowed_amf(q, k, tile=cfg["tile"], window=window, backend=name, **op_kwargs(cfg))
    dense = ops.full_amf(q, k, backend=name, **op_kwargs(cfg))
    torch.testing.assert_close(windowed.displacement, dense, **TOL64)
    assert not windowed.starts.any()
    cotangent = torch.randn(dense.shape, generator=torch.Generator().manual_seed(cfg["seed"]), dtype=dense.dtype)
    grads_windowed = torch.autograd.grad(windowed.displacement, (q, k), cotangent)
    grads_dense = torch.autograd.grad(dense, (q, k), cotangent)
    for a, b in zip(grads_windowed, grads_dense):
        torch.testing.assert_close(a, b, **TOL64)


@pytest.mark.parametrize("name", BACKENDS)
@given(
    shift=st.tuples(st.integers(-2, 2), st.integers(-2, 2)),
    size=st.tuples(st.integers(3, 4), st.integers(2, 4)),
    seed=st.integers(0, 2**16),
)
def test_translation_is_recovered(name, shift, size, seed):
    """Property (c): K_1 = Q_0 translated by (dy, dx), distinct features, large tau: interior flow = (dy, dx)."""
    runnable(name, dtype=torch.float32)
    dy, dx = shift
    th, tw = 3, 2
    h, w, d = th * size[0], tw * size[1], 32
    gen = torch.Generator().manual_seed(seed)
    q = torch.nn.functional.normalize(torch.randn(2, h, w, d, generator=gen), dim=-1) * math.sqrt(d)
    k = torch.nn.functional.normalize(torch.randn(2, h, w, d, generator=gen), dim=-1) * math.sqrt(d)
    rows, cols = torch.arange(h), torch.arange(w)
    src_r, src_c = rows - dy, cols - dx
    ok_r, ok_c = (src_r >= 0) & (src_r < h), (src_c >= 0) & (src_c < w)
    k[1][ok_r[:, None] & ok_c[None, :]] = q[0][src_r[ok_r]][:, src_c[ok_c]].reshape(-1, d)
    interior = torch.zeros(h, w, dtype=torch.bool)  # queries whose match lies inside frame 1
    interior[(rows + dy >= 0) & (rows + dy < h)] = True
    interior[:, ~((cols + dx >= 0) & (cols + dx < w))] = False
    flow = torch.tensor([dy, dx], dtype=torch.float32)
    pair = ops.frame_pairs(2, 2).tolist().index([0, 1])
    dense = ops.full_amf(q, k, sf=2, tau=20.0, backend=name)[pair].reshape(h, w, 2)
    torch.testing.assert_close(dense[interior], flow.expand(int(interior.sum()), 2), atol=1e-3, rtol=0)
    # windowed: tiles whose every query matches inside the frame (their windows then hold all the matches)
    windowed = ops.windowed_amf(q, k, sf=2, tau=20.0, tile=(th, tw), window=5, backend=name)
    flows = windowed.displacement[pair].reshape(h, w, 2)
    tile_interior = interior.reshape(h // th, th, w // tw, tw).all(dim=3).all(dim=1)
    whole_tiles = tile_interior.repeat_interleave(th, 0).repeat_interleave(tw, 1)
    assert whole_tiles.any()
    torch.testing.assert_close(flows[whole_tiles], flow.expand(int(whole_tiles.sum()), 2), atol=1e-3, rtol=0)


@given(cfg=configs(max_frames=2))
def test_window_starts_round_the_coarse_match_and_stay_in_bounds(cfg):
    q, k = features(cfg)
    pairs = ops.frame_pairs(cfg["frames"], cfg["sf"], cfg["pairs"])
    starts = ops.window_starts(q, k, tile=cfg["tile"], window=cfg["window"], **op_kwargs(cfg))
    th, tw = cfg["tile"]
    h, w, half = cfg["height"], cfg["width"], cfg["window"] // 2
    assert starts.dtype == torch.long and starts.shape == (len(pairs), (h // th) * (w // tw), 2)
    keys_pos = grid_positions(h, w)
    for n, (i, j) in enumerate(pairs.tolist()):
        for p in range(starts.shape[1]):
            a, b = divmod(p, w // tw)
            rep = q[i, a * th + th // 2, b * tw + tw // 2]
            centre = expected_position(rep, k[j].reshape(h * w, -1), keys_pos, factor_of(cfg))
            for axis, length in enumerate((h, w)):
                extent, start = min(cfg["window"], length), int(starts[n, p, axis])
                assert 0 <= start <= length - extent  # the whole window is inside the frame
                wanted = float(centre[axis]) - half  # unclamped corner: round(c) - l//2
                if 0 < start < length - extent:
                    assert abs(start - wanted) <= 0.5
                elif start == 0 and length > extent:
                    assert wanted <= 0.5
                elif start == length - extent and length > extent:
                    assert wanted >= length - extent - 0.5


def test_window_extent_is_clipped_to_the_axis():
    """A window larger than an axis covers that whole axis (extent min(l, length)), at corner 0."""
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randn(2, 4, 12, 8, generator=gen), torch.randn(2, 4, 12, 8, generator=gen)
    result = ops.windowed_amf(q, k, tile=(2, 3), window=7, backend="reference")
    assert (result.starts[..., 0] == 0).all()
    assert (result.starts[..., 1] <= 12 - 7).all()
    for n, (_, j) in enumerate(result.pairs.tolist()):
        for p, (r, c) in enumerate(result.starts[n].tolist()):
            torch.testing.assert_close(result.key_means[n, p], k[j, :, c : c + 7].mean(dim=(0, 1)))


def test_scale_multiplies_tau():
    """The logit factor is tau * scale (head reductions pass their own scale)."""
    gen = torch.Generator().manual_seed(5)
    q = torch.randn(2, 3, 4, 8, generator=gen, dtype=torch.float64)
    k = torch.randn(2, 3, 4, 8, generator=gen, dtype=torch.float64)
    a = ops.full_amf(q, k, tau=2.0, scale=0.25, backend="reference")
    b = ops.full_amf(q, k, tau=0.5, scale=1.0, backend="reference")
    c = ops.full_amf(q, k, tau=0.5 * math.sqrt(8), backend="reference")
    torch.testing.assert_close(a, b, **TOL64)
    torch.testing.assert_close(a, c, **TOL64)


def test_reference_backend_gradients_pass_gradcheck():
    backend = backend_named("reference")
    gen = torch.Generator().manual_seed(11)
    q = torch.randn(2, 4, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 4, 6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    pairs = ops.frame_pairs(2, 2)
    starts = torch.tensor([[[0, 1], [1, 3], [2, 0], [1, 2]]] * len(pairs))  # tiles 2x3 -> 2x2 tile grid
    assert torch.autograd.gradcheck(lambda a, b: backend.dense_positions(a.reshape(2, 24, 3), b, pairs, 0.7), (q, k))
    assert torch.autograd.gradcheck(
        lambda a, b: backend.windowed_positions(a, b, pairs, starts, (2, 3), (2, 3), 0.7), (q, k)
    )
    assert torch.autograd.gradcheck(lambda b: backend.window_key_means(b, pairs, starts, (2, 3)), (k,))
