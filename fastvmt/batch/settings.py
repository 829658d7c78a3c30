"""What every job of a batch shares: a run's settings (whose strategy, overrides and seed a manifest line may
replace) and how the workers run."""

from __future__ import annotations

from dataclasses import dataclass

from fastvmt.transfer_run import TransferSettings
from fastvmt.values import check_int

__all__ = ["BatchSettings"]


@dataclass(frozen=True)
class BatchSettings(TransferSettings):
    """A batch's options: :class:`~fastvmt.transfer_run.TransferSettings` for every job, plus ``threads``,
    torch's intra-op threads in each worker (None: torch's default), and ``metrics``, which scores each video's
    motion fidelity against its reference."""

    metrics: bool = False
    threads: int | None = None

    def check(self) -> BatchSettings:
        """Fail on a bad option before any work; returns the settings checked (numbers in normal form)."""
        checked = super().check()
        if not isinstance(checked.metrics, bool):
            raise ValueError(f"metrics must be true or false, got {checked.metrics!r}")
        if checked.threads is not None:
            check_int("threads", checked.threads, low=1)
        return checked
