"""Evaluation commands: ``fastvmt eval`` (motion fidelity of a video pair) and ``fastvmt bench cost``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional, get_args

import typer

from fastvmt.backbones import RECOMMENDED_RUN
from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.cli.app import app
from fastvmt.cli.errors import check_choice, parse_overrides, user_errors

bench_app = typer.Typer(help="Benchmarks and cost models.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

@app.command("eval")
@user_errors
def evaluate(
    reference: Path = typer.Argument(..., help="The reference (motion source) video."),
    generated: Path = typer.Argument(..., help="The generated video, with the same number of frames."),
    tracker: str = typer.Option("lk", help="Registered point tracker: lk (OpenCV, no weights) or cotracker."),
    tracker_option: list[str] = typer.Option(
        [], "--tracker-option", help="KEY=VALUE tracker option, repeatable (cotracker: checkpoint=PATH)."
    ),
    grid: int = typer.Option(55, help="Query points a side on frame 0 (grid x grid tracklets)."),
    direction: str = typer.Option("both", help="both | gen_to_ref | ref_to_gen best-match averaging."),
    diagonal: str = typer.Option("keep", help="keep | exclude | release: same-grid-point pairs."),
    min_motion: float = typer.Option(0.0, help="Steps no longer than this (pixels) count as no motion."),
    incomplete: str = typer.Option("drop", help="drop | zero: tracklets lost before the last frame."),
    clip_model: Optional[Path] = typer.Option(
        None, help="Local CLIP model directory: adds the generated video's temporal consistency (and --prompt score)."
    ),
    prompt: Optional[str] = typer.Option(None, help="Text prompt for the CLIP text similarity (needs --clip-model)."),
    vbench_dir: Optional[Path] = typer.Option(
        None, help="Local VBench model directory: adds the generated video's subject and background consistency, "
        "aesthetic quality and motion smoothness."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Motion fidelity of GENERATED to REFERENCE: do their point tracks move alike? (-1 .. 1, higher is better)."""
    from dataclasses import replace

    from fastvmt import plugins
    from fastvmt.io import read_video
    from fastvmt.metrics import ClipScorer, evaluate_motion_fidelity
    from fastvmt.metrics.motion_fidelity import Diagonal, Direction, Incomplete, check_grid
    from fastvmt.metrics.vbench import VBenchScorer
    from fastvmt.values import check_real

    check_choice("--direction", direction, get_args(Direction))
    check_choice("--diagonal", diagonal, get_args(Diagonal))
    check_choice("--incomplete", incomplete, get_args(Incomplete))
    check_grid(grid)
    check_real("--min-motion (pixels)", min_motion, low=0.0)
    if prompt is not None and clip_model is None:
        raise ValueError("--prompt scores text alignment with CLIP: also pass --clip-model DIR (local weights)")
    options = parse_overrides(tracker_option, option="--tracker-option", example="checkpoint=/path/ct.pth")
    point_tracker = plugins.create("tracker", tracker, options)  # before any video is decoded
    scorer = ClipScorer(clip_model) if clip_model is not None else None
    vbench = VBenchScorer(vbench_dir) if vbench_dir is not None else None
    reference_video = read_video(reference, num_frames="all").frames
    generated_video = read_video(generated, num_frames="all").frames
    not_scored = vbench.unscorable(generated_video) if vbench is not None else {}
    result = evaluate_motion_fidelity(
        reference_video, generated_video, tracker=point_tracker, grid=grid, direction=direction, diagonal=diagonal,
        min_motion=min_motion, incomplete=incomplete,
    )
    result = replace(result, tracker=tracker)  # the registered name asked for, not the tracker's class
    clip: dict[str, float] = {}
    if scorer is not None:
        clip["temporal_consistency"] = scorer.temporal_consistency(generated_video)
        if prompt is not None:
            clip["clip_text_similarity"] = scorer.text_similarity(generated_video, prompt)
    if vbench is not None:
        clip |= vbench.score(generated_video)
    if as_json:
        extra = {**{name: None for name in not_scored}, "not_scored": not_scored} if not_scored else {}
        typer.echo(json.dumps({"reference": str(reference), "generated": str(generated), **result.to_dict(), **clip,
                               **extra}))
        return
    typer.echo(f"motion fidelity: {result.score:.4f}  ({result.direction}; tracker {result.tracker}, "
               f"grid {result.grid}x{result.grid}, {result.frames} frames, diagonal {result.diagonal})")
    typer.echo(f"  generated->reference {result.gen_to_ref:.4f}   reference->generated {result.ref_to_gen:.4f}")
    typer.echo(f"  valid track positions: reference {result.reference_valid:.1%}, generated "
               f"{result.generated_valid:.1%}; tracklets scored ({result.incomplete} incomplete): reference "
               f"{result.reference_tracklets}, generated {result.generated_tracklets}")
    for name, value in clip.items():
        typer.echo(f"{name.replace('_', ' ')} (generated): {value:.4f}")
    for name, why in not_scored.items():
        typer.echo(f"{name.replace('_', ' ')} (generated): not scored: {why}")


@bench_app.command("cost")
@user_errors
def cost(
    backbone: list[str] = typer.Option(list(RELEASED_DITS), help=f"Wan2.1 size(s): {', '.join(RELEASED_DITS)}."),
    frames: list[int] = typer.Option(
        [RECOMMENDED_RUN.num_frames, 32], help="Frame counts; a count that is not 4k+1 is rounded up (32 -> 33, what Wan would take)."
    ),
    height: int = typer.Option(RECOMMENDED_RUN.height, help="Video height, pixels."),
    width: int = typer.Option(RECOMMENDED_RUN.width, help="Video width, pixels."),
    strategy: list[str] = typer.Option([], help="Strategies to cost (default: all)."),
    steps: int = typer.Option(RECOMMENDED_RUN.num_steps, help="Sampling steps."),
    strength_semantics: Optional[str] = typer.Option(
        None, help="Replaces every strategy's strength_semantics: diffsynth (all steps run at any strength) or "
        "truncate (floor(steps * strength) run). Default: each strategy's own."
    ),
    guidance_checkpointing: bool = typer.Option(
        False, "--guidance-checkpointing", help="Cost every strategy with its guidance forward checkpointed (the "
        "backward recomputes the blocks before the captured one)."
    ),
    tflops: float = typer.Option(790.0, help="Sustained TFLOP/s for the time floor (H100 bf16: 790)."),
    step_cache_skip: Optional[float] = typer.Option(
        None, help="Assumed share of the skippable unguided steps the step cache skips, 0 to 1 (it depends on the "
        "weights). Default: fastvmt.costmodel.STEP_CACHE_SKIP, from TeaCache's reported ~2x on Wan2.1 T2V."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    memory: bool = typer.Option(
        False, "--memory", help="Print the GPU memory model instead: peak GiB per strategy and option (checkpointing, "
        "offloaded text encoder, merged CFG) and the smallest common GPU it fits (this package's runs only)."
    ),
    check_activations: bool = typer.Option(
        False, "--check-activations", help="With --memory: also count the guidance activations with torch on the "
        "meta device (diffsynth's real blocks, no memory) and print the model's error."
    ),
    prompts: list[int] = typer.Option(
        [], help="Print instead the cost of this many prompts sharing one saved motion (repeatable, e.g. --prompts 1 "
        "--prompts 4 --prompts 16) against guiding each prompt."
    ),
) -> None:
    """FLOPs of a whole guided generation per strategy, by phase, with ratios and an H100 time floor, and each speed
    lever alone and together (or, with --memory, its peak GPU memory)."""
    from fastvmt.costmodel import PHASES, RECIPES, STEP_CACHE_SKIP, Sampling, lever_costs, run_cost
    from fastvmt.strategies.spec import check_field
    from fastvmt.geometry import frame_count_at_least, token_grid
    from fastvmt.values import check_real

    check_real("--tflops", tflops, low=0.0, low_open=True)
    step_cache_skip = STEP_CACHE_SKIP if step_cache_skip is None else step_cache_skip
    check_real("--step-cache-skip", step_cache_skip, low=0.0, high=1.0)

    unknown = [name for name in backbone if name not in RELEASED_DITS]
    if unknown:
        raise ValueError(f"unknown backbone {unknown[0]!r}; available: {', '.join(RELEASED_DITS)}")
    names = strategy or list(RECIPES)
    missing = [name for name in names if name not in RECIPES]
    if missing:
        raise ValueError(f"unknown strategy {missing[0]!r}; available: {', '.join(RECIPES)}")
    if check_activations and not memory:
        raise ValueError("--check-activations goes with --memory")
    if memory:
        _memory(backbone, frames, height, width, names, as_json, check_activations)
        return
    sampling = Sampling(num_steps=steps)
    if prompts:
        from fastvmt.cli.amortised_table import amortised_rows, print_amortised

        if strategy or memory or strength_semantics is not None:
            raise ValueError("--prompts costs the motion-embedding recipe (ditflow_rope): drop --strategy and "
                             "--strength-semantics")
        print_amortised(amortised_rows(backbone, frames, height, width, prompts, sampling, tflops), tflops, as_json)
        return
    recipes = {name: RECIPES[name] for name in names}
    if strength_semantics is not None:
        semantics = check_field("strength_semantics", strength_semantics)
        recipes = {name: dataclasses.replace(recipe, strategy=recipe.strategy.override(strength_semantics=semantics))
                   for name, recipe in recipes.items()}
    if guidance_checkpointing:
        recipes = {name: dataclasses.replace(recipe, strategy=recipe.strategy.override(guidance_checkpointing=True))
                   for name, recipe in recipes.items()}
    baseline = "ditflow" if "ditflow" in names else names[0]
    rows: list[dict[str, Any]] = []
    levers: list[dict[str, Any]] = []
    for size in backbone:
        for asked in frames:
            valid = frame_count_at_least(asked)
            grid = token_grid(valid, height, width)
            costs = {name: run_cost(recipe, RELEASED_DITS[size], grid, sampling, step_cache_skip)
                     for name, recipe in recipes.items()}
            levers.extend(_lever_rows(lever_costs(RELEASED_DITS[size], grid, sampling, step_cache_skip), size,
                                      valid, tflops))
            for name, run in costs.items():
                rows.append({
                    "backbone": size, "frames_asked": asked, "frames": valid, "height": height,
                    "width": width, "tokens": [grid.frames, grid.height, grid.width], "strategy": name,
                    "strength_semantics": recipes[name].strategy.strength_semantics,
                    "steps": run.steps, "guided_steps": run.guided, "cached_steps": run.cached_steps,
                    "gradients": run.gradients,
                    "reference_passes": run.reference_passes, "phases": run.phases, "total": run.total,
                    "guidance": run.total - run.phases[PHASES[0]],
                    f"speedup_vs_{baseline}": costs[baseline].total / run.total,
                    f"guidance_speedup_vs_{baseline}": (costs[baseline].total - costs[baseline].phases[PHASES[0]])
                    / max(run.total - run.phases[PHASES[0]], 1),
                    "seconds_floor": run.seconds_at(tflops * 1e12),
                })
    if as_json:
        typer.echo(json.dumps({"tflops": tflops, "step_cache_skip": step_cache_skip, "rows": rows, "levers": levers}))
        return
    _print_cost_tables(rows, PHASES, baseline, tflops, recipes)
    _print_lever_tables(levers, step_cache_skip)


def _lever_rows(costs: dict[str, Any], size: str, frames: int, tflops: float) -> list[dict[str, Any]]:
    """One row per lever run: FLOPs, floor seconds and the ratios to the release and to DiTFlow."""
    release, ditflow = costs["fastvmt-release"].total, costs["ditflow"].total
    return [{"backbone": size, "frames": frames, "run": name, "steps": run.steps, "cached_steps": run.cached_steps,
             "total": run.total, "seconds_floor": run.seconds_at(tflops * 1e12),
             "ratio_to_release": run.total / release, "ratio_to_ditflow": run.total / ditflow}
            for name, run in costs.items()]


def _print_lever_tables(levers: list[dict[str, Any]], step_cache_skip: float) -> None:
    from fastvmt.cli.listings import echo_table

    typer.echo(f"\nLevers on the release's recipe, alone and together (fastvmt_turbo), as registered (the options "
               f"above do not change them); the step cache is assumed to skip {step_cache_skip:.0%} of the unguided "
               "steps it may skip (an assumption: it depends on the weights). 'steps' = run/cached; ratio = total / "
               "the release's or DiTFlow's.")
    for key in dict.fromkeys((row["backbone"], row["frames"]) for row in levers):
        group = [row for row in levers if (row["backbone"], row["frames"]) == key]
        typer.echo(f"\nWan2.1 {key[0]}, {key[1]} frames")
        echo_table(("run", "steps", "total", "/ release", "/ ditflow", "floor s"), [
            (row["run"], f"{row['steps']}/{row['cached_steps']}c", _pflop(row["total"]),
             f"{row['ratio_to_release']:.2f}", f"{row['ratio_to_ditflow']:.2f}", f"{row['seconds_floor']:.1f}")
            for row in group])


def _memory(backbones: list[str], frames: list[int], height: int, width: int, names: list[str], as_json: bool,
            check_activations: bool) -> None:
    """The memory model's table for the strategies run here (early exit; other recipes are left out)."""
    from fastvmt.cli.memory_table import activation_check_rows, memory_rows, print_memory
    from fastvmt.costmodel import RECIPES
    from fastvmt.geometry import frame_count_at_least, token_grid

    recipes = {name: RECIPES[name] for name in names if RECIPES[name].guidance_forward == "early_exit"}
    if not recipes:
        covered = [name for name, recipe in RECIPES.items() if recipe.guidance_forward == "early_exit"]
        raise ValueError(f"the memory model covers this package's runs ({', '.join(covered)}), not {', '.join(names)}")
    rows, checks = [], []
    for size in backbones:
        for asked in frames:
            grid = token_grid(frame_count_at_least(asked), height, width)
            rows += memory_rows(size, grid, recipes)
            if check_activations:
                checks += activation_check_rows(size, grid, next(iter(recipes.values())).strategy.block)
    print_memory(rows, checks, as_json)


def _pflop(flops: int | float) -> str:
    """FLOPs as PFLOP, two decimals, or scientific below 0.01."""
    value = flops / 1e15
    return f"{value:.2f}" if value >= 0.01 or value == 0 else f"{value:.1e}"


def _print_cost_tables(rows: list[dict[str, Any]], phases: tuple[str, ...], baseline: str, tflops: float,
                       recipes: dict[str, Any]) -> None:
    from fastvmt.cli.listings import echo_table

    typer.echo(f"PFLOP per whole generation (1 PFLOP = 1e15); time floor at {tflops:g} TFLOP/s. Matmul FLOPs "
               "(FlopCounterMode convention); VAE and text encoder excluded. 'guidance' = total - denoising; "
               "'guidance vs' compares it alone; 'steps' = steps run/guided.")
    for name, recipe in recipes.items():
        strategy = recipe.strategy
        typer.echo(f"  {name}: strength {strategy.denoising_strength:g} ({strategy.strength_semantics}), "
                   f"{recipe.summary}")
    for key in dict.fromkeys((row["backbone"], row["frames_asked"]) for row in rows):
        group = [row for row in rows if (row["backbone"], row["frames_asked"]) == key]
        first = group[0]
        note = "" if first["frames"] == first["frames_asked"] else f" (asked {first['frames_asked']}: Wan takes 4k+1)"
        typer.echo(f"\nWan2.1 {first['backbone']}, {first['frames']} frames{note} at {first['height']}x"
                   f"{first['width']}, tokens {'x'.join(map(str, first['tokens']))}")
        header = ("strategy", "steps", "grads", *phases, "guidance", "total", f"vs {baseline}", "guidance vs",
                  "floor s")
        table = [
            (row["strategy"], f"{row['steps']}/{row['guided_steps']}g", str(row["gradients"]),
             *(_pflop(row["phases"][phase]) for phase in phases), _pflop(row["guidance"]), _pflop(row["total"]),
             f"{row[f'speedup_vs_{baseline}']:.2f}x", f"{row[f'guidance_speedup_vs_{baseline}']:.2f}x",
             f"{row['seconds_floor']:.1f}")
            for row in group
        ]
        echo_table(header, table)
