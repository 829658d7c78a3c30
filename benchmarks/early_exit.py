"""What a guidance forward costs: the DiT stopped at the captured block's Q/K vs a full forward (FLOPs).

FastVMT only needs the self-attention queries and keys of one block (docs/algorithm.md#features), so the guidance
forward runs the blocks before it and its q/k/v projections, and stops. This script counts the FLOPs of both
forwards for the released Wan2.1 T2V DiTs, by the cost model's formula (``fastvmt.costmodel``) and, as a
cross-check, with ``torch.utils.flop_counter.FlopCounterMode`` over the real diffsynth modules on the meta device
(no weights, no compute). The official release runs ``RELEASE_GUIDANCE_BLOCKS`` full blocks for the same
features; that cost is shown too.

    python benchmarks/early_exit.py [--frames 81 --height 480 --width 832 --block N]
"""

from __future__ import annotations

import argparse
import sys

import torch

from fastvmt.backbones.architecture import RELEASED_DITS, DiTConfig
from fastvmt.costmodel import RELEASE_GUIDANCE_BLOCKS, Depth, forward_flops
from fastvmt.geometry import token_grid, video_geometry
from fastvmt.strategies.presets import CAPTURED_BLOCK

TOLERANCE = 0.01


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
    parser.add_argument("--block", type=int, default=CAPTURED_BLOCK)
    args = parser.parse_args(argv)
    grid = token_grid(args.frames, args.height, args.width)
    print(
        f"{args.frames} frames x {args.height}x{args.width}: "
        f"token grid {grid.frames}x{grid.height}x{grid.width} = {grid.tokens} tokens"
    )
    release_label = f"release ({RELEASE_GUIDANCE_BLOCKS} blocks)"
    print(f"{'model':>5} {'full TFLOP':>11} {'counted':>9} {'stop@' + str(args.block) + ' TFLOP':>13} {'counted':>9} "
          f"{'fraction':>9} {release_label:>20}")
    consistent = True
    for name, config in RELEASED_DITS.items():
        geometry = video_geometry(
            args.frames, args.height, args.width, latent_channels=config.in_dim, patch_size=config.patch_size
        )
        full = forward_flops(config, grid, Depth.full(config))
        early = forward_flops(config, grid, Depth.until_qk(args.block))
        release = forward_flops(config, grid, Depth.through_blocks(RELEASE_GUIDANCE_BLOCKS))
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
