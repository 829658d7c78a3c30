"""``fastvmt bench cost --memory``: the GPU memory model's peaks per strategy and option, the smallest common GPU
each fits, and (``--check-activations``) the activation term against torch's own count at the same sizes."""

from __future__ import annotations

import json
from typing import Any

import typer

from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.costmodel.memory import COMMON_GPUS_GB, CUDA_RESERVE_BYTES, MemoryOptions, run_memory, smallest_gpu
from fastvmt.costmodel.recipes import GuidanceRecipe
from fastvmt.interfaces import TokenGrid

__all__ = ["MEMORY_VARIANTS", "activation_check_rows", "memory_rows", "print_memory"]

GIB = 1 << 30
#: The option sets the table shows for each strategy.
MEMORY_VARIANTS = {
    "plain": MemoryOptions(),
    "checkpointing": MemoryOptions(checkpointing=True),
    "checkpointing + text encoder offloaded": MemoryOptions(checkpointing=True, text_encoder_offloaded=True),
    "merged CFG": MemoryOptions(cfg_batch=True),
}


def memory_rows(size: str, grid: TokenGrid, recipes: dict[str, GuidanceRecipe]) -> list[dict[str, Any]]:
    """One row per strategy and :data:`MEMORY_VARIANTS` option set: bytes per part and phase, peak, smallest GPU."""
    rows = []
    for name, recipe in recipes.items():
        for variant, options in MEMORY_VARIANTS.items():
            estimate = run_memory(recipe, RELEASED_DITS[size], grid, options)
            rows.append({
                "backbone": size, "tokens": [grid.frames, grid.height, grid.width], "strategy": name,
                "options": variant, "weights": estimate.weights, "guidance": estimate.guidance,
                "denoising": estimate.denoising, "guidance_peak": estimate.guidance_peak,
                "denoising_peak": estimate.denoising_peak, "peak": estimate.peak,
                "smallest_gpu_gb": smallest_gpu(estimate.peak),
            })
    return rows


def activation_check_rows(size: str, grid: TokenGrid, block: int) -> list[dict[str, Any]]:
    """The model's guidance activations against torch's count of diffsynth's blocks on the meta device."""
    from fastvmt.costmodel.memory import DTYPE_BYTES, guidance_activation_bytes
    from fastvmt.costmodel.saved import meta_guidance_activations

    rows = []
    for checkpointing in (False, True):
        counted = meta_guidance_activations(RELEASED_DITS[size], grid, block, checkpointing=checkpointing)
        modelled = guidance_activation_bytes(RELEASED_DITS[size], grid, block, DTYPE_BYTES["bfloat16"], checkpointing)
        rows.append({"backbone": size, "tokens": [grid.frames, grid.height, grid.width], "block": block,
                     "checkpointing": checkpointing, "model": modelled, "torch": counted,
                     "error_percent": 100 * (modelled - counted) / counted})
    return rows


def _gib(value: int) -> str:
    return f"{value / GIB:.1f}"


def print_memory(rows: list[dict[str, Any]], checks: list[dict[str, Any]], as_json: bool) -> None:
    """The rows as JSON or as one table per backbone and grid, then the activation checks."""
    from fastvmt.cli.listings import echo_table

    if as_json:
        typer.echo(json.dumps({"rows": rows, "activation_checks": checks}))
        return
    typer.echo(f"Peak GPU memory in GiB (bfloat16, batch 1; docs/algorithm.md#memory): weights resident + the larger "
               f"of the guidance and denoising phases. 'GPU' = the smallest of {'/'.join(map(str, COMMON_GPUS_GB))} "
               f"GB that holds the peak + {CUDA_RESERVE_BYTES / GIB:g} GiB reserve ('-': none).")
    for key in dict.fromkeys((row["backbone"], tuple(row["tokens"])) for row in rows):
        group = [row for row in rows if (row["backbone"], tuple(row["tokens"])) == key]
        typer.echo(f"\nWan2.1 {key[0]}, tokens {'x'.join(map(str, key[1]))}")
        header = ("strategy", "options", "weights", "activations", "AMF", "guidance", "denoising", "peak", "GPU")
        echo_table(header, [
            (row["strategy"], row["options"], _gib(sum(row["weights"].values())),
             _gib(row["guidance"].get("activations", 0)), _gib(row["guidance"].get("AMF", 0)),
             _gib(row["guidance_peak"]), _gib(row["denoising_peak"]), _gib(row["peak"]),
             f"{row['smallest_gpu_gb']} GB" if row["smallest_gpu_gb"] else "-")
            for row in group
        ])
    if checks:
        typer.echo("\nGuidance activations: the model against torch's count (saved_tensors_hooks over diffsynth's "
                   "blocks on the meta device, flash attention)")
        echo_table(("backbone", "tokens", "block", "checkpointing", "model GiB", "torch GiB", "error %"), [
            (row["backbone"], "x".join(map(str, row["tokens"])), str(row["block"]), "on" if row["checkpointing"]
             else "off", f"{row['model'] / GIB:.3f}", f"{row['torch'] / GIB:.3f}", f"{row['error_percent']:+.2f}")
            for row in checks
        ])
