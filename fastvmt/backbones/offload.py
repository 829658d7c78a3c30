"""diffsynth's VRAM management for GPUs too small to hold a whole Wan model.

With ``offload="cpu"`` every layer's weights live in CPU memory. diffsynth wraps the layers (its
``VRAM_MANAGEMENT_MODULE_MAPS`` for each network): a layer moves its weights to the GPU when it runs and keeps
them there while the GPU's used memory stays under ``vram_limit`` GiB; above it, each call copies the weights
over for that call only. Only one network (text encoder, DiT or VAE) is onloaded at a time. diffsynth is imported
on first use, so :data:`OFFLOAD_CHOICES` can be checked without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["OFFLOAD_CHOICES", "OFFLOAD_TO_CPU", "activate", "default_vram_limit", "enable_offload"]

#: ``offload="cpu"``: weights live in CPU memory, layers are streamed to the compute device.
OFFLOAD_TO_CPU = "cpu"
#: The values of a backbone's ``offload=``: None keeps every weight on the compute device.
OFFLOAD_CHOICES = (None, OFFLOAD_TO_CPU)
#: Memory diffsynth's examples leave free under the limit, in GiB.
_HEADROOM_GIB = 2.0


def default_vram_limit(device: torch.device) -> float:
    """diffsynth's recipe: the GPU's total memory minus 2 GiB."""
    return torch.cuda.mem_get_info(device)[1] / 1024**3 - _HEADROOM_GIB


def _import(path: str) -> type:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def enable_offload(model: nn.Module, device: torch.device, dtype: torch.dtype, vram_limit: float | None) -> nn.Module:
    """Wrap ``model``'s layers so they are stored on the CPU and computed on ``device``."""
    from diffsynth.configs import VRAM_MANAGEMENT_MODULE_MAPS
    from diffsynth.core.vram.layers import enable_vram_management

    key = f"{type(model).__module__}.{type(model).__qualname__}"
    if key not in VRAM_MANAGEMENT_MODULE_MAPS:
        raise ValueError(f"diffsynth has no VRAM management map for {key}")
    module_map = {_import(source): _import(target) for source, target in VRAM_MANAGEMENT_MODULE_MAPS[key].items()}
    config = {
        "offload_dtype": dtype,
        "offload_device": "cpu",
        "onload_dtype": dtype,
        "onload_device": "cpu",
        "preparing_dtype": dtype,
        "preparing_device": str(device),
        "computation_dtype": dtype,
        "computation_device": str(device),
    }
    return enable_vram_management(model.to(device="cpu", dtype=dtype), module_map, config, vram_limit=vram_limit)


def _wrappers(model: nn.Module) -> Iterable[nn.Module]:
    """diffsynth's managed layers of ``model``."""
    from diffsynth.core.vram.layers import AutoTorchModule

    return (m for m in model.modules() if isinstance(m, AutoTorchModule))


def activate(models: Iterable[nn.Module], active: nn.Module) -> None:
    """Offload every managed model but ``active``, then onload ``active`` (no-op for unmanaged models)."""
    for model in models:
        if model is not active:
            for wrapper in _wrappers(model):
                wrapper.offload()
    for wrapper in _wrappers(active):
        wrapper.onload()
