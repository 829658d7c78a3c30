"""VBench's video quality dimensions (the FastVMT paper's Table 2) from local weights.

The definitions follow VBench 0.1.5 (``pip download vbench``: ``vbench/subject_consistency.py``,
``background_consistency.py``, ``aesthetic_quality.py``, ``motion_smoothness.py``, ``utils.py``); this is a
re-implementation, not VBench's code, because VBench loads its models with the ``clip`` package (OpenAI JIT
archives) and ``torch.hub`` (the DINO repository's code), downloads missing weights at run time, and pins
``transformers==4.33.2`` and ``numpy<2``. Here the same published models are read, in Hugging Face
``transformers`` format (AMT-S: its released ``.pth``), from a directory laid out like VBench's cache
(:data:`LAYOUT`); nothing is downloaded. Every frame of the video is used, as VBench's ``load_video`` does.

- ``subject_consistency``: DINO ViT-B/16's class token of each frame (frames resized, shorter side to the model's
  image size, 224, bilinear, no crop, ImageNet normalisation); per frame ``t >= 1`` the mean of
  ``max(0, cos(f_t, f_{t-1}))`` and ``max(0, cos(f_t, f_0))``; the video's score is the mean over those frames.
- ``background_consistency``: the same on CLIP ViT-B/32 image embeddings (frames resized bicubic, shorter side to
  224, centre-cropped to 224, CLIP normalisation).
- ``aesthetic_quality``: CLIP ViT-L/14 image embeddings (same transform), unit length, through the LAION aesthetic
  predictor's linear head, divided by 10; the mean over frames.
- ``motion_smoothness``: AMT-S (:mod:`fastvmt.metrics.amt`) predicts each odd frame from its even neighbours;
  ``(255 - mean absolute error) / 255`` (:mod:`fastvmt.metrics.motion_smoothness`). Videos under 3 frames, or
  with frames too small for AMT-S's correlation pyramid, cannot have it (:meth:`VBenchScorer.unscorable`).

VBench averages the consistency dimensions over all frames of all videos, motion smoothness over videos;
:mod:`fastvmt.evaluation.quality` gives each job its video's score and averages jobs (the same for videos of one
length).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvmt.json_input import read_json
from fastvmt.metrics.video import as_uint8_video

__all__ = ["DIMENSIONS", "LAYOUT", "VBENCH_VERSION", "VBenchScorer", "consistency", "missing_files"]

#: The VBench release whose definitions these follow.
VBENCH_VERSION = "0.1.5"
#: The dimensions implemented, in the paper's Table 2 order.
DIMENSIONS = ("subject_consistency", "background_consistency", "aesthetic_quality", "motion_smoothness")
#: What to place under the VBench directory: path -> what it is (the published model it holds).
LAYOUT = {
    "dino_model/dino-vitb16": "DINO ViT-B/16 in transformers format (facebook/dino-vitb16: config.json, weights)",
    "clip_model/clip-vit-base-patch32": "CLIP ViT-B/32 in transformers format (openai/clip-vit-base-patch32)",
    "clip_model/clip-vit-large-patch14": "CLIP ViT-L/14 in transformers format (openai/clip-vit-large-patch14)",
    "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth":
        "the LAION aesthetic predictor's linear head (LAION-AI/aesthetic-predictor, a state dict of nn.Linear(768, 1))",
    "amt_model/amt-s.pth": "AMT-S's released checkpoint (amt-s.pth, the file VBench downloads from the "
                           "lalala125/AMT Hugging Face repository)",
}
_NEEDS = {
    "subject_consistency": ("dino_model/dino-vitb16",),
    "background_consistency": ("clip_model/clip-vit-base-patch32",),
    "aesthetic_quality": ("clip_model/clip-vit-large-patch14", "aesthetic_model/emb_reader/sa_0_4_vit_l_14_linear.pth"),
    "motion_smoothness": ("amt_model/amt-s.pth",),
}
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
#: The ``model_type`` each model directory's config.json must name.
_MODEL_TYPES = {"dino_model/dino-vitb16": "vit", "clip_model/clip-vit-base-patch32": "clip",
                "clip_model/clip-vit-large-patch14": "clip"}


def _present(root: Path, entry: str) -> bool:
    """A model directory with its config.json and weights, or the head file."""
    path = root / entry
    if entry not in _MODEL_TYPES:
        return path.is_file()
    return (path / "config.json").is_file() and any((path / name).is_file() for name in _WEIGHTS)


def _check_model_type(root: Path, entry: str) -> None:
    config = read_json(root / entry / "config.json", "model config")
    found = config.get("model_type") if isinstance(config, dict) else None
    if found != _MODEL_TYPES[entry]:
        raise ValueError(f"{root / entry}: expected a transformers {_MODEL_TYPES[entry]!r} model ({LAYOUT[entry]}), "
                         f"its config.json names model_type {found!r}")


def missing_files(root: Path, dimensions: Sequence[str] = DIMENSIONS) -> list[str]:
    """The :data:`LAYOUT` entries ``dimensions`` need that are not under ``root``."""
    return [entry for name in dimensions for entry in _NEEDS[name] if not _present(root, entry)]


def consistency(features: Any) -> float:
    """VBench's consistency of per-frame features ``(T, D)``: the mean over frames ``t >= 1`` of
    ``(max(0, cos(f_t, f_{t-1})) + max(0, cos(f_t, f_0))) / 2``; 1 for identical frames."""
    import torch

    features = torch.nn.functional.normalize(torch.as_tensor(features).float(), dim=-1)
    if len(features) < 2:
        raise ValueError("consistency needs at least 2 frames")
    previous = (features[1:] * features[:-1]).sum(-1).clamp(min=0)
    first = (features[1:] * features[:1]).sum(-1).clamp(min=0)
    return float(((previous + first) / 2).mean())


def _resize_shorter(frames: Any, size: int, mode: str) -> Any:
    """Resize ``(T, 3, H, W)`` so the shorter side is ``size`` (torchvision ``Resize(size)``'s rounding, no
    antialiasing, as VBench applies it to tensors)."""
    import torch

    height, width = frames.shape[-2:]
    short, long = (height, width) if height <= width else (width, height)
    new_long = int(size * long / short)
    target = (size, new_long) if height <= width else (new_long, size)
    return torch.nn.functional.interpolate(frames, size=target, mode=mode, align_corners=False, antialias=False)


def _center_crop(frames: Any, size: int) -> Any:
    height, width = frames.shape[-2:]
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    return frames[..., top : top + size, left : left + size]


def _normalize(frames: Any, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> Any:
    import torch

    mean, std = (torch.tensor(values).view(1, 3, 1, 1) for values in stats)
    return (frames / 255.0 - mean) / std


@dataclass(frozen=True)
class _Models:
    dino: Any = None
    clip_b: Any = None
    clip_l: Any = None
    aesthetic: Any = None
    amt: Any = None


class VBenchScorer:
    """VBench's dimensions (:data:`DIMENSIONS`) of videos, with the models under ``vbench_dir`` (:data:`LAYOUT`).

    Args:
        vbench_dir: the local directory holding the models; every file the chosen dimensions need must be there.
        dimensions: which to score (default: all of :data:`DIMENSIONS`).
        device: torch device.
        batch_size: frames per forward pass.

    Raises:
        FileNotFoundError: the directory, or files the dimensions need, are not there (all of them named; a model
            directory needs its config.json and weights).
        ValueError: an unknown dimension, a model directory of another kind of model, or an aesthetic head that does
            not fit the CLIP model.
    """

    def __init__(self, vbench_dir: str | Path, dimensions: Sequence[str] = DIMENSIONS, device: str = "cpu",
                 batch_size: int = 16):
        unknown = [name for name in dimensions if name not in DIMENSIONS]
        if unknown or not dimensions:
            raise ValueError(f"VBench dimensions are {', '.join(DIMENSIONS)}; got {list(dimensions)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        root = Path(vbench_dir).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"VBench model directory {str(root)!r} does not exist")
        missing = missing_files(root, dimensions)
        if missing:
            listed = "; ".join(f"{entry} ({LAYOUT[entry]})" for entry in missing)
            raise FileNotFoundError(f"VBench model directory {str(root)!r} lacks {listed}; "
                                    "fastvmt downloads no weights")
        import torch

        self._torch = torch
        self.root, self.dimensions, self.batch_size = root, tuple(dimensions), batch_size
        self.device = torch.device(device)
        self._models = self._load()

    def _load(self) -> _Models:
        def load(class_name: str, entry: str, **kwargs: Any) -> Any:
            import transformers  # only for the dimensions on transformers models: importing it takes seconds

            _check_model_type(self.root, entry)
            model = getattr(transformers, class_name).from_pretrained(self.root / entry, local_files_only=True,
                                                                      **kwargs)
            return model.to(self.device).eval()

        models: dict[str, Any] = {}
        if "subject_consistency" in self.dimensions:
            models["dino"] = load("ViTModel", "dino_model/dino-vitb16", add_pooling_layer=False)
        if "background_consistency" in self.dimensions:
            models["clip_b"] = load("CLIPModel", "clip_model/clip-vit-base-patch32")
        if "aesthetic_quality" in self.dimensions:
            models["clip_l"] = load("CLIPModel", "clip_model/clip-vit-large-patch14")
            models["aesthetic"] = self._aesthetic_head(models["clip_l"].config.projection_dim)
        if "motion_smoothness" in self.dimensions:
            from fastvmt.metrics.amt import load_amt_s

            models["amt"] = load_amt_s(self.root / _NEEDS["motion_smoothness"][0], self.device)
        return _Models(**models)

    def _aesthetic_head(self, width: int) -> Any:
        path = self.root / _NEEDS["aesthetic_quality"][1]
        state = self._torch.load(path, map_location="cpu", weights_only=True)
        shapes = {key: tuple(value.shape) for key, value in state.items()} if isinstance(state, dict) else None
        if shapes != {"weight": (1, width), "bias": (1,)}:
            raise ValueError(f"{path}: expected the state dict of nn.Linear({width}, 1) (the CLIP model's embedding "
                             f"width), got {shapes if shapes is not None else type(state).__name__}")
        head = self._torch.nn.Linear(width, 1)
        head.load_state_dict(state)
        return head.to(self.device).eval()

    def _batches(self, video: Any, prepare: Any, embed: Any) -> Any:
        frames = self._torch.from_numpy(as_uint8_video(video)).permute(0, 3, 1, 2).float()
        chunks = []
        with self._torch.no_grad():
            for start in range(0, len(frames), self.batch_size):
                pixels = prepare(frames[start : start + self.batch_size]).to(self.device)
                chunks.append(embed(pixels).float().cpu())
        return self._torch.cat(chunks)

    def _clip_features(self, model: Any, video: Any) -> Any:
        size = model.config.vision_config.image_size

        def prepare(frames: Any) -> Any:
            return _normalize(_center_crop(_resize_shorter(frames, size, "bicubic"), size), _CLIP)

        def embed(pixels: Any) -> Any:
            output = model.get_image_features(pixel_values=pixels)
            return output if isinstance(output, self._torch.Tensor) else output.pooler_output

        return self._batches(video, prepare, embed)

    def subject_consistency(self, video: Any) -> float:
        """DINO class-token consistency (:func:`consistency`)."""
        model = self._models.dino
        if model is None:
            raise ValueError("this scorer was not given subject_consistency")
        size = model.config.image_size

        def prepare(frames: Any) -> Any:
            return _normalize(_resize_shorter(frames, size, "bilinear"), _IMAGENET)

        def embed(pixels: Any) -> Any:
            return model(pixel_values=pixels, interpolate_pos_encoding=True).last_hidden_state[:, 0]

        return consistency(self._batches(video, prepare, embed))

    def background_consistency(self, video: Any) -> float:
        """CLIP ViT-B/32 image-embedding consistency (:func:`consistency`)."""
        if self._models.clip_b is None:
            raise ValueError("this scorer was not given background_consistency")
        return consistency(self._clip_features(self._models.clip_b, video))

    def aesthetic_quality(self, video: Any) -> float:
        """The LAION aesthetic predictor's mean score over frames, divided by 10."""
        if self._models.clip_l is None:
            raise ValueError("this scorer was not given aesthetic_quality")
        features = self._torch.nn.functional.normalize(self._clip_features(self._models.clip_l, video), dim=-1)
        with self._torch.no_grad():
            scores = self._models.aesthetic(features.to(self.device)).squeeze(-1).float()
        return float((scores / 10).mean())

    def motion_smoothness(self, video: Any) -> float:
        """AMT-S's motion smoothness (:func:`~fastvmt.metrics.motion_smoothness.motion_smoothness`), one frame pair
        at a time as VBench runs it."""
        from fastvmt.metrics.amt import AmtInterpolator
        from fastvmt.metrics.motion_smoothness import motion_smoothness

        if self._models.amt is None:
            raise ValueError("this scorer was not given motion_smoothness")
        return motion_smoothness(video, AmtInterpolator(self._models.amt))

    def unscorable(self, video: Any) -> dict[str, str]:
        """This scorer's dimensions that ``video`` cannot have, each with why, checked before any model runs:
        motion smoothness needs an odd frame between two even ones and frames AMT-S can correlate
        (:func:`~fastvmt.metrics.amt.check_frame_size`)."""
        from fastvmt.metrics.amt import check_frame_size
        from fastvmt.metrics.motion_smoothness import check_frame_count

        if "motion_smoothness" not in self.dimensions:
            return {}
        frames = as_uint8_video(video)
        try:
            check_frame_count(len(frames))
            check_frame_size(*frames.shape[1:3])
        except ValueError as error:
            return {"motion_smoothness": str(error)}
        return {}

    def score(self, video: Any) -> dict[str, float]:
        """Every dimension this scorer was given that ``video`` can have (:meth:`unscorable`), by name."""
        skipped = self.unscorable(video)
        return {name: getattr(self, name)(video) for name in self.dimensions if name not in skipped}
