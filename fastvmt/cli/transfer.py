"""``fastvmt transfer``: motion transfer with real weights, writing the video and its JSON sidecar; with
``--save-motion`` also the optimised motion embeddings, which ``--motion`` samples with a new prompt."""

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
    image: Annotated[Optional[Path], typer.Option(
        "--image", help="First frame for an image-to-video checkpoint (e.g. Wan2.1-I2V-14B-480P), cropped and resized "
                        "to the video's size; without it such a checkpoint takes the reference's first frame.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output MP4; the sidecar is written beside it.")] = Path(
        "output.mp4"
    ),
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
    config: Annotated[Optional[Path], typer.Option(help="Replay a run's JSON sidecar; explicit options win.")] = None,
    save_motion: Annotated[Optional[Path], typer.Option(
        "--save-motion", help="Also write the optimised motion embeddings (safetensors) for --motion; needs "
        "target=rope and a start from pure noise (e.g. --strategy ditflow --set target=rope).")] = None,
    motion: Annotated[Optional[Path], typer.Option(
        "--motion", help="Sample --prompt with motion embeddings written by --save-motion: no REFERENCE, no "
        "guidance; video size, steps, strategy, negative prompt and CFG scale default to the file's.")] = None,
    progress: Progress = True,
    *,
    given: dict[str, Any],
) -> None:
    """Transfer the motion of REFERENCE to a video generated from --prompt."""
    from fastvmt.transfer_run import (
        TransferJob,
        TransferSettings,
        prepare_transfer,
        replay_note,
        replay_options,
    )

    named = {key: value for key, value in (("reference", reference), ("prompt", prompt), ("image", image))
             if value is not None}
    if motion is not None:
        if reference is not None or config is not None or save_motion is not None:
            raise ValueError("--motion samples saved motion embeddings without a reference: drop REFERENCE, "
                             "--config and --save-motion")
        _transfer_motion(motion, {**given, **named}, out, overwrite)
        return
    recorded = replay_options(config) if config is not None else {}
    options = {**recorded, **given, **named}
    if recorded.get("motion_file") and save_motion is None:  # the sidecar of a --motion run
        _transfer_motion(Path(recorded["motion_file"]), options, out, overwrite, inputs=[("--config sidecar", config)])
        return
    for required in ("reference", "prompt", "model_dir"):
        if not options.get(required):
            raise ValueError(f"missing --{required.replace('_', '-')} (or a --config sidecar that has it)")
    settings = TransferSettings.from_options(options).check()
    job = TransferJob(options["reference"], options["prompt"], image=options.get("image"))
    strategy = settings.job_strategy(job)
    prepared = prepare_transfer(job, settings, out, overwrite=overwrite, inputs=[("--config sidecar", config)])
    if save_motion is not None:
        _check_motion_output(save_motion, strategy, overwrite,
                             [("reference", job.reference), ("image", job.image), ("--config sidecar", config),
                              ("--out", out)])
    for note in prepared.reference.notes:
        typer.echo(f"note: {note}", err=True)
    backbone = settings.load_backbone()
    note = replay_note(recorded, settings, backbone.device)  # None without --config
    if note is not None:
        typer.echo(f"note: {note}", err=True)
    result = prepared.run(settings.pipeline(backbone, strategy))
    for note in result.report.notes:
        typer.echo(f"note: {note}", err=True)
    if save_motion is not None:
        from fastvmt.generation.motion_file import save_motion as write_motion

        write_motion(result.motion, save_motion, overwrite=overwrite)
        prepared.write(result, motion_file=str(save_motion.resolve()))
        typer.echo(f"wrote {save_motion}")
    else:
        prepared.write(result)
    typer.echo(f"wrote {prepared.out} and {prepared.sidecar}")
    typer.echo(result.report.motion_check.summary())


def _check_motion_output(path: Path, strategy: Any, overwrite: bool, inputs: list[tuple[str, Any]]) -> None:
    """``--save-motion``'s checks before any model work: a strategy that makes motion embeddings, a path that is
    no input and no existing file (without ``--overwrite``)."""
    from fastvmt.generation.motion_file import check_savable
    from fastvmt.outputs import refuse_inputs, refuse_overwrite

    check_savable(strategy)
    refuse_inputs([path], inputs)
    refuse_overwrite([path], overwrite)


def _transfer_motion(path: Path, options: dict[str, Any], out: Path, overwrite: bool,
                     inputs: list[tuple[str, Any]] = ()) -> None:
    """``fastvmt transfer --motion`` (or ``--config`` with the sidecar of such a run): the motion file's video size,
    steps, strategy, negative prompt and CFG scale unless given; every check, the file's schedule included, before
    the model loads. ``inputs``: other files read, which the outputs must not be."""
    from fastvmt.generation.motion_file import load_motion
    from fastvmt.generation.sampling import FlowMatchSchedule
    from fastvmt.io import check_output_path
    from fastvmt.io.image import read_image
    from fastvmt.io.video import encode_video
    from fastvmt.outputs import (
        atomic_outputs,
        json_text,
        refuse_inputs,
        refuse_overwrite,
    )
    from fastvmt.transfer_run import (
        TransferJob,
        TransferSettings,
        run_environment,
        sidecar_path,
    )

    for required in ("prompt", "model_dir"):
        if not options.get(required):
            raise ValueError(f"missing --{required.replace('_', '-')}")
    saved = load_motion(path)
    made = saved.sampling
    defaults = {"num_frames": saved.video["num_frames"], "height": saved.video["height"],
                "width": saved.video["width"], "num_inference_steps": made.get("num_inference_steps"),
                "strategy": dict(saved.strategy), "negative_prompt": made.get("negative_prompt"),
                "cfg_scale": made.get("cfg_scale")}
    settings = TransferSettings.from_options({**defaults, **options}).check()
    # The job names the motion file where a reference would be: job_strategy reads only its strategy fields.
    strategy = settings.job_strategy(TransferJob(path, options["prompt"]))
    saved.check_schedule(FlowMatchSchedule.wan(settings.num_inference_steps, shift=strategy.shift,
                                               denoising_strength=strategy.denoising_strength,
                                               strength_semantics=strategy.strength_semantics).sigmas)
    image = options.get("image")
    refuse_inputs([out, sidecar_path(out)], [("--motion file", path), ("image", image), *inputs])
    out = check_output_path(out, overwrite=overwrite)
    refuse_overwrite([sidecar_path(out)], overwrite)
    first_frame = None if image is None else read_image(image, settings.height, settings.width).frame
    backbone = settings.load_backbone()
    pipeline = settings.pipeline(backbone, strategy)
    result = pipeline.transfer_motion(saved, options["prompt"], negative_prompt=settings.negative_prompt,
                                      num_inference_steps=settings.num_inference_steps, cfg_scale=settings.cfg_scale,
                                      seed=settings.seed, progress=settings.progress, image=first_frame)
    if image is not None:
        result.report.config["image"] = str(Path(image).resolve())
    result.report.config.update(motion_file=str(path.resolve()), model_dir=str(Path(settings.model_dir).resolve()),
                                dtype=settings.dtype, device=settings.device, offload=settings.offload,
                                environment=run_environment(result.latents.device))
    with atomic_outputs([out, sidecar_path(out)], overwrite=overwrite) as (video, sidecar):
        encode_video(video, result.frames)
        sidecar.write_text(json_text(result.report.to_dict()))
    counts = result.report.counts
    typer.echo(f"wrote {out} and {sidecar_path(out)} ({counts.steps} steps, {counts.gradients_computed} gradients)")
