"""``fastvmt batch``: every (reference, prompt) job of a JSONL manifest, locally or on Ray, resumable."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Optional

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import parse_overrides, user_errors

EXECUTORS = ("local", "ray")


def _executor(name: str, address: str | None, gpus_per_job: float | None, cpus_per_job: float | None,
              workers: int | None) -> Any:
    """The executor named by ``--executor``, its options checked (before any model loads)."""
    if name not in EXECUTORS:
        raise ValueError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    if name == "local":
        given = [flag for flag, value in (("--ray-address", address), ("--gpus-per-job", gpus_per_job),
                                          ("--workers", workers)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to --executor ray; the local executor runs one job at a "
                             f"time on --device")
        from fastvmt.batch import LocalExecutor

        return LocalExecutor()
    if importlib.util.find_spec("ray") is None:
        raise ValueError("--executor ray needs Ray: pip install 'fastvmt[ray]' (or pip install 'ray[default]')")
    from fastvmt.batch.executors.ray import RayExecutor

    return RayExecutor(address, gpus_per_job=1.0 if gpus_per_job is None else gpus_per_job,
                       cpus_per_job=1.0 if cpus_per_job is None else cpus_per_job, workers=workers)


@app.command()
@user_errors
def batch(
    manifest: Path = typer.Argument(..., help="JSONL file, one job per line: {\"reference\": ..., \"prompt\": ...} "
                                              "and optionally strategy, overrides, seed, id."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: DIR/<id>/output.mp4 + output.json per job."),
    model_dir: Path = typer.Option(..., "--model-dir", help="Local Wan2.1 T2V checkpoint directory."),
    executor: str = typer.Option("local", help="local (this process, one job at a time) or ray."),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (auto, HOST:PORT, ray://HOST:10001). "
                                                         "(default: start a local Ray)"),
    gpus_per_job: Optional[float] = typer.Option(None, help="GPUs each Ray worker reserves (0: CPU). (default: 1)"),
    cpus_per_job: Optional[float] = typer.Option(None, help="CPUs each worker reserves; torch threads per job. "
                                                            "(default: 1 on Ray, torch's choice locally)"),
    workers: Optional[int] = typer.Option(None, help="Ray workers (each loads the model once). (default: as many "
                                                     "as the cluster fits)"),
    metrics: bool = typer.Option(False, help="Score each video's motion fidelity against its reference."),
    strategy: Optional[str] = typer.Option(None, help="Default strategy preset of the jobs. (default: fastvmt)"),
    overrides: list[str] = typer.Option([], "--set", help="Strategy override KEY=VALUE for every job (a job's "
                                                          "own overrides win); repeatable."),
    backend: Optional[str] = typer.Option(None, help="AMF backend: auto, torch, triton, reference. (default: auto)"),
    frames: Optional[int] = typer.Option(None, help="Frames to generate, 4k+1. (default: 81)"),
    height: Optional[int] = typer.Option(None, help="Height in pixels, a multiple of 16. (default: 480)"),
    width: Optional[int] = typer.Option(None, help="Width in pixels, a multiple of 16. (default: 832)"),
    seed: Optional[int] = typer.Option(None, help="Seed of jobs without one. (default: 42)"),
    steps: Optional[int] = typer.Option(None, help="Denoising steps. (default: 50)"),
    strength: Optional[float] = typer.Option(None, help="Denoising strength in (0, 1]. (default: the strategy's)"),
    cfg: Optional[float] = typer.Option(None, help="Classifier-free guidance scale. (default: the strategy's)"),
    negative_prompt: Optional[str] = typer.Option(None, help="Negative prompt. (default: Wan's)"),
    dtype: str = typer.Option("bfloat16", help="Model dtype: bfloat16, float16 or float32."),
    device: Optional[str] = typer.Option(None, help="Torch device. (default: cuda if available, else cpu)"),
    offload: bool = typer.Option(False, help="Offload model weights to the CPU between uses (low-VRAM GPUs)."),
    progress: bool = typer.Option(False, help="Show each job's step progress bar (local executor)."),
) -> None:
    """Run every job of MANIFEST into --out; a rerun skips finished jobs and retries failed ones."""
    from fastvmt.batch import BatchSettings, load_jobs, run_batch

    given = {
        "strategy": strategy, "backend": backend, "num_frames": frames, "height": height, "width": width,
        "seed": seed, "num_inference_steps": steps, "denoising_strength": strength, "cfg_scale": cfg,
        "negative_prompt": negative_prompt, "device": device,
    }
    threads = None if cpus_per_job is None else max(1, int(cpus_per_job))
    settings = BatchSettings(
        model_dir=str(model_dir), overrides=parse_overrides(overrides), dtype=dtype, offload=offload,
        metrics=metrics, threads=threads, progress=progress, **{k: v for k, v in given.items() if v is not None},
    )
    chosen = _executor(executor, ray_address, gpus_per_job, cpus_per_job, workers)
    jobs = load_jobs(manifest, settings)
    typer.echo(f"batch of {len(jobs)} job(s) into {out} ({chosen.name} executor)", err=True)

    def report(outcome: Any, number: int, total: int) -> None:
        detail = f": {outcome.error}" if outcome.error else ""
        typer.echo(f"[{number}/{total}] {outcome.status} {outcome.id} in {outcome.seconds:.1f} s{detail}", err=True)

    try:
        summary = run_batch(jobs, settings, out, chosen, on_progress=report)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished jobs are kept; rerun the same command to run the rest", err=True)
        raise typer.Exit(130) from None
    typer.echo(summary.table())
    typer.echo(f"summary: {out / 'summary.json'}")
    if summary.failed:
        typer.echo(f"{len(summary.failed)} job(s) failed (see {out}/<id>/error.json); rerun the same command to "
                   "retry them", err=True)
        raise typer.Exit(1)
