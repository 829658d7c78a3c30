"""``fastvmt transfer``: motion transfer with real weights, writing the video and its JSON sidecar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import parse_overrides, user_errors
from fastvmt.outputs import refuse_overwrite

DEFAULTS: dict[str, Any] = {
    "strategy": "fastvmt",
    "num_frames": 81,
    "height": 480,
    "width": 832,
    "seed": 42,
    "num_inference_steps": 50,
    "backend": "auto",
}


def sidecar_path(video: Path) -> Path:
    """Where a run's JSON sidecar sits: beside the video, same stem."""
    return video.with_suffix(".json")


def _replayed(config: Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    try:
        sidecar = json.loads(config.read_text())
        return {**sidecar["config"], "seed": sidecar["seed"]}
    except FileNotFoundError:
        raise FileNotFoundError(f"config file {config} does not exist") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{config} is not a fastvmt run sidecar ({exc})") from None


@app.command()
@user_errors
def transfer(
    reference: Optional[Path] = typer.Argument(None, help="Reference video (any ffmpeg-readable file)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", "-p", help="What the generated video shows."),
    model_dir: Optional[Path] = typer.Option(None, "--model-dir", help="Local Wan2.1 T2V checkpoint directory."),
    strategy: Optional[str] = typer.Option(
        None, help="Strategy preset (fastvmt, ditflow, no_transfer, plugins'). [default: fastvmt]"
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Strategy override KEY=VALUE, e.g. extractor.window=11 or scheduler=every (repeatable)."
    ),
    backend: Optional[str] = typer.Option(None, help="AMF backend: auto, torch, triton, reference. [default: auto]"),
    frames: Optional[int] = typer.Option(None, help="Frames to generate, 4k+1. [default: 81]"),
    height: Optional[int] = typer.Option(None, help="Height in pixels, a multiple of 16. [default: 480]"),
    width: Optional[int] = typer.Option(None, help="Width in pixels, a multiple of 16. [default: 832]"),
    seed: Optional[int] = typer.Option(None, help="Random seed. [default: 42]"),
    steps: Optional[int] = typer.Option(None, help="Denoising steps. [default: 50]"),
    strength: Optional[float] = typer.Option(None, help="Denoising strength in (0, 1]. [default: the strategy's]"),
    cfg: Optional[float] = typer.Option(None, help="Classifier-free guidance scale. [default: the strategy's]"),
    negative_prompt: Optional[str] = typer.Option(None, help="Negative prompt. [default: Wan's]"),
    out: Path = typer.Option(Path("output.mp4"), "--out", "-o", help="Output MP4; the sidecar is written beside it."),
    overwrite: bool = typer.Option(False, help="Replace existing outputs."),
    config: Optional[Path] = typer.Option(None, help="Replay a run's JSON sidecar; explicit options win."),
    dtype: str = typer.Option("bfloat16", help="Model dtype: bfloat16, float16 or float32."),
    device: Optional[str] = typer.Option(None, help="Torch device. [default: cuda if available, else cpu]"),
    offload: bool = typer.Option(False, help="Offload model weights to the CPU between uses (low-VRAM GPUs)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Transfer the motion of REFERENCE to a video generated from --prompt."""
    given = {
        "reference": reference, "prompt": prompt, "model_dir": model_dir, "strategy": strategy, "backend": backend,
        "num_frames": frames, "height": height, "width": width, "seed": seed, "num_inference_steps": steps,
        "denoising_strength": strength, "cfg_scale": cfg, "negative_prompt": negative_prompt,
    }
    run = {**DEFAULTS, **_replayed(config), **{k: v for k, v in given.items() if v is not None}}
    for required in ("reference", "prompt", "model_dir"):
        if not run.get(required):
            raise ValueError(f"missing --{required.replace('_', '-')} (or a --config sidecar that has it)")
    if not Path(run["model_dir"]).is_dir():
        raise NotADirectoryError(
            f"model directory {run['model_dir']} does not exist (download Wan2.1-T2V weights there)"
        )
    from fastvmt.io import check_output_path, read_video, write_video

    check_output_path(out, overwrite=overwrite)
    refuse_overwrite([sidecar_path(out)], overwrite)
    from fastvmt.generation.pipeline import DEFAULT_NEGATIVE_PROMPT, MotionTransferPipeline
    from fastvmt.strategies.components import resolve_strategy
    from fastvmt.strategies.spec import Strategy

    video = read_video(Path(run["reference"]), num_frames=run["num_frames"], height=run["height"], width=run["width"])
    for note in video.notes:
        typer.echo(f"note: {note}", err=True)
    base = Strategy.from_dict(run["strategy"]) if isinstance(run["strategy"], dict) else run["strategy"]
    chosen = resolve_strategy(base, parse_overrides(overrides))
    pipe = MotionTransferPipeline.from_pretrained(
        str(run["model_dir"]), strategy=chosen, backend=None if run["backend"] == "auto" else run["backend"],
        **_backbone_options(dtype, device, offload),
    )
    result = pipe(
        video.frames, run["prompt"], negative_prompt=run.get("negative_prompt") or DEFAULT_NEGATIVE_PROMPT,
        num_inference_steps=run["num_inference_steps"], denoising_strength=run.get("denoising_strength"),
        cfg_scale=run.get("cfg_scale"), seed=run["seed"], progress=progress,
    )
    result.report.config.update(reference=str(run["reference"]), model_dir=str(run["model_dir"]))
    write_video(out, result.frames, fps=video.fps, overwrite=overwrite)
    result.report.to_json(sidecar_path(out))
    typer.echo(f"wrote {out} and {sidecar_path(out)}")


def _backbone_options(dtype: str, device: str | None, offload: bool) -> dict[str, Any]:
    import torch

    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if dtype not in dtypes:
        raise ValueError(f"--dtype must be one of {', '.join(dtypes)}, got {dtype!r}")
    options: dict[str, Any] = {"dtype": dtypes[dtype], "offload": "cpu" if offload else None}
    if device is not None:
        options["device"] = device
    return options
