"""What a guidance forward costs: the DiT stopped at block 14's Q/K vs a full forward (FLOPs).

FastVMT only needs the self-attention queries and keys of one block (docs/algorithm.md#features), so the guidance
forward runs blocks 0..13 and block 14's q/k/v projections, and stops. This script counts the FLOPs of both
forwards for the released Wan2.1 T2V DiTs, by formula and, as a cross-check, with
``torch.utils.flop_counter.FlopCounterMode`` over the real diffsynth modules on the meta device (no weights,
no compute). The official release runs 20 full blocks for the same features; that cost is shown too.

    python benchmarks/early_exit.py [--frames 81 --height 480 --width 832 --block 14]
"""

from __future__ import annotations

import argparse
import sys

import torch

from fastvmt.backbones.architecture import DiTConfig
from fastvmt.geometry import video_geometry

CONFIGS = {
    "1.3B": DiTConfig(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30),
    "14B": DiTConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40),
}
RELEASE_BLOCKS = 20
TOLERANCE = 0.01


def formula_flops(config: DiTConfig, tokens: int, blocks: int, stop_at_qk: bool, head: bool) -> int:
    """Multiply-adds x 2 of the matmuls: embeddings, ``blocks`` full blocks, optionally the next block's
    q/k/v projections, optionally the output head. Norms, RoPE, softmax and modulation are ignored."""
    s, d, f, text = tokens, config.dim, config.ffn_dim, config.text_len
    patch = config.in_dim * config.patch_size[0] * config.patch_size[1] * config.patch_size[2]
    embeddings = (
        2 * s * patch * d  # patch embedding
        + 2 * text * (config.text_dim * d + d * d)  # text embedding MLP
        + 2 * (config.freq_dim * d + d * d + d * 6 * d)  # time embedding and projection
    )
    block = (
        4 * 2 * s * d * d  # self-attention q, k, v, o
        + 2 * 2 * s * s * d  # self-attention QK^T and AV
        + 2 * 2 * s * d * d + 2 * 2 * text * d * d  # cross-attention q, o on tokens; k, v on text
        + 2 * 2 * s * text * d  # cross-attention QK^T and AV
        + 2 * 2 * s * d * f  # FFN
    )
    total = embeddings + blocks * block
    if stop_at_qk:
        total += 3 * 2 * s * d * d
    if head:
        total += 2 * s * d * patch
    return total


def counted_flops(config: DiTConfig, latent_shape: tuple[int, ...], block: int | None) -> int:
    """FLOPs FlopCounterMode sees for diffsynth's WanModel on the meta device (``block=None``: full forward)."""
    from torch.utils.flop_counter import FlopCounterMode

    from fastvmt.backbones.forward import capture_qk, dit_forward
    from fastvmt.backbones.modules import build_dit

    with torch.device("meta"):
        dit = build_dit(config, initialize=True).to(torch.bfloat16)
        latents = torch.empty(latent_shape, dtype=torch.bfloat16)
        context = torch.empty(1, config.text_len, config.text_dim, dtype=torch.bfloat16)
        timestep = torch.tensor([500.0])
    with FlopCounterMode(display=False) as counter:
        if block is None:
            dit_forward(dit, latents, timestep, context)
        else:
            capture_qk(dit, latents, timestep, context, block)
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--block", type=int, default=14)
    args = parser.parse_args(argv)
    geometry = video_geometry(args.frames, args.height, args.width, latent_channels=16)
    grid = geometry.grid
    tokens = grid.frames * grid.tokens_per_frame
    print(
        f"{args.frames} frames x {args.height}x{args.width}: "
        f"token grid {grid.frames}x{grid.height}x{grid.width} = {tokens} tokens"
    )
    print(f"{'model':>5} {'full TFLOP':>11} {'counted':>9} {'stop@' + str(args.block) + ' TFLOP':>13} {'counted':>9} "
          f"{'fraction':>9} {'release (20 blocks)':>20}")
    consistent = True
    for name, config in CONFIGS.items():
        full = formula_flops(config, tokens, config.num_layers, stop_at_qk=False, head=True)
        early = formula_flops(config, tokens, args.block, stop_at_qk=True, head=False)
        release = formula_flops(config, tokens, RELEASE_BLOCKS, stop_at_qk=False, head=False)
        counted_full = counted_flops(config, geometry.latent_shape, None)
        counted_early = counted_flops(config, geometry.latent_shape, args.block)
        for formula, counted in ((full, counted_full), (early, counted_early)):
            consistent &= abs(formula - counted) <= TOLERANCE * counted
        print(
            f"{name:>5} {full / 1e12:11.1f} {counted_full / 1e12:9.1f} "
            f"{early / 1e12:13.1f} {counted_early / 1e12:9.1f} "
            f"{early / full:9.3f} {release / full:20.3f}"
        )
    print(f"formula vs FlopCounterMode within {TOLERANCE:.0%}: {'yes' if consistent else 'NO'}")
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
