"""``fastvmt transfer``: motion transfer with real weights, writing the video and its JSON sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import user_errors
from fastvmt.cli.options import ModelDir, Progress, with_run_options


@app.command()
@user_errors
@with_run_options
def transfer(
    reference: Annotated[Optional[Path], typer.Argument(help="Reference video (any ffmpeg-readable file).")] = None,
    prompt: Annotated[Optional[str], typer.Option("--prompt", "-p", help="What the generated video shows.")] = None,
    model_dir: ModelDir = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output MP4; the sidecar is written beside it.")] = Path(
        "output.mp4"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    config: Annotated[Optional[Path], typer.Option(help="Replay a run's JSON sidecar; explicit options win.")] = None,
    progress: Progress = True,
    *,
    given: dict[str, Any],
) -> None:
    """Transfer the motion of REFERENCE to a video generated from --prompt."""
    from fastvmt.transfer_run import TransferJob, TransferSettings, prepare_transfer, replay_note, replay_options

    named = {key: value for key, value in (("reference", reference), ("prompt", prompt)) if value is not None}
    recorded = replay_options(config) if config is not None else {}
    options = {**recorded, **given, **named}
    for required in ("reference", "prompt", "model_dir"):
        if not options.get(required):
            raise ValueError(f"missing --{required.replace('_', '-')} (or a --config sidecar that has it)")
    settings = TransferSettings.from_options(options).check()
    job = TransferJob(options["reference"], options["prompt"])
    strategy = settings.job_strategy(job)
    prepared = prepare_transfer(job, settings, out, overwrite=overwrite, inputs=[("--config sidecar", config)])
    for note in prepared.reference.notes:
        typer.echo(f"note: {note}", err=True)
    backbone = settings.load_backbone()
    note = replay_note(recorded, settings, backbone.device)  # None without --config
    if note is not None:
        typer.echo(f"note: {note}", err=True)
    result = prepared.run(settings.pipeline(backbone, strategy))
    prepared.write(result)
    typer.echo(f"wrote {prepared.out} and {prepared.sidecar}")
    typer.echo(result.report.motion_check.summary())
