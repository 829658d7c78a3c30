"""``fastvmt bench quality`` (the quality of a batch run, per strategy) and ``fastvmt bench manifest`` (the DAVIS
manifest of the DiTFlow/FastVMT protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional, get_args

import typer

from fastvmt.cli.errors import check_choice, parse_overrides, user_errors
from fastvmt.cli.evaluate import bench_app


@bench_app.command("quality")
@user_errors
def quality(
    run_dir: Annotated[Path, typer.Argument(help="A batch's output folder (fastvmt batch --out).")],
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Folder for quality.md, quality.csv, quality_jobs.csv, quality.png. (default: RUN_DIR)")
    ] = None,
    tracker: Annotated[str, typer.Option(help="Point tracker: lk (OpenCV) or cotracker (local checkpoint).")] = "lk",
    tracker_option: Annotated[list[str], typer.Option(
        "--tracker-option", help="KEY=VALUE tracker option, repeatable (cotracker: checkpoint=PATH).")] = [],
    grid: Annotated[int, typer.Option(help="Query points a side for motion fidelity.")] = 55,
    incomplete: Annotated[str, typer.Option(help="drop | zero: tracklets lost before the last frame.")] = "drop",
    clip_model: Annotated[Optional[Path], typer.Option(
        help="Local CLIP model directory: adds text similarity and temporal consistency.")] = None,
    vbench_dir: Annotated[Optional[Path], typer.Option(
        help="Local VBench model directory: adds subject and background consistency, aesthetic quality and motion "
        "smoothness, and the paper's Table 2.")
    ] = None,
) -> None:
    """Score every finished job of RUN_DIR and tabulate per strategy (the FastVMT paper's Table 1 layout)."""
    from fastvmt import plugins
    from fastvmt.evaluation.quality import TABLE2, QualityScorer, find_run_jobs, strategy_labels, summarize
    from fastvmt.evaluation.quality_files import write_quality
    from fastvmt.evaluation.quality_tables import QualityContext, strategy_table
    from fastvmt.metrics import ClipScorer
    from fastvmt.metrics.motion_fidelity import Incomplete, check_grid
    from fastvmt.metrics.vbench import VBenchScorer

    check_grid(grid)
    check_choice("--incomplete", incomplete, get_args(Incomplete))
    point_tracker = plugins.create("tracker", tracker, parse_overrides(
        tracker_option, option="--tracker-option", example="checkpoint=/path/ct.pth"))
    jobs, left_out = find_run_jobs(run_dir)
    scorer = QualityScorer(point_tracker, grid=grid, incomplete=incomplete,
                           clip=ClipScorer(clip_model) if clip_model else None,
                           vbench=VBenchScorer(vbench_dir) if vbench_dir else None)
    labels = strategy_labels(jobs)
    scored = []
    for number, job in enumerate(jobs, start=1):
        scored.append(scorer.score(job, labels[job.id]))
        typer.echo(f"[{number}/{len(jobs)}] scored {job.id}", err=True)
    measures = tuple(dict.fromkeys(job.record["peak_memory"]["measure"] for job in jobs
                                   if (job.record.get("peak_memory") or {}).get("bytes") is not None))
    context = QualityContext(str(run_dir), tracker, grid, incomplete, None if clip_model is None else str(clip_model),
                             left_out, measures, None if vbench_dir is None else str(vbench_dir))
    strategies = summarize(scored)
    paths = write_quality(run_dir if out is None else out, strategies, scored, context)
    typer.echo(strategy_table(strategies))
    if vbench_dir:
        typer.echo(f"\nThe paper's Table 2:\n{strategy_table(strategies, TABLE2)}")
    typer.echo(f"wrote {', '.join(map(str, paths))}")


@bench_app.command("manifest")
@user_errors
def manifest(
    davis_dir: Annotated[Path, typer.Argument(help="Local DAVIS folder (JPEGImages/480p/<clip>/*.jpg).")],
    captions: Annotated[Path, typer.Argument(help="JSON object mapping each clip to its list of three prompts.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The manifest to write (JSON Lines).")],
    frames: Annotated[int, typer.Option(help="Frames of each clip: 24 (DiTFlow; the batch runs 21) or 4k+1.")],
    strategy: Annotated[Optional[list[str]], typer.Option(
        "--strategy", help="Strategy to run each (clip, prompt) with; repeatable. (default: the built-in presets)")
    ] = None,
    resolution: Annotated[str, typer.Option(help="DAVIS resolution folder under JPEGImages.")] = "480p",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing manifest.")] = False,
) -> None:
    """Write the fastvmt batch manifest of the DiTFlow/FastVMT protocol: DAVIS clips x 3 prompts x strategies."""
    from fastvmt.evaluation.davis import PROMPTS_PER_CLIP, davis_manifest, write_manifest
    from fastvmt.outputs import refuse_inputs

    from fastvmt.strategies.presets import PRESETS

    names = strategy or [preset.name for preset in PRESETS]
    refuse_inputs([out], [("captions file", captions)])
    result = davis_manifest(davis_dir, captions, frames=frames, strategies=names, resolution=resolution)
    write_manifest(out, result, overwrite=overwrite)
    typer.echo(f"wrote {out}: {len(result.lines)} jobs ({result.clips} clips x {PROMPTS_PER_CLIP} prompts x "
               f"{len(names)} strateg{'y' if len(names) == 1 else 'ies'})")
    if result.run_frames != result.frames:
        typer.echo(f"note: Wan runs 4k+1 frames: the batch takes the first {result.run_frames} of each clip's "
                   f"{result.frames}", err=True)
    typer.echo(f"run it: fastvmt batch {out} --out RESULTS --model-dir WAN_DIR --frames {result.run_frames} "
               "--height 480 --width 832")
