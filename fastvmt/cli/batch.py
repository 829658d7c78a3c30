"""``fastvmt batch``: every (reference, prompt) job of a JSONL manifest, locally or on Ray, resumable."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import check_choice, user_errors
from fastvmt.cli.options import ModelDir, Progress, with_run_options
from fastvmt.values import check_int, check_real

EXECUTORS = ("local", "ray")


def _executor(name: str, address: str | None, gpus_per_job: float | None, cpus_per_job: float | None,
              workers: int | None) -> Any:
    """The executor named by ``--executor``, its options checked (before any model loads)."""
    check_choice("--executor", name, EXECUTORS)
    if gpus_per_job is not None:
        check_real("--gpus-per-job", gpus_per_job, low=0.0)
    if cpus_per_job is not None:  # locally: torch threads, at most one per CPU of this machine
        check_real("--cpus-per-job (torch threads per job with the local executor: at most this machine's CPUs)"
                   if name == "local" else "--cpus-per-job", cpus_per_job, low=0.0, low_open=True,
                   high=os.cpu_count() if name == "local" else None)
    if workers is not None:
        check_int("--workers", workers, low=1)
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
@with_run_options
def batch(
    manifest: Annotated[Path, typer.Argument(help="JSONL file, one job per line: {\"reference\": ..., \"prompt\": "
                                                  "...} and optionally strategy, overrides, seed, id.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder: DIR/<id>/output.mp4 + output.json per "
                                                          "job.")],
    model_dir: ModelDir,
    executor: Annotated[str, typer.Option(help="local (this process, one job at a time) or ray.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="Ray cluster to join (auto, HOST:PORT, "
                                                            "ray://HOST:10001). (default: start a local Ray)")] = None,
    gpus_per_job: Annotated[Optional[float], typer.Option(help="GPUs each Ray worker reserves (0: CPU). "
                                                               "(default: 1)")] = None,
    cpus_per_job: Annotated[Optional[float], typer.Option(help="CPUs each worker reserves; torch threads per job. "
                                                               "(default: 1 on Ray, torch's choice locally)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Ray workers (each loads the model once). (default: as many "
                                                        "as the cluster fits)")] = None,
    metrics: Annotated[bool, typer.Option(help="Score each video's motion fidelity against its reference.")] = False,
    progress: Progress = False,
    *,
    given: dict[str, Any],
) -> None:
    """Run every job of MANIFEST into --out; a rerun skips finished jobs and retries failed ones."""
    from fastvmt.batch import BatchSettings, load_jobs, run_batch

    chosen = _executor(executor, ray_address, gpus_per_job, cpus_per_job, workers)
    threads = None if cpus_per_job is None else max(1, int(cpus_per_job))
    settings = BatchSettings.from_options({**given, "metrics": metrics, "threads": threads})
    jobs = load_jobs(manifest, settings)
    typer.echo(f"batch of {len(jobs)} job(s) into {out} ({chosen.name} executor)", err=True)

    def report(outcome: Any, number: int, total: int) -> None:
        detail = f": {outcome.error}" if outcome.error else ""
        typer.echo(f"[{number}/{total}] {outcome.status} {outcome.id} in {outcome.seconds:.1f} s{detail}", err=True)

    try:
        summary = run_batch(jobs, settings, out, chosen, on_progress=report, inputs=[("manifest", manifest)])
    except KeyboardInterrupt:
        typer.echo("interrupted: finished jobs are kept; rerun the same command to run the rest", err=True)
        raise typer.Exit(130) from None
    typer.echo(summary.table())
    typer.echo(f"summary: {out / 'summary.json'}")
    if summary.failed:
        typer.echo(f"{len(summary.failed)} job(s) failed (see {out}/<id>/error.json); rerun the same command to "
                   "retry them", err=True)
        raise typer.Exit(1)
