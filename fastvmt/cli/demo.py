"""``fastvmt demo``: the whole pipeline on a procedural clip and a tiny random Wan, no weights needed."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import user_errors


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(Path("fastvmt-demo"), "--out", "-o", help="Folder for the demo's files."),
    small: bool = typer.Option(False, help="A smaller, faster run (9 frames at 48x64, 5 steps)."),
    seed: int = typer.Option(0, help="Seed of the clip, the tiny model and the sampling noise."),
    overwrite: bool = typer.Option(False, help="Replace existing demo files."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Run FastVMT end to end without weights: writes reference.mp4, output.mp4, flow.png, report.json."""
    from fastvmt.demo import NOTICE, DemoFiles, run_demo
    from fastvmt.generation.sampling import check_seed

    check_seed(seed)
    typer.echo(NOTICE)
    start = time.perf_counter()
    report = run_demo(out, size="small" if small else "default", seed=seed, overwrite=overwrite, progress=progress)
    counts, timing = report["counts"], report["amf_timing_480x832"]
    typer.echo(
        f"guided {counts['guided_steps']} of {counts['steps']} steps; "
        f"gradients computed {counts['gradients_computed']}, reused {counts['gradients_reused']}"
    )
    typer.echo(
        f"AMF forward+backward at {'x'.join(map(str, timing['shape']))} on this machine ({timing['backend']} backend):"
        f" dense {timing['dense_seconds']:.2f} s, windowed {timing['windowed_seconds']:.2f} s"
    )
    files = DemoFiles(out)
    typer.echo(f"wrote {', '.join(str(p) for p in files.all())} in {time.perf_counter() - start:.0f} s")
