"""Peak memory of a run, as its report records it (and ``fastvmt bench quality`` tabulates it).

On CUDA it is the most memory the run's tensors took on its device (``torch.cuda.max_memory_allocated``, its
peak statistics reset when the run starts). On the CPU there is no per-run counter: it is the process's peak
resident set size since the process started, which includes earlier work of the same process (a batch worker's
earlier jobs, the model loading). Elsewhere it is not measured, and the record says so.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

__all__ = ["PeakMemoryMeter"]


class PeakMemoryMeter:
    """Started at the beginning of a run on ``device``; :meth:`read` gives ``{"bytes": int | None, "measure": str}``."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def read(self) -> dict[str, Any]:
        if self.device.type == "cuda":
            return {"bytes": int(torch.cuda.max_memory_allocated(self.device)),
                    "measure": f"torch.cuda.max_memory_allocated on {self.device} during the run"}
        if self.device.type == "cpu" and sys.platform != "win32":
            import resource

            kib = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
            return {"bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib,
                    "measure": "peak resident set size of the process since it started (earlier work included)"}
        return {"bytes": None, "measure": f"not measured on {self.device.type} ({sys.platform})"}
