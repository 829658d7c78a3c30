"""Motion files: the RoPE angle offsets a ``target="rope"`` run optimised, one set per guided step, for sampling
any prompt with that motion at the cost of plain sampling (docs/algorithm.md#motion-embeddings).

The file is safetensors: one float32 tensor ``angles``, ``(guided steps, tokens, head_dim / 2)``, and one metadata
entry ``fastvmt_motion``, a JSON object: ``format`` and ``format_version``, the ``backbone`` (family, size and the
dimensions a file must match), the ``video`` (frames, height, width, token ``grid``), the schedule (``sigmas`` of
every step, ``guided_steps``), ``sampling`` (steps, strength, CFG scale, negative prompt, seed and prompt of the
run that made it), the ``strategy``, the ``reference`` (SHA-256 of its frames) and package ``versions``.
Loading reads nothing but that (safetensors executes no code) and checks sizes before reading tensors.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from fastvmt.backbones.architecture import RELEASED_DITS
from fastvmt.generation.sampling import MAX_STEPS
from fastvmt.interfaces import Backbone, TokenGrid
from fastvmt.json_input import parse_json
from fastvmt.outputs import write_atomically
from fastvmt.strategies.spec import Strategy

__all__ = [
    "FORMAT",
    "MAX_MOTION_BYTES",
    "MotionEmbeddings",
    "MotionFileError",
    "backbone_signature",
    "check_savable",
    "frames_digest",
    "load_motion",
    "save_motion",
]

FORMAT = "fastvmt-motion"
FORMAT_VERSION = 1
_METADATA_KEY = "fastvmt_motion"
#: The largest motion file read: 50 guided steps of a 1280 x 720, 81-frame video on a 128-wide head (1 GiB), twice.
MAX_MOTION_BYTES = 2 * 2**30
#: The largest safetensors header read (the JSON metadata and the tensor table).
MAX_HEADER_BYTES = 2**20
#: How far a file's sigmas may be from the run's (both computed in float64 by one formula).
SIGMA_TOLERANCE = 1e-9
#: The backbone fields a motion file must match.
_BACKBONE_FIELDS = ("family", "num_blocks", "heads", "head_dim")


class MotionFileError(ValueError):
    """A file that is no readable fastvmt motion file, or one made for another backbone, video or schedule."""


def backbone_signature(backbone: Backbone) -> dict[str, Any]:
    """What identifies a backbone's attention for a motion file: its class (``family``), its released size name
    (``1.3B``, ``14B``, else ``custom``), blocks, heads and head width."""
    width = backbone.heads * backbone.head_dim
    size = next((name for name, config in RELEASED_DITS.items()
                 if (config.dim, config.num_heads, config.num_layers) == (width, backbone.heads, backbone.num_blocks)),
                "custom")
    return {"family": type(backbone).__name__, "size": size, "num_blocks": backbone.num_blocks,
            "heads": backbone.heads, "head_dim": backbone.head_dim}


def frames_digest(video: Tensor | np.ndarray) -> str:
    """SHA-256 of a video's values as the pipeline received them (identifies the reference)."""
    array = video.detach().cpu().numpy() if isinstance(video, Tensor) else np.asarray(video)
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def check_savable(strategy: Strategy) -> None:
    """``ValueError`` unless runs of ``strategy`` make a motion file: guided, ``target="rope"``, and starting from
    pure noise (``denoising_strength`` 1 with ``strength_semantics="diffsynth"``), since a motion file is replayed
    without the reference."""
    if not strategy.guided or strategy.target != "rope":
        raise ValueError(f"strategy {strategy.name!r} optimises no motion embeddings to save: use target='rope' "
                         "(e.g. --set target=rope)")
    if strategy.denoising_strength != 1.0 or strategy.strength_semantics != "diffsynth":
        raise ValueError(f"strategy {strategy.name!r} starts from the noised reference (denoising_strength="
                         f"{strategy.denoising_strength}); a motion file is replayed without the reference, so its run "
                         "must start from pure noise: --set denoising_strength=1.0")


@dataclass(frozen=True)
class MotionEmbeddings:
    """The RoPE angle offsets ``angles[g]`` in effect during guided step ``guided_steps[g]`` of a schedule with
    ``sigmas``, with what they were made for and by (see the module docstring)."""

    angles: Float[Tensor, "g s d2"]
    guided_steps: tuple[int, ...]
    sigmas: tuple[float, ...]
    backbone: Mapping[str, Any]
    video: Mapping[str, Any]
    sampling: Mapping[str, Any]
    strategy: Mapping[str, Any]
    reference: Mapping[str, Any]
    versions: Mapping[str, Any]

    @property
    def grid(self) -> TokenGrid:
        return TokenGrid(*self.video["grid"])

    def header(self) -> dict[str, Any]:
        """The JSON metadata written with the tensor."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "backbone": dict(self.backbone),
                "video": dict(self.video), "sigmas": list(self.sigmas), "guided_steps": list(self.guided_steps),
                "sampling": dict(self.sampling), "strategy": dict(self.strategy), "reference": dict(self.reference),
                "versions": dict(self.versions)}

    def check_compatible(self, backbone: Backbone, grid: TokenGrid, sigmas: tuple[float, ...]) -> None:
        """``MotionFileError`` naming the first difference unless this motion was made for ``backbone``'s
        attention, the token ``grid`` and the schedule ``sigmas``."""
        mine = backbone_signature(backbone)
        for field in _BACKBONE_FIELDS:
            if self.backbone[field] != mine[field]:
                raise MotionFileError(
                    f"the motion file was made for another backbone ({field} {self.backbone[field]!r}, size "
                    f"{self.backbone['size']}; this one has {mine[field]!r}, size {mine['size']})")
        if self.grid != grid:
            raise MotionFileError(
                f"the motion file was made for a {self.video['num_frames']}-frame {self.video['width']}x"
                f"{self.video['height']} video (token grid {tuple(self.video['grid'])}), this run's grid is "
                f"{(grid.frames, grid.height, grid.width)}: use that size")
        self.check_schedule(sigmas)

    def check_schedule(self, sigmas: tuple[float, ...]) -> None:
        """``MotionFileError`` unless this motion was made for the schedule ``sigmas``."""
        if len(sigmas) != len(self.sigmas) or any(abs(a - b) > SIGMA_TOLERANCE for a, b in zip(sigmas, self.sigmas)):
            raise MotionFileError(
                f"the motion file was made for another step schedule ({len(self.sigmas)} steps, sampling "
                f"{dict(self.sampling)}); this run has {len(sigmas)} steps from sigma {sigmas[0]:.6g}: use the file's "
                "steps, strength and shift")


def save_motion(motion: MotionEmbeddings, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``motion`` atomically to ``path`` (``FileExistsError`` if it exists and ``overwrite`` is false)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    angles = motion.angles.detach().to("cpu", torch.float32).contiguous()
    metadata = {_METADATA_KEY: json.dumps(motion.header())}
    return write_atomically(path, lambda temporary: save_file({"angles": angles}, str(temporary), metadata),
                            overwrite=overwrite)


def _fail(path: Path, why: str) -> MotionFileError:
    return MotionFileError(f"{path} is not a usable fastvmt motion file: {why}")


def _int_list(path: Path, name: str, value: Any, *, low: int = 0, high: int | None = None) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value) \
            or any(v < low or (high is not None and v > high) for v in value):
        raise _fail(path, f"{name} must be a list of integers in [{low}, {high}], got {value!r:.200}")
    return value


def _check_header(path: Path, header: Any) -> dict[str, Any]:
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _fail(path, f"no {FORMAT} header")
    if header.get("format_version") != FORMAT_VERSION:
        raise _fail(path, f"format version {header.get('format_version')!r}, this fastvmt reads {FORMAT_VERSION}")
    for name in ("backbone", "video", "sampling", "strategy", "reference", "versions"):
        if not isinstance(header.get(name), dict):
            raise _fail(path, f"the header's {name!r} must be an object")
    sigmas = header.get("sigmas")
    if not isinstance(sigmas, list) or not 0 < len(sigmas) <= MAX_STEPS \
            or not all(isinstance(s, float) and math.isfinite(s) and 0 <= s <= 1 for s in sigmas):
        raise _fail(path, f"'sigmas' must be 1 to {MAX_STEPS} noise levels in [0, 1]")
    steps = _int_list(path, "guided_steps", header.get("guided_steps"), high=len(sigmas) - 1)
    if steps != sorted(set(steps)):
        raise _fail(path, "'guided_steps' must be increasing")
    backbone = header["backbone"]
    if not isinstance(backbone.get("family"), str) or not isinstance(backbone.get("size"), str):
        raise _fail(path, "the backbone's family and size must be strings")
    _int_list(path, "the backbone's blocks, heads and head_dim",
              [backbone.get(name) for name in ("num_blocks", "heads", "head_dim")], low=1)
    _int_list(path, "the video's grid", header["video"].get("grid"), low=1)
    if len(header["video"]["grid"]) != 3:
        raise _fail(path, "the video's grid must be (frames, height, width)")
    _int_list(path, "the video's size", [header["video"].get(n) for n in ("num_frames", "height", "width")], low=1)
    return header


def load_motion(path: str | Path) -> MotionEmbeddings:
    """Read and check a motion file; :class:`MotionFileError` for anything but one (size bounds first)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise MotionFileError(f"motion file {path} does not exist")
    size = path.stat().st_size
    if size > MAX_MOTION_BYTES:
        raise _fail(path, f"{size} bytes, more than the {MAX_MOTION_BYTES} a motion file can have")
    with path.open("rb") as file:
        prefix = file.read(8)
    if len(prefix) < 8 or int.from_bytes(prefix, "little") > min(MAX_HEADER_BYTES, size - 8):
        raise _fail(path, "no safetensors header of a plausible size")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            keys = list(file.keys())
            if keys != ["angles"]:
                raise _fail(path, f"it holds tensors {keys[:5]}, a motion file holds 'angles' only")
            try:
                header = parse_json(metadata.get(_METADATA_KEY, "null"), "its header")
            except ValueError as exc:  # not JSON, or nested too deeply
                raise _fail(path, str(exc)) from None
            header = _check_header(path, header)
            angles = file.get_tensor("angles")
    except (SafetensorError, OSError) as exc:
        raise _fail(path, str(exc)) from None
    grid, head_dim = header["video"]["grid"], header["backbone"]["head_dim"]
    expected = (len(header["guided_steps"]), grid[0] * grid[1] * grid[2], head_dim // 2)
    if angles.dtype != torch.float32 or tuple(angles.shape) != expected:
        raise _fail(path, f"'angles' is {angles.dtype} {tuple(angles.shape)}, its header says float32 {expected}")
    if not torch.isfinite(angles).all():
        raise _fail(path, "'angles' holds non-finite values")
    return MotionEmbeddings(angles=angles, guided_steps=tuple(header["guided_steps"]), sigmas=tuple(header["sigmas"]),
                            **{name: header[name] for name in ("backbone", "video", "sampling", "strategy",
                                                               "reference", "versions")})
