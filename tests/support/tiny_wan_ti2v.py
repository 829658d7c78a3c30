"""A tiny random Wan2.2 TI2V-5B checkpoint in the released layout (Wan-AI/Wan2.2-TI2V-5B's files), written once per
test session: the tiny text-to-video model's text encoder and tokenizer, a DiT of 48 latent channels in and out and
a Wan2.2 VAE (``Wan2.2_VAE.pth``: 12 patchified input channels, 48 latent channels, 16x) of width 8."""

import dataclasses
import json
import shutil
from functools import cache
from pathlib import Path

import pytest
import torch

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import WAN22_LATENT_CHANNELS, VAEConfig
from fastvmt.backbones.tiny import TINY_DIT
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

TINY_TI2V_DIT = dataclasses.replace(TINY_DIT, in_dim=WAN22_LATENT_CHANNELS, out_dim=WAN22_LATENT_CHANNELS)
TINY_WAN22_VAE = VAEConfig(dim=8, z_dim=WAN22_LATENT_CHANNELS, decoder_dim=8)


def write_tiny_ti2v_checkpoint(directory: Path, text_to_video: Path, *, seed: int = 0) -> Path:
    """The tiny TI2V Wan of ``seed`` in ``directory``, its text encoder and tokenizer copied from the tiny
    text-to-video checkpoint ``text_to_video``."""
    from fastvmt.backbones import modules

    root = Path(shutil.copytree(text_to_video, directory))
    for path in (*checkpoint.dit_files(root), root / checkpoint.VAE_FILE):
        path.unlink()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 2000)
        dit = modules.build_dit(TINY_TI2V_DIT, initialize=True)
        vae = modules.build_vae(TINY_WAN22_VAE, initialize=True)
    checkpoint.write_dit(dit.state_dict(), root)
    torch.save(vae.model.state_dict(), root / checkpoint.WAN22_VAE_FILE)
    (root / checkpoint.CONFIG_FILE).write_text(json.dumps({**TINY_TI2V_DIT.stored(), "model_type": "ti2v"}, indent=2))
    return root


@cache
def _checkpoint(session_root: Path, text_to_video: Path) -> Path:
    return write_tiny_ti2v_checkpoint(session_root / "tiny-wan-ti2v-shared", text_to_video)


@pytest.fixture(scope="session")
def tiny_ti2v_dir(tmp_path_factory, tiny_wan_dir):
    return _checkpoint(tmp_path_factory.getbasetemp(), tiny_wan_dir)
