"""fastvmt: training-free video motion transfer on video diffusion transformers.

The package imports lazily: ``import fastvmt`` loads neither torch, diffsynth nor triton; each public name
loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "hookimpl": "fastvmt.hookspecs",
    "Strategy": "fastvmt.strategies.spec",
    "Component": "fastvmt.strategies.spec",
    "use_backend": "fastvmt.backends.dispatch",
    "WindowedAMF": "fastvmt.ops",
    "amf_loss": "fastvmt.ops",
    "checks_enabled": "fastvmt.ops",
    "frame_pairs": "fastvmt.ops",
    "full_amf": "fastvmt.ops",
    "masked_mse_loss": "fastvmt.ops",
    "window_loss": "fastvmt.ops",
    "window_starts": "fastvmt.ops",
    "windowed_amf": "fastvmt.ops",
    "AttentionFeatures": "fastvmt.interfaces",
    "Backbone": "fastvmt.interfaces",
    "GradientScheduler": "fastvmt.interfaces",
    "GuidanceLoss": "fastvmt.interfaces",
    "InnerStep": "fastvmt.interfaces",
    "LossValue": "fastvmt.interfaces",
    "MotionExtractor": "fastvmt.interfaces",
    "MotionField": "fastvmt.interfaces",
    "StepState": "fastvmt.interfaces",
    "TokenGrid": "fastvmt.interfaces",
    "VideoGeometry": "fastvmt.interfaces",
    "WanBackbone": "fastvmt.backbones.wan",
    "MotionTransferPipeline": "fastvmt.generation.pipeline",
    "TransferResult": "fastvmt.generation.pipeline",
    "read_video": "fastvmt.io",
    "write_video": "fastvmt.io",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'fastvmt' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
