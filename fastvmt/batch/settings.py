"""What every job of a batch shares: the model, the video size, the sampling options and the defaults a
manifest line can override (strategy, overrides, seed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastvmt.batch.manifest import Job
from fastvmt.io.checks import check_num_frames, check_size

if TYPE_CHECKING:
    from fastvmt.strategies.spec import Strategy

__all__ = ["DTYPES", "BatchSettings", "job_strategy"]

#: Model dtypes by name.
DTYPES = ("bfloat16", "float16", "float32")


@dataclass(frozen=True)
class BatchSettings:
    """Options of a batch; picklable, so a Ray worker gets them as they are.

    ``strategy``, ``overrides`` and ``seed`` are defaults a manifest line may replace (its ``overrides`` are
    applied on top of these). ``threads`` sets torch's intra-op threads in each worker (None: torch's
    default). ``metrics`` scores each video's motion fidelity against its reference.
    """

    model_dir: str
    num_frames: int = 81
    height: int = 480
    width: int = 832
    num_inference_steps: int = 50
    seed: int = 42
    strategy: str = "fastvmt"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    backend: str = "auto"
    denoising_strength: float | None = None
    cfg_scale: float | None = None
    negative_prompt: str | None = None
    dtype: str = "bfloat16"
    device: str | None = None
    offload: bool = False
    metrics: bool = False
    threads: int | None = None
    progress: bool = False

    def check(self) -> BatchSettings:
        """Fail on a bad option (sizes, counts, dtype, missing model folder) before any work; returns self."""
        check_num_frames(self.num_frames)
        check_size("height", self.height)
        check_size("width", self.width)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.num_inference_steps < 1:
            raise ValueError(f"the number of steps must be at least 1, got {self.num_inference_steps}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if not Path(self.model_dir).is_dir():
            raise NotADirectoryError(
                f"model directory {self.model_dir} does not exist (download Wan2.1-T2V weights there)"
            )
        return self

    def backbone_options(self) -> dict[str, Any]:
        """Keyword arguments of the backbone's ``from_pretrained``."""
        import torch

        options: dict[str, Any] = {"dtype": getattr(torch, self.dtype), "offload": "cpu" if self.offload else None}
        if self.device is not None:
            options["device"] = self.device
        return options


def job_strategy(settings: BatchSettings, job: Job) -> Strategy:
    """The job's strategy: its preset (or the batch's) with the batch's overrides, then the job's.

    Raises ``LookupError``/``ValueError`` for an unknown preset, field or component option.
    """
    from fastvmt.strategies.components import build_components, resolve_strategy

    strategy = resolve_strategy(job.strategy or settings.strategy, {**settings.overrides, **job.overrides})
    build_components(strategy)
    return strategy
