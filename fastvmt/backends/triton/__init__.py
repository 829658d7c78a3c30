"""The ``triton`` AMF backend: fused dense and windowed kernels with their autograd wrappers.

Importing this package loads neither triton nor the kernels (see :mod:`.backend`); the kernel modules are
:mod:`.dense_kernels` and :mod:`.windowed_kernels`, launched by :mod:`.functions`. Design, cost model and how
to benchmark: ``docs/backends/triton.md``.
"""

from fastvmt.backends.triton.backend import TritonBackend

__all__ = ["TritonBackend"]
