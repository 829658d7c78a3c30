"""CLIP scores from local weights: text alignment and frame-to-frame temporal consistency.

The CLIP model is a local directory in Hugging Face ``transformers`` format (``config.json``, weights,
tokenizer and preprocessor files, e.g. a saved ``openai/clip-vit-base-patch32``); fastvmt downloads nothing.

- ``text_similarity``: mean over frames of the cosine between the frame's and the prompt's CLIP embeddings.
- ``temporal_consistency``: mean cosine between the CLIP embeddings of consecutive frames (1 for a still video).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float, Shaped
from torch import Tensor

from fastvmt.metrics.video import as_uint8_video

__all__ = ["ClipScorer"]

VideoLike = Shaped[np.ndarray, "_t ..."] | Shaped[Tensor, "_t ..."]


def _features(output: Any) -> Tensor:
    """Projected embeddings: a tensor (transformers 4) or the ``pooler_output`` of a model output (5)."""
    return output if isinstance(output, Tensor) else output.pooler_output


class ClipScorer:
    """A CLIP model loaded from ``model_dir`` that scores videos.

    Args:
        model_dir: local directory of a ``transformers`` CLIP model and its processor; required.
        device: torch device.
        batch_size: frames embedded per forward pass.
    """

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", batch_size: int = 16):
        if model_dir is None:
            raise ValueError(
                "CLIP scores need a local CLIP model directory (transformers format: config.json, weights, "
                "tokenizer, preprocessor); fastvmt downloads no weights"
            )
        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"CLIP model directory {str(path)!r} does not exist")
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{str(path)!r} has no config.json: not a transformers CLIP model directory")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        import torch
        from transformers import CLIPModel, CLIPProcessor

        self._torch = torch
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = CLIPModel.from_pretrained(path, local_files_only=True).to(self.device).eval()
        self.processor = CLIPProcessor.from_pretrained(path, local_files_only=True)

    def image_embeddings(self, video: VideoLike) -> Float[Tensor, "t d"]:
        """Unit-length CLIP embeddings of every frame."""
        frames = as_uint8_video(video)
        chunks = []
        with self._torch.no_grad():
            for start in range(0, len(frames), self.batch_size):
                batch = self.processor(images=list(frames[start : start + self.batch_size]), return_tensors="pt")
                pixels = batch["pixel_values"].to(self.device)
                chunks.append(_features(self.model.get_image_features(pixel_values=pixels)))
        embeddings = self._torch.cat(chunks).float()
        return embeddings / embeddings.norm(dim=-1, keepdim=True)

    def text_embedding(self, prompt: str) -> Float[Tensor, " d"]:
        """Unit-length CLIP embedding of ``prompt``."""
        if not prompt.strip():
            raise ValueError("the prompt is empty")
        tokens = self.processor(text=[prompt], return_tensors="pt", padding=True, truncation=True)
        inputs = {name: tokens[name].to(self.device) for name in ("input_ids", "attention_mask")}
        with self._torch.no_grad():
            embedding = _features(self.model.get_text_features(**inputs))[0].float()
        return embedding / embedding.norm()

    def text_similarity(self, video: VideoLike, prompt: str) -> float:
        """Mean cosine between each frame and ``prompt``."""
        text = self.text_embedding(prompt)
        return float((self.image_embeddings(video) @ text).mean())

    def temporal_consistency(self, video: VideoLike) -> float:
        """Mean cosine between consecutive frames' embeddings."""
        embeddings = self.image_embeddings(video)
        if len(embeddings) < 2:
            raise ValueError("temporal consistency needs at least 2 frames")
        return float((embeddings[1:] * embeddings[:-1]).sum(dim=-1).mean())
