"""The options ``fastvmt transfer`` and ``fastvmt batch`` share, defined once: flags, help texts, defaults shown.

Each option is named like the :class:`~fastvmt.transfer_run.TransferSettings` field it sets and defaults to None,
"not given", so that a replayed sidecar's value, a manifest line's or the settings' default applies instead.
:func:`with_run_options` adds them to a command, which receives the fields given as one dict.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fastvmt.backbones import MODEL_DTYPES
from fastvmt.backbones.attention import ATTENTION_CHOICES
from fastvmt.cli.errors import parse_overrides
from fastvmt.strategies.spec import CFG_SCALE_RANGE
from fastvmt.transfer_run import TransferSettings

__all__ = ["Attention", "Device", "Dtype", "ModelDir", "Progress", "with_run_options"]

_DEFAULTS = {f.name: f.default for f in fields(TransferSettings)}


def _shown(name: str) -> str:
    value = _DEFAULTS[name]
    return f"(default: {('on' if value else 'off') if isinstance(value, bool) else value})"


#: Each command says whether it needs ``--model-dir`` (a replayed sidecar may hold it).
ModelDir = Annotated[Optional[Path], typer.Option(
    "--model-dir", help="Local Wan checkpoint directory, as released (`fastvmt backbones` lists the families).")]
#: Each command sets its own default (a batch shows no bar unless asked).
Progress = Annotated[bool, typer.Option(
    "--progress/--no-progress", help="Show the denoising steps' progress bar (a batch's: local executor only).")]

#: The model's dtype and device, which ``fastvmt ui`` takes too.
Dtype = Annotated[Optional[str], typer.Option("--dtype", help=f"Model dtype: {', '.join(MODEL_DTYPES)}. {_shown('dtype')}")]
Device = Annotated[Optional[str], typer.Option("--device", help="Torch device. (default: cuda if available, else cpu)")]
#: The DiT's attention kernel, which ``fastvmt ui`` takes too.
Attention = Annotated[Optional[str], typer.Option(
    "--attention", help=f"DiT attention kernel (diffsynth's names): {', '.join(ATTENTION_CHOICES)}; one without a "
                        f"backward (sage_attention) leaves the guidance forward to one with. {_shown('attention')}")]

#: The options every run command takes, by the settings field each sets.
_SHARED: dict[str, Any] = {
    "strategy": Annotated[Optional[str], typer.Option(
        "--strategy", help="Strategy preset (fastvmt, ditflow, no_transfer, plugins'); a manifest line's own wins. "
                           f"{_shown('strategy')}")],
    "overrides": Annotated[Optional[list[str]], typer.Option(
        "--set", help="Strategy override KEY=VALUE, e.g. extractor.window=11 or scheduler=every; repeatable (a "
                      "manifest line's own overrides win).")],
    "backend": Annotated[Optional[str], typer.Option(
        "--backend", help=f"AMF backend: auto, torch, triton, reference. {_shown('backend')}")],
    "num_frames": Annotated[Optional[int], typer.Option(
        "--frames", help=f"Frames to generate, 4k+1. {_shown('num_frames')}")],
    "height": Annotated[Optional[int], typer.Option(
        "--height", help=f"Height in pixels, a multiple of 16. {_shown('height')}")],
    "width": Annotated[Optional[int], typer.Option(
        "--width", help=f"Width in pixels, a multiple of 16. {_shown('width')}")],
    "seed": Annotated[Optional[int], typer.Option(
        "--seed", help=f"Random seed; a manifest line's own wins. {_shown('seed')}")],
    "num_inference_steps": Annotated[Optional[int], typer.Option(
        "--steps", help=f"Denoising steps. {_shown('num_inference_steps')}")],
    "denoising_strength": Annotated[Optional[float], typer.Option(
        "--strength", help="Denoising strength in (0, 1]. (default: the strategy's)")],
    "cfg_scale": Annotated[Optional[float], typer.Option(
        "--cfg", help=f"Classifier-free guidance scale, {CFG_SCALE_RANGE[0]:g} to {CFG_SCALE_RANGE[1]:g}. "
                      "(default: the strategy's)")],
    "negative_prompt": Annotated[Optional[str], typer.Option(
        "--negative-prompt", help="Negative prompt. (default: Wan's)")],
    "dtype": Dtype,
    "device": Device,
    "offload": Annotated[Optional[bool], typer.Option(
        "--offload/--no-offload", help=f"Offload model weights to the CPU between uses (low-VRAM GPUs). "
                                       f"{_shown('offload')}")],
    "guidance_checkpointing": Annotated[Optional[bool], typer.Option(
        "--guidance-checkpointing/--no-guidance-checkpointing",
        help="Recompute the guidance forward's blocks in the backward instead of keeping their activations: less "
             "GPU memory, one more forward of those blocks per gradient, the same result. (default: the "
             "strategy's)")],
    "attention": Attention,
    "step_cache": Annotated[Optional[float], typer.Option(
        "--step-cache", help="TeaCache threshold (e.g. 0.2) for the denoising steps after the last guided one; "
                             "--set step_cache=null turns a preset's off. (default: the strategy's)")],
}


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options to ``command`` (after its own in ``--help``) and call it with ``given``: the settings
    fields set on the command line, its own options named like fields (``model_dir``, ``progress``) included,
    with ``--set`` pairs parsed into ``overrides``."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "given"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=option)
              for name, option in _SHARED.items()]

    @functools.wraps(command)
    def run(**values: Any) -> Any:
        given = {name: value for name, value in values.items() if name in _DEFAULTS and value is not None}
        if "overrides" in given:
            given["overrides"] = parse_overrides(given["overrides"])
        return command(**{name: value for name, value in values.items() if name not in _SHARED}, given=given)

    run.__signature__ = inspect.Signature([*own, *shared])  # type: ignore[attr-defined]
    return run
