"""A tiny random Wan2.1 image-to-video checkpoint in the released layout (Wan-AI/Wan2.1-I2V-14B-480P's files),
written once per test session: the tiny text-to-video model's text encoder, VAE and tokenizer, an image-to-video
DiT (36 input channels, ``img_emb``) and a CLIP vision tower that gives the 257 tokens of 1280 the DiT takes (a
16x16 grid of 1-pixel patches, 2 blocks, a narrow MLP), saved with a text-tower tensor as the released file has.
"""

import dataclasses
import json
import shutil
from functools import cache
from pathlib import Path

import pytest
import torch

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import FIRST_FRAME_MASK_CHANNELS, ImageEncoderConfig
from fastvmt.backbones.tiny import TINY_DIT, write_tiny_checkpoint
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

TINY_I2V_DIT = dataclasses.replace(
    TINY_DIT, in_dim=2 * TINY_DIT.out_dim + FIRST_FRAME_MASK_CHANNELS, has_image_input=True
)
TINY_IMAGE_ENCODER = ImageEncoderConfig(image_size=16, patch_size=1, vision_mlp_ratio=0.05, vision_layers=2,
                                        embed_dim=32)


def write_tiny_i2v_checkpoint(directory: Path, *, seed: int = 0, text_to_video: Path | None = None) -> Path:
    """The tiny image-to-video Wan of ``seed`` in ``directory``, its text encoder, VAE and tokenizer copied from the
    tiny text-to-video checkpoint ``text_to_video`` (written there when None)."""
    from fastvmt.backbones import modules

    if text_to_video is None:
        root = write_tiny_checkpoint(directory, seed=seed)
    else:
        root = Path(shutil.copytree(text_to_video, directory))
        for path in checkpoint.dit_files(root):
            path.unlink()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1000)
        dit = modules.build_dit(TINY_I2V_DIT, initialize=True)
        encoder = modules.build_image_encoder(TINY_IMAGE_ENCODER, initialize=True)
    checkpoint.write_dit(dit.state_dict(), root)
    state = {**encoder.model.state_dict(), "textual.token_embedding.weight": torch.zeros(8, 4)}
    torch.save(state, root / checkpoint.IMAGE_ENCODER_FILE)
    (root / checkpoint.CONFIG_FILE).write_text(json.dumps(TINY_I2V_DIT.stored(), indent=2))
    return root


@cache
def _checkpoint(session_root: Path, text_to_video: Path) -> Path:
    return write_tiny_i2v_checkpoint(session_root / "tiny-wan-i2v-shared", seed=0, text_to_video=text_to_video)


@pytest.fixture(scope="session")
def tiny_i2v_dir(tmp_path_factory, tiny_wan_dir):
    return _checkpoint(tmp_path_factory.getbasetemp(), tiny_wan_dir)
