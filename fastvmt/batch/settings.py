"""What every job of a batch shares: a run's settings (whose strategy, overrides and seed a manifest line may
replace) and how the workers run."""

from __future__ import annotations

from dataclasses import dataclass

from fastvmt.transfer_run import TransferSettings

__all__ = ["BatchSettings"]


@dataclass(frozen=True)
class BatchSettings(TransferSettings):
    """A batch's options: :class:`~fastvmt.transfer_run.TransferSettings` for every job, plus ``threads``,
    torch's intra-op threads in each worker (None: torch's default), and ``metrics``, which scores each video's
    motion fidelity against its reference."""

    metrics: bool = False
    threads: int | None = None

    def check(self) -> BatchSettings:
        """Fail on a bad option before any work; returns self."""
        super().check()
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        return self
