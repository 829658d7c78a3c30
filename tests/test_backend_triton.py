"""The Triton backend equals the reference backend: values and gradients, windowed and dense, any shape.

Without CUDA the kernels run in Triton's CPU interpreter (tests/conftest.py sets TRITON_INTERPRET=1 before any
kernel module is imported). Positions come back in float32 for every input dtype. Tolerances (``TOLERANCES``:
positions in tokens, gradients relative to their largest entry), against the reference in float32 on the same
input values; a wrong window or block mask moves positions by about a token:

- float32, interpreter (IEEE dot): 1e-4 / 1e-4, summation order only;
- float32 on a GPU (TF32 dot, inputs rounded to 11 significant bits): 5e-2 / 2e-2 (estimated, not yet measured);
- float16: 1e-4 / 5e-3: products of half inputs are exact in float32, the gradients' ``ds`` is rounded to
  float16 before its two products and the gradients are returned in float16;
- bfloat16 (GPU only, the interpreter computes it wrongly): 1e-3 / 3e-2 (estimated, not yet measured), ``ds``
  and the returned gradients rounded to 8 significant bits.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

pytest.importorskip("triton")

from fastvmt.backends.base import Case  # noqa: E402
from fastvmt.backends.reference import ReferenceBackend  # noqa: E402
from fastvmt.backends.triton import TritonBackend  # noqa: E402
from fastvmt.backends.triton.configs import INTERPRETED  # noqa: E402

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TRITON = TritonBackend()
REFERENCE = ReferenceBackend()
_OK, _REASON = TRITON.supports(Case("windowed", DEVICE, torch.float32, (1, 3, 4, 16), True))
needs_triton = pytest.mark.skipif(not _OK, reason=f"triton cannot run here: {_REASON}")


def test_triton_runs_in_this_test_setup():
    """With CUDA, or TRITON_INTERPRET=1 as conftest sets without CUDA, the backend accepts float32 cases."""
    import os

    if DEVICE.type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
        pytest.skip("TRITON_INTERPRET was explicitly disabled on a machine without CUDA")
    assert _OK, _REASON


def _features(seed: int, f: int, h: int, w: int, d: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(f, h, w, d, generator=gen).to(DEVICE, dtype)
    k = torch.randn(f, h, w, d, generator=gen).to(DEVICE, dtype)
    return q.requires_grad_(), k.requires_grad_()


@st.composite
def _pairs(draw, frames: int) -> torch.Tensor:
    """Some (i, j) frame pairs, repeats of a frame included (gradients of shared frames add up)."""
    frame = st.integers(0, frames - 1)
    pairs = draw(st.lists(st.tuples(frame, frame), min_size=1, max_size=4))
    return torch.tensor(pairs, dtype=torch.long, device=DEVICE)


def _starts(seed: int, n: int, tiles: tuple[int, int], grid: tuple[int, int], extent: tuple[int, int]):
    """Window corners in bounds: a third at the top/left border, a third at the bottom/right, a third anywhere."""
    gen = torch.Generator().manual_seed(seed + 1)
    corners = []
    for length, e in zip(grid, extent):
        last = length - e
        anywhere = torch.randint(0, last + 1, (n, tiles[0] * tiles[1]), generator=gen)
        choice = torch.randint(0, 3, anywhere.shape, generator=gen)
        corners.append(torch.where(choice == 0, 0, torch.where(choice == 1, last, anywhere)))
    return torch.stack(corners, dim=-1).to(DEVICE)


#: (positions in tokens, gradients relative to their largest entry) per input dtype, see the module docstring.
TOLERANCES = {
    torch.float32: (5e-2, 2e-2) if DEVICE.type == "cuda" and not INTERPRETED else (1e-4, 1e-4),
    torch.float16: (1e-4, 5e-3),
    torch.bfloat16: (1e-3, 3e-2),
}


def _assert_grads_close(out, ref, inputs, seed):
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 2)).to(DEVICE)
    got = torch.autograd.grad(out, inputs, grad, retain_graph=True)  # shared input ops
    want = torch.autograd.grad(ref, inputs, grad)
    rel = TOLERANCES[torch.float32][1]
    for name, g, r in zip(("q", "k"), got, want):
        tol = rel * max(1.0, r.abs().max().item())
        torch.testing.assert_close(g, r, atol=tol, rtol=rel, msg=lambda m: f"grad {name}: {m}")


@st.composite
def windowed_cases(draw):
    tile = (draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2, 4])))
    tiles = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    grid = (tile[0] * tiles[0], tile[1] * tiles[1])
    window = draw(st.integers(0, max(grid) + 1)) * 2 + 1  # odd; >= the grid in some cases
    return dict(
        frames=draw(st.integers(1, 3)),
        tile=tile,
        tiles=tiles,
        grid=grid,
        extent=(min(window, grid[0]), min(window, grid[1])),
        d=draw(st.sampled_from([8, 16, 24, 40])),
        tau=draw(st.floats(0.5, 4.0)),
        seed=draw(st.integers(0, 2**16)),
    )


@needs_triton
@given(case=windowed_cases(), data=st.data())
@example(  # several key blocks per program and partial query blocks (13 rows of tiles 1 x 4)
    case=dict(frames=2, tile=(1, 4), tiles=(13, 4), grid=(13, 16), extent=(11, 11), d=24, tau=2.0, seed=7),
    data=None,
)
def test_windowed_positions_and_gradients_match_reference(case, data):
    frames, (h, w), tile, extent = case["frames"], case["grid"], case["tile"], case["extent"]
    pairs = data.draw(_pairs(frames)) if data is not None else torch.tensor([[0, 1], [1, 1], [0, 0]], device=DEVICE)
    starts = _starts(case["seed"], len(pairs), case["tiles"], (h, w), extent)
    q, k = _features(case["seed"], frames, h, w, case["d"])
    scale = case["tau"] / case["d"] ** 0.5

    out = TRITON.windowed_positions(q, k, pairs, starts, tile, extent, scale)
    ref = REFERENCE.windowed_positions(q, k, pairs, starts, tile, extent, scale)

    torch.testing.assert_close(out, ref, atol=TOLERANCES[torch.float32][0], rtol=1e-5)
    _assert_grads_close(out, ref, (q, k), case["seed"])


@st.composite
def dense_cases(draw):
    return dict(
        frames=draw(st.integers(1, 3)),
        grid=(draw(st.integers(1, 12)), draw(st.integers(1, 14))),
        queries=draw(st.one_of(st.none(), st.integers(1, 20))),  # None: every token of the frame
        d=draw(st.sampled_from([8, 16, 24, 40])),
        tau=draw(st.floats(0.5, 4.0)),
        seed=draw(st.integers(0, 2**16)),
    )


@needs_triton
@given(case=dense_cases(), data=st.data())
def test_dense_positions_and_gradients_match_reference(case, data):
    frames, (h, w), d = case["frames"], case["grid"], case["d"]
    pairs = data.draw(_pairs(frames))
    q, k = _features(case["seed"], frames, h, w, d)
    queries = q.reshape(frames, h * w, d)
    if case["queries"] is not None:  # e.g. the tiles' representative queries of the coarse pass
        pick = torch.randint(0, h * w, (case["queries"],), generator=torch.Generator().manual_seed(case["seed"]))
        queries = queries[:, pick.to(DEVICE)]
    scale = case["tau"] / d**0.5

    out = TRITON.dense_positions(queries, k, pairs, scale)
    ref = REFERENCE.dense_positions(queries, k, pairs, scale)

    torch.testing.assert_close(out, ref, atol=TOLERANCES[torch.float32][0], rtol=1e-5)
    _assert_grads_close(out, ref, (q, k), case["seed"])


@needs_triton
@given(grid=st.tuples(st.integers(1, 16), st.integers(1, 16)), seed=st.integers(0, 999))
@example(grid=(12, 14), seed=0)  # 168 keys: ties across key blocks
def test_dense_argmax_matches_reference_including_ties(grid, seed):
    """0/1 features make exact ties common: the lowest raster index must win, as in the reference."""
    h, w = grid
    gen = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 2, (2, h * w, 8), generator=gen).float().to(DEVICE)
    k = torch.randint(0, 2, (2, h, w, 8), generator=gen).float().to(DEVICE)
    pairs = torch.tensor([[0, 0], [0, 1], [1, 0]], device=DEVICE)

    out = TRITON.dense_argmax_positions(q, k, pairs)

    assert torch.equal(out, REFERENCE.dense_argmax_positions(q, k, pairs))


def _half_dtypes() -> list:
    """Half dtypes the kernels compute correctly here: bfloat16 only when compiled for a GPU."""
    return [torch.float16] + ([torch.bfloat16] if DEVICE.type == "cuda" and not INTERPRETED else [])


@needs_triton
@pytest.mark.parametrize("dtype", _half_dtypes(), ids=str)
@given(case=windowed_cases())
def test_half_inputs_give_float32_positions_and_match_reference(dtype, case):
    """Half inputs: positions accumulate and return in float32 (a bfloat16 position steps by 0.25-0.5 token)."""
    frames, (h, w), tile, extent = case["frames"], case["grid"], case["tile"], case["extent"]
    pairs = torch.tensor([[0, frames - 1], [0, 0]], device=DEVICE)
    starts = _starts(case["seed"], len(pairs), case["tiles"], (h, w), extent)
    q, k = _features(case["seed"], frames, h, w, case["d"], dtype=dtype)
    scale = case["tau"] / case["d"] ** 0.5
    q32, k32 = (x.detach().float().requires_grad_() for x in (q, k))

    windowed = TRITON.windowed_positions(q, k, pairs, starts, tile, extent, scale)
    dense = TRITON.dense_positions(q.reshape(frames, h * w, -1), k, pairs, scale)
    argmax = TRITON.dense_argmax_positions(q.reshape(frames, h * w, -1), k, pairs)

    assert windowed.dtype == dense.dtype == argmax.dtype == torch.float32
    want_windowed = REFERENCE.windowed_positions(q32, k32, pairs, starts, tile, extent, scale)
    want_dense = REFERENCE.dense_positions(q32.reshape(frames, h * w, -1), k32, pairs, scale)
    atol = TOLERANCES[dtype][0]
    torch.testing.assert_close(windowed, want_windowed, atol=atol, rtol=1e-5)
    torch.testing.assert_close(dense, want_dense, atol=atol, rtol=1e-5)
    grad = torch.randn(windowed.shape, generator=torch.Generator().manual_seed(case["seed"] + 2)).to(DEVICE)
    got = torch.autograd.grad(windowed, (q, k), grad)
    want = torch.autograd.grad(want_windowed, (q32, k32), grad)
    rel = TOLERANCES[dtype][1]
    for name, g, r in zip(("q", "k"), got, want):
        assert g.dtype == dtype
        tol = rel * max(1.0, r.abs().max().item())
        torch.testing.assert_close(g.float(), r, atol=tol, rtol=rel, msg=lambda m: f"grad {name}: {m}")


def test_box_row_split_is_exact_below_the_frame_limit():
    """The windowed kernels' float row split ``trunc((t + 0.5) * inv_w)`` equals ``t // w`` for every box key
    ``t < MAX_FRAME_TOKENS``, even with the reciprocal 2 ulp off either way (GPU float division is approximate)."""
    np = pytest.importorskip("numpy")
    from fastvmt.backends.triton.windowed_kernels import MAX_FRAME_TOKENS

    t = np.arange(MAX_FRAME_TOKENS, dtype=np.int64)
    half = (t.astype(np.float32) + np.float32(0.5)).astype(np.float32)
    for width in (1, 3, 7, 21, 25, 52, 127, 441, 1000, 1023, 4097, 65535):
        exact = np.float32(1.0) / np.float32(width)
        for ulps in (-2, 0, 2):
            inv = exact
            for _ in range(abs(ulps)):
                inv = np.nextafter(inv, np.float32(np.sign(ulps) * np.inf), dtype=np.float32)
            rows = (half * inv).astype(np.float32).astype(np.int64)
            assert np.array_equal(rows, t // width), f"width {width}, reciprocal {ulps:+d} ulp"


def _gradients(frames: int, grid: tuple[int, int], d: int, tile: tuple[int, int], window: int, dtype, seed: int):
    """dq, dk of the windowed and of the dense op (every query) over all frame pairs, shared frames included."""
    (h, w), extent = grid, (min(window, grid[0]), min(window, grid[1]))
    pairs = torch.cartesian_prod(torch.arange(frames), torch.arange(frames)).to(DEVICE)
    tiles = (h // tile[0], w // tile[1])
    starts = _starts(seed, len(pairs), tiles, grid, extent)
    q, k = _features(seed, frames, h, w, d, dtype=dtype)
    scale = 1.0 / d**0.5
    windowed = TRITON.windowed_positions(q, k, pairs, starts, tile, extent, scale)
    dense = TRITON.dense_positions(q.reshape(frames, h * w, d), k, pairs, scale)
    gen = torch.Generator().manual_seed(seed + 2)
    grads = []
    for out in (windowed, dense):
        grads += torch.autograd.grad(out, (q, k), torch.randn(out.shape, generator=gen).to(DEVICE))
    return grads


@needs_triton
def test_gradients_are_bit_identical_across_runs():
    """The backward kernels use no atomics and sum in a fixed order, so two runs give the same bits. In the
    interpreter (programs run one after another) this holds trivially; the CUDA test below checks it for real."""
    first = _gradients(2, (4, 4), 16, (2, 2), 3, torch.float32, seed=3)
    second = _gradients(2, (4, 4), 16, (2, 2), 3, torch.float32, seed=3)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.skipif(
    DEVICE.type != "cuda" or INTERPRETED,
    reason="needs the compiled kernels on a CUDA GPU (the interpreter runs programs in order, see the test above)",
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_gradients_are_bit_identical_across_runs_on_cuda(dtype):
    """At 480p's token grid (30 x 52, D = 128, tile 3x4, window 21) with 9 pairs over 3 frames, where float
    atomics would sum the many programs' contributions to a key in a different order on each run."""
    first = _gradients(3, (30, 52), 128, (3, 4), 21, dtype, seed=5)
    second = _gradients(3, (30, 52), 128, (3, 4), 21, dtype, seed=5)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
