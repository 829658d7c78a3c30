"""Where a job's results live and what a job reports.

``DIR/<id>/output.mp4`` and its sidecar ``DIR/<id>/output.json`` (written last, both atomically) make a
finished job; a failed one leaves ``DIR/<id>/error.json`` with the message and the traceback.
"""

from __future__ import annotations

import os
import socket
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastvmt.json_input import read_json
from fastvmt.outputs import write_json
from fastvmt.transfer_run import sidecar_path

__all__ = ["JobOutcome", "JobPaths", "Status", "failure", "worker_name"]

Status = Literal["done", "failed", "skipped"]


@dataclass(frozen=True)
class JobPaths:
    """The files of job ``job_id`` under the batch's output folder."""

    root: Path
    job_id: str

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.job_id

    @property
    def video(self) -> Path:
        return self.folder / "output.mp4"

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.video)

    @property
    def error(self) -> Path:
        return self.folder / "error.json"

    def finished(self) -> bool:
        """A job is finished when its video and its sidecar are both there."""
        return self.video.is_file() and self.sidecar.is_file()

    def recorded_metrics(self) -> dict[str, Any]:
        """The metrics a finished job's sidecar holds (empty when it has none)."""
        record = read_json(self.sidecar, "job sidecar")
        return record.get("metrics", {}) if isinstance(record, dict) else {}


@dataclass(frozen=True)
class JobOutcome:
    """How one job went. ``worker`` is ``host:pid`` of the process that ran it; ``model_loads`` how many
    times that process had loaded a model by then (1 when the model is loaded once per worker)."""

    id: str
    status: Status
    seconds: float = 0.0
    error: str | None = None
    worker: str | None = None
    model_loads: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def failure(paths: JobPaths, error: BaseException, *, seconds: float, worker: str, model_loads: int) -> JobOutcome:
    """Record ``error`` in the job's ``error.json`` (message, type, traceback) and return the failed outcome."""
    message = f"{type(error).__name__}: {error}"
    paths.folder.mkdir(parents=True, exist_ok=True)
    write_json(paths.error, {
        "id": paths.job_id,
        "error": message,
        "type": type(error).__name__,
        "traceback": "".join(traceback.format_exception(error)),
        "worker": worker,
    })
    return JobOutcome(paths.job_id, "failed", seconds, message, worker, model_loads)
