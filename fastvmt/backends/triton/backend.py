"""The ``triton`` AMF backend: fused kernels for CUDA GPUs (Ampere, Hopper), or Triton's CPU interpreter.

This module imports neither triton nor the kernels: they load on the first capability check or op, so the
registry can list this backend on machines without triton.
"""

from __future__ import annotations

import importlib.util

import torch

from fastvmt.backends.base import AMFBackend, Case

__all__ = ["TritonBackend"]

#: Largest feature size the kernels run (kept in sync with ``configs.MAX_HEAD_DIM``; no triton import here).
MAX_HEAD_DIM = 256
_GPU_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
_INTERPRETER_DTYPES = (torch.float16, torch.float32)
_MIN_CAPABILITY = (8, 0)


def _interpreter_status() -> tuple[bool, str]:
    """Whether the kernels run in Triton's interpreter, and a reason if the environment disagrees."""
    from fastvmt.backends.triton import configs

    if configs.interpreter_requested() and not configs.INTERPRETED:
        return False, (
            "TRITON_INTERPRET=1 was set after the Triton kernels were compiled for the GPU in this process; "
            "set it before the first use of the triton backend"
        )
    return configs.INTERPRETED, ""


def _runtime_reason(device: torch.device, dtype: torch.dtype) -> str:
    """Why the kernels cannot run on ``device`` in ``dtype`` here, or ``""``."""
    dtype_name = str(dtype).removeprefix("torch.")
    if dtype not in _GPU_DTYPES:
        return f"dtype {dtype_name} is not supported (float16, bfloat16, float32); use backend 'torch' for it"
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install 'fastvmt[triton]', Linux x86-64 with a CUDA GPU)"
    interpreted, reason = _interpreter_status()
    if reason:
        return reason
    if interpreted:
        if device.type not in ("cpu", "cuda"):
            return f"Triton's interpreter runs CPU or CUDA tensors, got {device.type}"
        if dtype not in _INTERPRETER_DTYPES:
            return f"Triton's interpreter computes {dtype_name} wrongly; use float32 or float16 with TRITON_INTERPRET=1"
        return ""
    if device.type == "cpu":
        return (
            "CPU tensors run only in Triton's interpreter: set TRITON_INTERPRET=1 before the first use of the "
            "triton backend (slow, meant for tests), or use backend 'torch'"
        )
    if device.type != "cuda":
        return f"the Triton kernels need CUDA tensors, got {device.type}"
    if not torch.cuda.is_available():
        return "no CUDA device is available (torch.cuda.is_available() is False)"
    capability = torch.cuda.get_device_capability(device)
    if capability < _MIN_CAPABILITY:
        name = torch.cuda.get_device_name(device)
        return f"GPU {name} has compute capability {capability}; the Triton kernels need Ampere (8.0) or newer"
    return ""


class TritonBackend(AMFBackend):
    """Fused Triton kernels: flash-attention style dense AMF and tile-windowed AMF, forward and backward.

    Feature size ``D`` up to 256, any value (padded inside the kernels to a power of two by masked loads).
    ``window_key_means`` is the base class's summed-area table in torch (memory-bound and already ``O(F*S*D)``,
    a kernel would not be faster). The backward passes use no atomics and sum in a fixed order: gradients are
    bit-identical from run to run.
    """

    name = "triton"

    def supports(self, case: Case) -> tuple[bool, str]:
        ok, reason = super().supports(case)
        if not ok:
            return ok, reason
        if case.shape and case.shape[-1] > MAX_HEAD_DIM:
            return False, f"feature size {case.shape[-1]} exceeds the kernels' maximum {MAX_HEAD_DIM}; use 'torch'"
        reason = _runtime_reason(case.device, case.dtype)
        return not reason, reason

    def _require(self, op: str, q: torch.Tensor) -> None:
        """Refuse inputs the kernels cannot run (for direct calls that bypass dispatch)."""
        ok, reason = self.supports(Case(op, q.device, q.dtype, tuple(q.shape), q.requires_grad))
        if not ok:
            from fastvmt.backends.dispatch import BackendUnavailable

            raise BackendUnavailable(f"backend 'triton' cannot run {op} on {q.device}/{q.dtype}: {reason}")

    def dense_positions(self, q, k, pairs, scale):
        self._require("dense", q)
        from fastvmt.backends.triton.functions import dense_positions

        return dense_positions(q, k, pairs, scale)

    def dense_argmax_positions(self, q, k, pairs):
        self._require("dense_argmax", q)
        from fastvmt.backends.triton.functions import dense_argmax_positions

        return dense_argmax_positions(q, k, pairs)

    def windowed_positions(self, q, k, pairs, starts, tile, extent, scale):
        self._require("windowed", q)
        from fastvmt.backends.triton.functions import windowed_positions

        return windowed_positions(q, k, pairs, starts, tile, extent, scale)
