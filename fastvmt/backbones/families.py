"""The Wan model families fastvmt loads, what files each needs, and which one a checkpoint directory holds.

A directory's family is read from its ``config.json`` (``model_type``: ``t2v``, ``i2v`` or ``ti2v``, as Wan ships
it) or, without one, from its files: ``img_emb.*`` tensors in the DiT (image-to-video, headers only) or Wan2.2's
VAE file (TI2V-5B); a ``high_noise_model/`` folder holds the experts of Wan2.2 A14B (T2V or I2V, told apart the
same way from that folder). The ``wan``
backbone loads every family; the files each needs are checked before any weight is read, in one error that names
the family. ``fastvmt backbones`` lists them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvmt.backbones import checkpoint

__all__ = [
    "FAMILIES",
    "WAN21_I2V",
    "WAN21_T2V",
    "WAN22_I2V_A14B",
    "WAN22_T2V_A14B",
    "WAN22_TI2V",
    "WanFamily",
    "detect_family",
]


@dataclass(frozen=True)
class WanFamily:
    """One family of released Wan checkpoints that share an architecture and a set of files."""

    name: str
    title: str
    releases: tuple[str, ...]
    #: Files beyond the text-to-video ones, by name, with what each is.
    extra_files: tuple[tuple[str, str], ...]
    #: ``module:Class`` of the backbone that runs it (imported on use: diffsynth loads with it).
    backbone_class: str
    #: Whether runs take a first frame (``--image``).
    takes_image: bool
    #: The VAE's file name.
    vae_file: str = checkpoint.VAE_FILE
    #: Whether the DiT embeds a CLIP image (``img_emb``) and takes first-frame channels (Wan2.1 image-to-video).
    dit_image_input: bool = False
    #: The folders of the DiT files ("": the directory itself; Wan2.2 A14B: one per expert, high noise first).
    dit_dirs: tuple[str, ...] = ("",)

    def backbone(self) -> Any:
        module, name = self.backbone_class.split(":")
        return getattr(importlib.import_module(module), name)

    def files(self) -> list[str]:
        """Every file and folder a directory of this family needs, as released."""
        dits = [f"{folder}/" if folder else "" for folder in self.dit_dirs]
        return [*(f"{folder}{checkpoint.DIT_SINGLE} (or shards + index)" for folder in dits),
                checkpoint.TEXT_ENCODER_FILE, self.vae_file, f"{checkpoint.TOKENIZER_DIR}/",
                *(name for name, _ in self.extra_files)]

    def locate(self, model_dir: str | Path) -> checkpoint.CheckpointFiles:
        """The directory's files; one ``MissingCheckpointFilesError`` naming this family and all that is missing."""
        return checkpoint.locate_checkpoint(
            model_dir, family=self.title, example=self.releases[0], extra=dict(self.extra_files), vae=self.vae_file,
            dit_dirs=self.dit_dirs,
        )


WAN21_T2V = WanFamily(
    name="wan2.1-t2v",
    title="Wan2.1 text-to-video",
    releases=("Wan-AI/Wan2.1-T2V-1.3B", "Wan-AI/Wan2.1-T2V-14B"),
    extra_files=(),
    backbone_class="fastvmt.backbones.wan:WanBackbone",
    takes_image=False,
)
WAN21_I2V = WanFamily(
    name="wan2.1-i2v",
    title="Wan2.1 image-to-video",
    releases=("Wan-AI/Wan2.1-I2V-14B-480P", "Wan-AI/Wan2.1-I2V-14B-720P"),
    extra_files=((checkpoint.IMAGE_ENCODER_FILE, "the CLIP image encoder"),),
    backbone_class="fastvmt.backbones.wan_i2v:WanI2VBackbone",
    takes_image=True,
    dit_image_input=True,
)
WAN22_TI2V = WanFamily(
    name="wan2.2-ti2v-5b",
    title="Wan2.2 TI2V-5B (text- and image-to-video)",
    releases=("Wan-AI/Wan2.2-TI2V-5B",),
    extra_files=(),
    backbone_class="fastvmt.backbones.wan_ti2v:WanTI2VBackbone",
    takes_image=True,
    vae_file=checkpoint.WAN22_VAE_FILE,
)
WAN22_T2V_A14B = WanFamily(
    name="wan2.2-t2v-a14b",
    title="Wan2.2 T2V-A14B (two experts)",
    releases=("Wan-AI/Wan2.2-T2V-A14B",),
    extra_files=(),
    backbone_class="fastvmt.backbones.wan_a14b:WanA14BBackbone",
    takes_image=False,
    dit_dirs=("high_noise_model", "low_noise_model"),
)
WAN22_I2V_A14B = WanFamily(
    name="wan2.2-i2v-a14b",
    title="Wan2.2 I2V-A14B (two experts, image-to-video)",
    releases=("Wan-AI/Wan2.2-I2V-A14B",),
    extra_files=(),
    backbone_class="fastvmt.backbones.wan_a14b:WanI2VA14BBackbone",
    takes_image=True,
    dit_dirs=WAN22_T2V_A14B.dit_dirs,
)
#: The families by name, in the order ``fastvmt backbones`` lists them.
FAMILIES = {family.name: family for family in (WAN21_T2V, WAN21_I2V, WAN22_TI2V, WAN22_T2V_A14B, WAN22_I2V_A14B)}
_BY_MODEL_TYPE = {"t2v": WAN21_T2V, "i2v": WAN21_I2V, "ti2v": WAN22_TI2V}


def _dit_has_image_embedding(model_dir: str | Path) -> bool:
    """Whether the DiT files there hold ``img_emb.*`` tensors (safetensors headers only; False without files)."""
    from safetensors import SafetensorError, safe_open

    for path in checkpoint.dit_files(model_dir):
        try:
            with safe_open(str(path), framework="pt") as file:
                if any(name.startswith("img_emb.") for name in file.keys()):
                    return True
        except SafetensorError as exc:
            raise ValueError(f"cannot read {path}: not a valid .safetensors file ({exc})") from exc
    return False


def _dit_takes_first_frame(model_dir: Path) -> bool:
    """Whether the DiT there takes first-frame channels (``patch_embedding`` reads ``2 x 16 + 4``; headers only)."""
    from safetensors import safe_open

    from fastvmt.backbones.architecture import FIRST_FRAME_MASK_CHANNELS, WAN_LATENT_CHANNELS

    for path in checkpoint.dit_files(model_dir):
        with safe_open(str(path), framework="pt") as file:
            if "patch_embedding.weight" in file.keys():
                channels = file.get_slice("patch_embedding.weight").get_shape()[1]
                return channels == 2 * WAN_LATENT_CHANNELS + FIRST_FRAME_MASK_CHANNELS
    return False


def detect_family(model_dir: str | Path) -> WanFamily:
    """The family of the checkpoint in ``model_dir`` (module docstring); ``ValueError`` for a ``model_type``
    fastvmt does not load. A directory that is missing or empty counts as text-to-video (its error says so)."""
    root = Path(model_dir).expanduser()
    experts = root / WAN22_T2V_A14B.dit_dirs[0]
    if experts.is_dir():  # A14B: the high-noise expert's config.json (or, without one, its tensors) tell T2V from I2V
        return WAN22_I2V_A14B if detect_family(experts) is WAN21_I2V else WAN22_T2V_A14B
    config = root / checkpoint.CONFIG_FILE
    model_type = checkpoint.read_config(config).get("model_type") if config.is_file() else None
    if model_type is None:
        if _dit_has_image_embedding(root) or _dit_takes_first_frame(root):
            return WAN21_I2V
        return WAN22_TI2V if (root / checkpoint.WAN22_VAE_FILE).is_file() else WAN21_T2V
    if model_type not in _BY_MODEL_TYPE:
        raise ValueError(
            f"{config}: model_type {model_type!r} is not a family fastvmt loads; it loads "
            + ", ".join(f"{family.title} ({', '.join(family.releases)})" for family in FAMILIES.values())
        )
    return _BY_MODEL_TYPE[model_type]
