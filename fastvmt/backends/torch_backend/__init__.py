"""The ``torch`` AMF backend: fast, memory-bounded plain torch for CPU and CUDA.

Dense AMF runs on ``scaled_dot_product_attention`` (:mod:`.dense`); the windowed AMF groups neighbouring tiles
under shared key blocks and runs batched GEMMs with a hand-written backward (:mod:`.windowed`,
:mod:`.grouping`). Every op works on chunks of frame pairs whose temporary tensors stay under ``chunk_bytes``.
"""

from fastvmt.backends.torch_backend.backend import TorchBackend

__all__ = ["TorchBackend"]
