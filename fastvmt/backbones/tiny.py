"""A tiny random Wan2.1 for tests and the demo: diffsynth's very classes, small sizes, seeded weights.

``write_tiny_checkpoint`` writes it in the layout Wan distributes (so :meth:`WanBackbone.from_pretrained` is
exercised on it); ``tiny_backbone`` loads one (written once per seed and process to a temporary directory).

Sizes: DiT dim 64, 2 heads of 32, 16 blocks (so the presets' captured block exists), FFN 128; umT5 encoder of 2
layers, width 32; VAE width 8 (the released one is 96); a character-level Unigram tokenizer built offline
with ``tokenizers``. A 9-frame 96x128 video (token grid 3x6x8) runs a DiT forward in ~0.1 s on one CPU core.
On a CPU shared with other work, ``torch.set_num_threads(1)`` makes these tiny ops 10-50x faster (two
threads keep waiting for each other at every op).
"""

from __future__ import annotations

import atexit
import json
import shutil
import string
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastvmt.backbones import checkpoint
from fastvmt.backbones.architecture import DiTConfig, TextEncoderConfig, VAEConfig
from fastvmt.backbones.wan import WanBackbone

__all__ = ["TINY_DIT", "TINY_TEXT_ENCODER", "TINY_VAE", "build_tiny_networks", "tiny_backbone", "write_tiny_checkpoint"]

_SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5
_CHARACTERS = string.ascii_letters + string.digits + string.punctuation
#: Word-initial pieces ("▁a") and inner pieces ("a"), as a SentencePiece Unigram model has them.
_PIECES = ("\u2581", *("\u2581" + c for c in _CHARACTERS), *_CHARACTERS)

TINY_DIT = DiTConfig(dim=64, ffn_dim=128, num_heads=2, num_layers=16, text_dim=32, freq_dim=32)
TINY_TEXT_ENCODER = TextEncoderConfig(
    vocab=len(_SPECIALS) + len(_PIECES), dim=32, dim_attn=32, dim_ffn=64, num_heads=2, num_layers=2
)
TINY_VAE = VAEConfig(dim=8)


def build_tiny_networks(seed: int = 0) -> tuple[nn.Module, nn.Module, nn.Module]:
    """``(dit, vae, text_encoder)``: diffsynth networks at the tiny sizes, weights drawn from ``seed``."""
    from fastvmt.backbones import modules

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dit = modules.build_dit(TINY_DIT, initialize=True)
        vae = modules.build_vae(TINY_VAE, initialize=True)
        text_encoder = modules.build_text_encoder(TINY_TEXT_ENCODER, initialize=True)
    return dit, vae, text_encoder


def _write_tokenizer(directory: Path) -> None:
    """A character-level umT5-style tokenizer (Unigram, ``▁`` word marks, ``</s>`` appended) that
    ``transformers.AutoTokenizer`` loads from ``directory``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = [(piece, 0.0) for piece in _SPECIALS] + [(piece, -1.0 - i / 1000) for i, piece in enumerate(_PIECES)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=_SPECIALS.index("<unk>"), byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", _SPECIALS.index("</s>"))]
    )
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    special = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, **special}
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def write_tiny_checkpoint(directory: str | Path, *, seed: int = 0, shards: int = 1) -> Path:
    """Write the tiny Wan of ``seed`` to ``directory`` in the released layout; ``shards > 1`` splits the DiT
    into shard files with an index, as the 14B is distributed. Returns the directory."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    dit, vae, text_encoder = build_tiny_networks(seed)
    checkpoint.write_dit(dit.state_dict(), root, shards=shards)
    torch.save(text_encoder.state_dict(), root / checkpoint.TEXT_ENCODER_FILE)
    torch.save(vae.model.state_dict(), root / checkpoint.VAE_FILE)
    _write_tokenizer(root / checkpoint.TOKENIZER_DIR)
    (root / checkpoint.CONFIG_FILE).write_text(json.dumps(TINY_DIT.stored(), indent=2))
    return root


@cache
def _cached_checkpoint(seed: int) -> Path:
    root = Path(tempfile.mkdtemp(prefix=f"fastvmt-tiny-{seed}-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return write_tiny_checkpoint(root, seed=seed)


def tiny_backbone(
    seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, **options: Any
) -> WanBackbone:
    """A fresh :class:`WanBackbone` of the tiny Wan of ``seed``, loaded through ``from_pretrained`` (the
    checkpoint is written once per seed and process). ``options`` go to ``from_pretrained``."""
    return WanBackbone.from_pretrained(_cached_checkpoint(seed), device=device, dtype=dtype, **options)
