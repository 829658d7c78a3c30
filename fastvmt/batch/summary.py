"""The end of a batch: counts of done, failed and skipped jobs, wall time, per-worker load counts, metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

from fastvmt.batch.results import JobOutcome, Status
from fastvmt.outputs import write_json

__all__ = ["STATUSES", "BatchSummary"]

STATUSES: tuple[Status, ...] = ("done", "failed", "skipped")


@dataclass(frozen=True)
class BatchSummary:
    """The outcomes of every manifest job (manifest order) in one run of a batch."""

    outcomes: tuple[JobOutcome, ...]
    wall_seconds: float
    executor: str

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(outcome.status for outcome in self.outcomes)
        return {status: found[status] for status in STATUSES}

    @property
    def failed(self) -> list[JobOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]

    def workers(self) -> dict[str, dict[str, int]]:
        """Per worker that ran jobs in this run: how many, and how many model loads its process made."""
        workers: dict[str, dict[str, int]] = {}
        for outcome in self.outcomes:
            if outcome.worker is not None and outcome.status != "skipped":
                entry = workers.setdefault(outcome.worker, {"jobs": 0, "model_loads": 0})
                entry["jobs"] += 1
                entry["model_loads"] = max(entry["model_loads"], outcome.model_loads)
        return workers

    def mean_motion_fidelity(self) -> float | None:
        """Mean score over the jobs whose video was scored (None when there are none)."""
        scores = [o.metrics["motion_fidelity"]["score"] for o in self.outcomes
                  if "score" in o.metrics.get("motion_fidelity", {})]
        return fmean(scores) if scores else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "wall_seconds": self.wall_seconds,
            "counts": self.counts,
            "mean_motion_fidelity": self.mean_motion_fidelity(),
            "workers": self.workers(),
            "jobs": [outcome.to_dict() for outcome in self.outcomes],
        }

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        return write_json(Path(path), self.to_dict())

    def table(self) -> str:
        """A plain-text table: jobs and job time per status, the wall time, then each failure's message."""
        rows = [f"{'status':<8} {'jobs':>6} {'job time':>10}"]
        for status in STATUSES:
            chosen = [o for o in self.outcomes if o.status == status]
            seconds = f"{sum(o.seconds for o in chosen):.1f} s" if status != "skipped" else "-"
            rows.append(f"{status:<8} {len(chosen):>6} {seconds:>10}")
        rows.append(f"{'total':<8} {len(self.outcomes):>6} {'wall':>5} {self.wall_seconds:.1f} s ({self.executor})")
        fidelity = self.mean_motion_fidelity()
        if fidelity is not None:
            rows.append(f"mean motion fidelity {fidelity:.4f}")
        for outcome in self.failed:
            first_line = (outcome.error or "").partition("\n")[0]
            rows.append(f"failed {outcome.id}: {first_line}")
        return "\n".join(rows)
