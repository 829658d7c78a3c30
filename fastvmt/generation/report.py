"""What a run reports: resolved configuration, seed, versions, wall time per phase and work counts."""

from __future__ import annotations

import platform
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fastvmt.outputs import write_json

if TYPE_CHECKING:
    from fastvmt.generation.motion_check import MotionCheck

__all__ = ["PhaseTimer", "RunCounts", "RunReport", "package_versions"]

_PACKAGES = ("fastvmt", "torch", "diffsynth", "triton", "numpy")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape a run (``"not installed"`` for missing ones)."""
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class RunCounts:
    """Work done by a run. A feature capture counts the blocks it runs, the captured block as one; a velocity the
    whole DiT once a pass (two with CFG). ``gradients_computed`` counts the inner iterations that read the
    backbone afresh, ``gradients_reused`` those that reused the last reading: its gradient (attention features) or
    its velocity, with the loss re-evaluated at the moved latent (latent predictions). ``kv_reference_reads``
    counts the reference forwards that recorded keys and values for injection, ``kv_injected_calls`` the
    self-attention calls that attended to them (docs/algorithm.md#motion-embeddings), the recomputations of a
    checkpointed guidance backward included (docs/algorithm.md#memory)."""

    steps: int = 0
    guided_steps: int = 0
    inner_iterations: int = 0
    gradients_computed: int = 0
    gradients_reused: int = 0
    blocks_forward: int = 0
    blocks_backward: int = 0
    kv_reference_reads: int = 0
    kv_injected_calls: int = 0


class PhaseTimer:
    """Accumulates wall time per named phase (synchronising CUDA so GPU work is attributed correctly)."""

    def __init__(self, device: torch.device | str = "cpu"):
        self.seconds: dict[str, float] = defaultdict(float)
        self._cuda = torch.device(device).type == "cuda"

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self._cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self._cuda:
                torch.cuda.synchronize()
            self.seconds[name] += time.perf_counter() - start


@dataclass
class RunReport:
    """The record of one run; ``to_json`` writes the sidecar that ``--config`` replays.

    ``motion_check`` is the output's motion against the reference's (:mod:`fastvmt.generation.motion_check`);
    ``peak_memory`` is ``{"bytes", "measure"}`` (:mod:`fastvmt.generation.peak_memory`). ``step_cache`` is, with
    the step cache on, its threshold, coefficients' model id, steps and per CFG branch the velocity forwards
    computed and cached (:meth:`fastvmt.backbones.step_cache.StepCache.summary`); None with it off.
    """

    config: dict[str, Any]
    seed: int
    counts: RunCounts = field(default_factory=RunCounts)
    seconds: dict[str, float] = field(default_factory=dict)
    losses: list[dict[str, float]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=package_versions)
    motion_check: MotionCheck | None = None
    peak_memory: dict[str, Any] = field(default_factory=dict)
    step_cache: dict[str, Any] | None = None
    #: What the run decided on its own that its user should know (e.g. which first frame conditioned it).
    notes: list[str] = field(default_factory=list)
    #: The DiT calls each expert served, by kind (``velocity``, ``features``): Wan2.2 A14B's high- and low-noise
    #: experts; None for a backbone of one DiT.
    experts: dict[str, dict[str, int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, path: str | Path) -> Path:
        """Write the sidecar atomically."""
        return write_json(Path(path), self.to_dict())
