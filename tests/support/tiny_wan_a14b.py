"""Tiny random Wan2.2 T2V-A14B and I2V-A14B checkpoints in the released layout (Wan-AI/Wan2.2-T2V-A14B's and
-I2V-A14B's files), written once per test session: the tiny text-to-video model's text encoder, VAE and tokenizer at
the top, and two experts of the tiny DiT's sizes (different seeds) in ``high_noise_model/`` and ``low_noise_model/``,
each with its config.json; I2V-A14B's experts take the first-frame channels (36 inputs, no CLIP embedding)."""

import dataclasses
import json
import shutil
from functools import cache
from pathlib import Path

import pytest
import torch

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import FIRST_FRAME_MASK_CHANNELS
from fastvmt.backbones.families import WAN22_T2V_A14B
from fastvmt.backbones.tiny import TINY_DIT
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)


TINY_I2V_EXPERT = dataclasses.replace(TINY_DIT, in_dim=2 * TINY_DIT.out_dim + FIRST_FRAME_MASK_CHANNELS)


def write_tiny_a14b_checkpoint(directory: Path, text_to_video: Path, *, seed: int = 0,
                               image_to_video: bool = False) -> Path:
    """The tiny A14B Wan of ``seed`` in ``directory`` (I2V-A14B's with ``image_to_video``), built on the tiny
    text-to-video checkpoint ``text_to_video``."""
    expert = TINY_I2V_EXPERT if image_to_video else TINY_DIT
    stored = {**expert.stored(), "model_type": "i2v" if image_to_video else "t2v"}
    from fastvmt.backbones import modules

    root = Path(shutil.copytree(text_to_video, directory))
    for path in (*checkpoint.dit_files(root), root / checkpoint.CONFIG_FILE):
        path.unlink()
    for offset, folder in enumerate(WAN22_T2V_A14B.dit_dirs):
        (root / folder).mkdir()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 3000 + offset)
            dit = modules.build_dit(expert, initialize=True)
        checkpoint.write_dit(dit.state_dict(), root / folder)
        (root / folder / checkpoint.CONFIG_FILE).write_text(json.dumps(stored, indent=2))
    return root


@cache
def _checkpoint(session_root: Path, text_to_video: Path, image_to_video: bool) -> Path:
    name = "tiny-wan-i2v-a14b-shared" if image_to_video else "tiny-wan-a14b-shared"
    return write_tiny_a14b_checkpoint(session_root / name, text_to_video, image_to_video=image_to_video)


@pytest.fixture(scope="session")
def tiny_a14b_dir(tmp_path_factory, tiny_wan_dir):
    return _checkpoint(tmp_path_factory.getbasetemp(), tiny_wan_dir, False)


@pytest.fixture(scope="session")
def tiny_i2v_a14b_dir(tmp_path_factory, tiny_wan_dir):
    return _checkpoint(tmp_path_factory.getbasetemp(), tiny_wan_dir, True)
