"""The one model a ``fastvmt ui`` server runs on, loaded once when it starts.

Either a Wan2.1 checkpoint folder (``--model-dir``) or the tiny random-weight Wan (``--backbone tiny-wan``),
which is written once into the run folder as a checkpoint, so that its runs load, and replay, like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fastvmt.transfer_run import TransferSettings

if TYPE_CHECKING:
    from fastvmt.interfaces import Backbone

__all__ = ["BACKBONES", "TINY_WAN", "ServedModel", "check_model_choice", "load_served_model"]

#: The weight-free choice of ``--backbone``: the tiny random Wan of :mod:`fastvmt.backbones.tiny`.
TINY_WAN = "tiny-wan"
BACKBONES = (TINY_WAN,)
#: Where in the run folder the tiny Wan's checkpoint is written (hidden: not a run).
TINY_WAN_FOLDER = ".tiny-wan"


@dataclass(frozen=True)
class ServedModel:
    """The loaded backbone, the settings every run starts from (model folder, dtype, device, offloading and
    this model's default size and steps), and a line that says what the model is."""

    backbone: Backbone
    settings: TransferSettings
    description: str


def check_model_choice(model_dir: Path | None, backbone: str | None) -> None:
    """``ValueError`` unless exactly one of ``model_dir`` and a known ``backbone`` is given."""
    if (model_dir is None) == (backbone is None):
        raise ValueError(f"give either --model-dir DIR (Wan2.1 weights) or --backbone {'|'.join(BACKBONES)}")
    if backbone is not None and backbone not in BACKBONES:
        raise ValueError(f"--backbone must be one of {', '.join(BACKBONES)}, got {backbone!r}")


def load_served_model(
    *,
    runs: Path,
    model_dir: Path | None = None,
    backbone: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    attention: str | None = None,
    offload: bool = False,
) -> ServedModel:
    """Check the choice (exactly one of ``model_dir`` and ``backbone``) and load the model.

    Runs use :class:`~fastvmt.transfer_run.TransferSettings`' defaults, as ``fastvmt transfer`` does (the dtype,
    device, attention kernel and offloading given win); on the tiny Wan, the demo's size and steps.

    Raises:
        ValueError: both or neither given, or an unknown ``backbone``.
        NotADirectoryError: ``model_dir`` is not a folder.
    """
    check_model_choice(model_dir, backbone)
    given = {key: value for key, value in (("dtype", dtype), ("device", device), ("attention", attention))
             if value is not None}
    if model_dir is not None:
        settings = TransferSettings(model_dir=Path(model_dir).resolve(), offload=offload, **given).check()
        description = f"Wan2.1 checkpoint {settings.model_dir}"
    else:
        settings = replace(_tiny_wan_settings(Path(runs)), offload=offload, **given).check()
        description = "the tiny random-weight Wan (its imagery means nothing; it shows the machinery working)"
    return ServedModel(settings.load_backbone(), settings, description)


def _tiny_wan_settings(runs: Path) -> TransferSettings:
    """Settings on the tiny Wan's checkpoint in ``runs``, written there first if missing."""
    from fastvmt.backbones.checkpoint import CONFIG_FILE
    from fastvmt.backbones.tiny import write_tiny_checkpoint
    from fastvmt.demo import DEMO_SIZES

    folder = (runs / TINY_WAN_FOLDER).resolve()
    if not (folder / CONFIG_FILE).is_file():
        write_tiny_checkpoint(folder)
    size = DEMO_SIZES["default"]
    return TransferSettings(model_dir=folder, num_frames=size.num_frames, height=size.height, width=size.width,
                            num_inference_steps=size.steps)
