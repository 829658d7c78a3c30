"""Launch configurations shared by the Triton kernels: interpreter mode, autotune configs, block shapes.

``INTERPRETED`` is read once, when this module is imported: Triton decides at ``@triton.jit`` decoration time
whether a kernel is compiled for the GPU or run by its CPU interpreter (``TRITON_INTERPRET=1``), so the kernel
modules (which import this one) follow the environment of their first import.
"""

from __future__ import annotations

import os

import torch
import triton

__all__ = [
    "INTERPRETED",
    "block_d",
    "dense_backward_configs",
    "dense_configs",
    "dot_precision",
    "interpreter_requested",
    "query_block_shape",
    "windowed_configs",
    "windowed_dk_block",
    "windowed_dk_configs",
    "windowed_dq_configs",
]


def interpreter_requested() -> bool:
    """Whether the environment asks for Triton's interpreter now (``TRITON_INTERPRET``, read as Triton does)."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


#: True when the kernels below run in Triton's CPU interpreter instead of being compiled for a GPU.
INTERPRETED: bool = interpreter_requested()


def _configs(shapes: list[tuple[int, int, int]], stages: tuple[int, ...] = (2, 3)) -> list[triton.Config]:
    """Configs from ``(BLOCK_M, BLOCK_N, num_warps)`` shapes; one big block in the interpreter."""
    if INTERPRETED:
        # Every program step of the interpreter costs about the same Python overhead, whatever its size.
        return [triton.Config({"BLOCK_M": 64, "BLOCK_N": 128}, num_warps=4, num_stages=1)]
    return [
        triton.Config({"BLOCK_M": m, "BLOCK_N": n}, num_warps=w, num_stages=s) for m, n, w in shapes for s in stages
    ]


# Candidates are checked by benchmarks/triton_sass.py (compiled offline for sm_90 in bfloat16 and TF32, D = 128):
# every matrix product has at least 64 rows (Hopper's warpgroup wgmma; fewer falls back to mma.sync) and no
# config spills registers. The backward passes hold a float32 gradient block besides the logits, hence 8 warps.


def dense_configs() -> list[triton.Config]:
    """Autotune candidates of the dense forward and argmax kernels.

    Not 128 x 128: on 4 warps it takes all 255 registers in bfloat16, with 3 stages 256 KiB of shared memory in
    float32 (Hopper has 227).
    """
    return _configs([(m, n, w) for m, n in [(64, 64), (128, 64), (64, 128)] for w in (4, 8)])


def dense_backward_configs() -> list[triton.Config]:
    """Autotune candidates of the dense dq and dk kernels: ``BLOCK_M`` and ``BLOCK_N`` rows, both >= 64.

    8 warps: on 4 the TF32 dk pass spills (80 bytes a thread), as does 64 x 128 (364 bytes).
    """
    return _configs([(64, 64, 8), (128, 64, 8)])


def windowed_configs() -> list[triton.Config]:
    """Autotune candidates of the windowed forward (keys come from a data-dependent box)."""
    return _configs([(m, n, w) for m, n in [(64, 64), (128, 64), (64, 32)] for w in (4, 8)])


def windowed_dq_configs() -> list[triton.Config]:
    """Autotune candidates of the windowed ``dq`` pass (query blocks walking their windows' box): 64 x 64 on 8
    warps; 128 x 64 and 4 warps spill a few bytes in TF32."""
    return _configs([(64, 64, 8)])


def windowed_dk_block() -> dict[str, int]:
    """Block sizes of the windowed ``dk`` pass, fixed: the host builds its work list from them.

    ``BLOCK_M`` queries (a query block of ``query_block_shape``) against a rectangle of ``BLOCK_N // KW x KW``
    keys; both products have 64 rows (Hopper's wgmma), and an 8 x 8 rectangle wastes little of a window's box.
    """
    return {"BLOCK_M": 64, "BLOCK_N": 64, "KW": 8}


def windowed_dk_configs() -> list[triton.Config]:
    """Autotune candidates of the windowed ``dk`` pass: stages around the fixed ``windowed_dk_block``, 4 warps
    (on 8 the TF32 kernel spills)."""
    stages = (1,) if INTERPRETED else (2, 3)
    return [triton.Config(windowed_dk_block(), num_warps=4, num_stages=s) for s in stages]


def block_d(d: int) -> int:
    """Feature block: ``D`` padded to a power of two (masked loads), at least 16 (the smallest ``tl.dot`` size)."""
    return max(16, triton.next_power_of_2(d))


def dot_precision(dtype: torch.dtype) -> str:
    """``tl.dot`` input precision: ``"tf32"`` for float32 inputs on a GPU, so that they reach the tensor cores.

    Float32 features of a bfloat16 backbone hold bfloat16 values (8 significant bits), which TF32's 11 fit
    exactly: the products are exact and accumulate in float32. Other float32 inputs are rounded to TF32 (a
    relative 2^-11 per operand); the tests state the tolerance. The interpreter computes IEEE float32.
    Half-precision inputs use their own tensor-core path (the argument is ignored for them).
    """
    if dtype == torch.float32 and not INTERPRETED:
        return "tf32"
    return "ieee"


def query_block_shape(
    block_m: int, tile: tuple[int, int], tiles: tuple[int, int], extent: tuple[int, int]
) -> tuple[int, int]:
    """Rows x cols of the query block one windowed program owns (at most ``block_m`` queries).

    The block is a group of whole tiles when a tile fits (chosen to minimise the key work: the program visits
    the bounding box of its tiles' windows, about ``(eh + rows - th) x (ew + cols - tw)`` keys, for every query
    row of the block), else an aligned piece of one tile (divisors of ``th``, ``tw``), whose box is one window.
    Any shape is correct; the choice only changes speed.
    """
    th, tw = tile
    eh, ew = extent
    if th * tw > block_m:
        cols = max(c for c in range(1, tw + 1) if tw % c == 0 and c <= block_m)
        rows = max(r for r in range(1, th + 1) if th % r == 0 and r * cols <= block_m)
        return rows, cols
    best, best_cost = (th, tw), float("inf")
    for gh in range(1, tiles[0] + 1):
        for gw in range(1, tiles[1] + 1):
            if gh * gw * th * tw > block_m:
                break
            box = min(eh + (gh - 1) * th, tiles[0] * th) * min(ew + (gw - 1) * tw, tiles[1] * tw)
            cost = box / (gh * gw)  # key work per tile (the block's padding rows cost the same in every program)
            if cost < best_cost:
                best, best_cost = (gh * th, gw * tw), cost
    return best
