"""The files of a Wan2.1 checkpoint directory, found, checked and read without executing any code.

Layout, as Wan distributes it (``Wan-AI/Wan2.1-T2V-1.3B`` / ``-14B``)::

    diffusion_pytorch_model.safetensors          the DiT (or shards ``diffusion_pytorch_model-0000i-of-0000n``
    diffusion_pytorch_model.safetensors.index.json   .safetensors`` listed by this index)
    models_t5_umt5-xxl-enc-bf16.pth              the umT5-XXL text encoder
    Wan2.1_VAE.pth                               the video VAE (Wan2.2 TI2V-5B: Wan2.2_VAE.pth)
    google/umt5-xxl/                             the tokenizer (tokenizer.json or spiece.model)
    config.json                                  optional: the DiT's hyper-parameters (num_heads, text_len, ...)
    models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth   image-to-video releases only: the CLIP image encoder

A ``.safetensors`` file next to a ``.pth`` of the same stem (as DiffSynth-Studio converts them) is preferred.
``.pth`` files are read with ``torch.load(weights_only=True)``: a pickle that carries code is refused. A tokenizer
asking for custom code and an index naming shards outside the directory are refused before anything is read.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from fastvmt.json_input import read_json

__all__ = [
    "CONFIG_FILE",
    "DIT_INDEX",
    "DIT_SINGLE",
    "IMAGE_ENCODER_FILE",
    "TEXT_ENCODER_FILE",
    "TOKENIZER_DIR",
    "VAE_FILE",
    "WAN22_VAE_FILE",
    "CheckpointFiles",
    "MissingCheckpointFilesError",
    "UnsafeCheckpointError",
    "dit_block_count",
    "dit_files",
    "dit_shard_name",
    "locate_checkpoint",
    "read_config",
    "read_state_dict",
    "write_dit",
]

DIT_SINGLE = "diffusion_pytorch_model.safetensors"
DIT_INDEX = "diffusion_pytorch_model.safetensors.index.json"
DIT_GLOB = "diffusion_pytorch_model*.safetensors"
TEXT_ENCODER_FILE = "models_t5_umt5-xxl-enc-bf16.pth"
VAE_FILE = "Wan2.1_VAE.pth"
#: Wan2.2 TI2V-5B's VAE (48 latent channels, 16x spatial compression).
WAN22_VAE_FILE = "Wan2.2_VAE.pth"
#: The CLIP image encoder of Wan2.1's image-to-video releases (only its vision tower is used).
IMAGE_ENCODER_FILE = "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
TOKENIZER_DIR = "google/umt5-xxl"
TOKENIZER_FILES = ("tokenizer.json", "spiece.model")
TOKENIZER_CONFIG = "tokenizer_config.json"
CONFIG_FILE = "config.json"

#: A DiT block's tensor names, in Wan's and diffusers' layouts alike (``[model.]blocks.N.*``).
_BLOCK_NAME = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
#: Wrappers some trainers put around a state dict.
_STATE_DICT_WRAPPERS = ("state_dict", "model_state", "module")


class MissingCheckpointFilesError(FileNotFoundError):
    """A checkpoint directory lacks files; the message lists every one of them."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint would run code or read outside its directory (a pickle with code, a tokenizer with custom
    code, an index naming files elsewhere); nothing of it is loaded."""


def dit_shard_name(index: int, count: int) -> str:
    """The name Wan and Hugging Face give shard ``index`` (1-based) of ``count``."""
    return f"diffusion_pytorch_model-{index:05d}-of-{count:05d}.safetensors"


@dataclass(frozen=True)
class CheckpointFiles:
    """Paths of one checkpoint's parts; ``config`` is ``None`` when the directory has no config.json."""

    root: Path
    dit: tuple[Path, ...]
    text_encoder: Path
    vae: Path
    tokenizer: Path
    config: Path | None
    #: A family's further files by name (the image-to-video CLIP encoder), see :mod:`fastvmt.backbones.families`.
    extra: Mapping[str, Path] = field(default_factory=dict)
    #: The DiT files by folder, for a family whose DiTs live in folders (Wan2.2 A14B's experts); else empty.
    experts: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)


def _prefer_safetensors(path: Path) -> Path:
    converted = path.with_suffix(".safetensors")
    return converted if converted.is_file() else path


def _shard_names(index: Path) -> list[str]:
    """The shard file names an index lists: plain names inside its directory (never a path that leaves it)."""
    try:
        weight_map = read_json(index, "safetensors index")["weight_map"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{index} is not a valid safetensors index (needs a 'weight_map'): {exc}") from exc
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise ValueError(f"{index}: 'weight_map' must map tensor names to shard file names")
    names = sorted(set(weight_map.values()))
    for name in names:
        if Path(name).name != name or name in ("", ".", ".."):
            raise UnsafeCheckpointError(
                f"{index} lists the shard {name!r}, which is not a file name inside {index.parent}; "
                "fastvmt reads shards only from the checkpoint directory itself"
            )
    return names


def _dit_files(root: Path, missing: list[str]) -> tuple[Path, ...]:
    index = root / DIT_INDEX
    if index.is_file():
        shards = [root / name for name in _shard_names(index)]
        missing.extend(f"{shard.name} (DiT shard listed in {DIT_INDEX})" for shard in shards if not shard.is_file())
        return tuple(shards)
    if (root / DIT_SINGLE).is_file():
        return (root / DIT_SINGLE,)
    shards = sorted(root.glob(DIT_GLOB))
    if not shards:
        missing.append(f"{DIT_GLOB} (the DiT weights)")
    return tuple(shards)


def _refuse_custom_code(tokenizer: Path) -> None:
    """``UnsafeCheckpointError`` when the tokenizer's configs point transformers at Python code (``auto_map``)."""
    for config in (tokenizer / TOKENIZER_CONFIG, tokenizer / CONFIG_FILE):
        if config.is_file() and "auto_map" in read_config(config):
            raise UnsafeCheckpointError(
                f"refusing to load the tokenizer in {tokenizer}: {config.name} asks for custom Python code "
                "('auto_map'), and fastvmt never runs code from a checkpoint; use the umT5 tokenizer as Wan "
                "distributes it"
            )


def dit_files(model_dir: str | Path) -> tuple[Path, ...]:
    """The DiT weight files of a checkpoint directory that are there (none when it has none)."""
    root = Path(model_dir).expanduser()
    return tuple(path for path in _dit_files(root, []) if path.is_file()) if root.is_dir() else ()


def locate_checkpoint(
    model_dir: str | Path,
    *,
    family: str = "Wan2.1 text-to-video",
    example: str = "Wan-AI/Wan2.1-T2V-1.3B",
    extra: Mapping[str, str] | None = None,
    vae: str = VAE_FILE,
    dit_dirs: tuple[str, ...] = ("",),
) -> CheckpointFiles:
    """The checkpoint's files; one :class:`MissingCheckpointFilesError` listing everything that is missing, naming
    the ``family`` expected (``example``: a release of it). ``extra`` maps a family's further file names to what
    they are; ``vae`` names the family's VAE file. ``dit_dirs``: the folders of the DiTs (Wan2.2 A14B's two experts,
    each with its config.json); ``dit`` and ``config`` are the first's, ``experts`` has every one's files."""
    root = Path(model_dir).expanduser()
    if not root.is_dir():
        raise MissingCheckpointFilesError(
            f"checkpoint directory {root} does not exist; download a {family} checkpoint, e.g. "
            f"`huggingface-cli download {example} --local-dir {root}`"
        )
    missing: list[str] = []
    experts = {}
    for folder in dit_dirs:  # a folder's missing DiT files are named with the folder
        folder_missing: list[str] = []
        experts[folder] = _dit_files(root / folder, folder_missing)
        missing.extend(f"{folder}/{item}" if folder else item for item in folder_missing)
    dit = experts[dit_dirs[0]]
    text_encoder = _prefer_safetensors(root / TEXT_ENCODER_FILE)
    if not text_encoder.is_file():
        missing.append(f"{TEXT_ENCODER_FILE} (the umT5 text encoder)")
    vae_name, vae = vae, _prefer_safetensors(root / vae)
    if not vae.is_file():
        missing.append(f"{vae_name} (the video VAE)")
    tokenizer = root / TOKENIZER_DIR
    if not any((tokenizer / name).is_file() for name in TOKENIZER_FILES):
        missing.append(f"{TOKENIZER_DIR}/ with {' or '.join(TOKENIZER_FILES)} (the umT5 tokenizer)")
    extras = {name: _prefer_safetensors(root / name) for name in extra or {}}
    missing.extend(f"{name} ({(extra or {})[name]})" for name, path in extras.items() if not path.is_file())
    if missing:
        listing = "".join(f"\n  - {item}" for item in missing)
        raise MissingCheckpointFilesError(
            f"checkpoint directory {root} is incomplete; missing:{listing}\n"
            f"It must hold a {family} checkpoint as distributed (e.g. {example})."
        )
    _refuse_custom_code(tokenizer)
    config = root / dit_dirs[0] / CONFIG_FILE
    return CheckpointFiles(root, dit, text_encoder, vae, tokenizer, config if config.is_file() else None, extras,
                           experts if dit_dirs != ("",) else {})


def read_config(path: Path | None) -> dict[str, Any]:
    """The JSON object in ``path`` (``{}`` for ``None``)."""
    if path is None:
        return {}
    config = read_json(path, "checkpoint config")
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def _read_safetensors(path: Path, dtype: torch.dtype | None, device: torch.device) -> dict[str, Tensor]:
    # Tensor by tensor, cast on the way: peak memory is one tensor above the result (the 14B is 57 GB in fp32).
    from safetensors import SafetensorError, safe_open

    state = {}
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as file:
            for name in file.keys():
                state[name] = file.get_tensor(name).to(dtype=dtype)
    except SafetensorError as exc:
        raise ValueError(f"cannot read {path}: not a valid .safetensors file ({exc})") from exc
    return state


def _read_pickle(path: Path, dtype: torch.dtype | None, device: torch.device) -> dict[str, Tensor]:
    try:  # only the zip format (torch.save's default since 1.6) can be memory-mapped; legacy files are read
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"refusing to load {path}: it is not a plain tensor checkpoint, and loading it would run Python "
            f"code stored in it. fastvmt reads .pth files with torch.load(weights_only=True) only; get the "
            f"file from a trusted source or as .safetensors. (torch: {str(exc).splitlines()[0]})"
        ) from exc
    except (RuntimeError, EOFError, IndexError) as exc:  # what torch.load raises on truncated or foreign bytes
        raise ValueError(f"cannot read {path}: not a PyTorch checkpoint saved by torch.save ({exc!r})") from exc
    if isinstance(loaded, Mapping) and len(loaded) == 1 and next(iter(loaded)) in _STATE_DICT_WRAPPERS:
        loaded = next(iter(loaded.values()))
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    # Memory-mapped: each tensor is read from disk only when moved or cast here (or when first used).
    return {name: t.to(device=device, dtype=dtype) for name, t in loaded.items()}


def dit_block_count(files: CheckpointFiles) -> int:
    """How many blocks the checkpoint's DiT has, read from its safetensors headers (no tensor is loaded): what a
    strategy's captured block is checked against before the model loads."""
    from safetensors import SafetensorError, safe_open

    blocks: set[int] = set()
    for path in files.dit:
        try:
            with safe_open(str(path), framework="pt") as file:
                blocks.update(int(m.group(1)) for name in file.keys() if (m := _BLOCK_NAME.search(name)))
        except SafetensorError as exc:
            raise ValueError(f"cannot read {path}: not a valid .safetensors file ({exc})") from exc
    if not blocks:
        raise ValueError(f"the DiT weights in {files.root} have no blocks (tensors named blocks.N.*)")
    return max(blocks) + 1


def read_state_dict(
    paths: Path | tuple[Path, ...], dtype: torch.dtype | None = None, device: str | torch.device = "cpu"
) -> dict[str, Tensor]:
    """Tensors of one or more ``.safetensors`` / ``.pth`` files, cast to ``dtype`` (if given) on ``device``,
    one tensor at a time (loading straight to a GPU needs no CPU copy of the whole model)."""
    device = torch.device(device)
    state: dict[str, Tensor] = {}
    for path in (paths,) if isinstance(paths, Path) else paths:
        read = _read_safetensors if path.suffix == ".safetensors" else _read_pickle
        state.update(read(path, dtype, device))
    return state


def write_dit(state: Mapping[str, Tensor], root: Path, shards: int = 1) -> tuple[Path, ...]:
    """Save DiT tensors as Wan does: one ``diffusion_pytorch_model.safetensors``, or ``shards`` files and the
    index that maps every tensor to its file."""
    from safetensors.torch import save_file

    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    names = sorted(state)
    if shards == 1:
        save_file({n: state[n].contiguous() for n in names}, str(root / DIT_SINGLE))
        return (root / DIT_SINGLE,)
    groups = [names[i::shards] for i in range(shards)]
    paths = tuple(root / dit_shard_name(i + 1, shards) for i in range(shards))
    weight_map = {}
    for group, path in zip(groups, paths):
        save_file({n: state[n].contiguous() for n in group}, str(path))
        weight_map.update(dict.fromkeys(group, path.name))
    total = sum(t.numel() * t.element_size() for t in state.values())
    (root / DIT_INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return paths
