"""The files of ``fastvmt bench quality``, written as one atomic group (:func:`fastvmt.outputs.atomic_outputs`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastvmt.evaluation.quality import JobQuality, StrategyQuality
from fastvmt.evaluation.quality_chart import quality_chart
from fastvmt.evaluation.quality_tables import QualityContext, jobs_csv, markdown, strategies_csv
from fastvmt.outputs import atomic_outputs, encode_png

__all__ = ["QUALITY_FILES", "write_quality"]

#: The files, by what they hold: the markdown report, the per-strategy CSV, the per-job CSV, the bar chart.
QUALITY_FILES = {"markdown": "quality.md", "strategies": "quality.csv", "jobs": "quality_jobs.csv",
                 "chart": "quality.png"}


def write_quality(out_dir: str | Path, strategies: Sequence[StrategyQuality], jobs: Sequence[JobQuality],
                  context: QualityContext) -> list[Path]:
    """Write :data:`QUALITY_FILES` into ``out_dir`` (replacing earlier ones), all or none; returns their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in QUALITY_FILES.values()]
    with atomic_outputs(paths) as (report, table, per_job, chart):
        report.write_text(markdown(strategies, jobs, context), encoding="utf-8")
        table.write_text(strategies_csv(strategies), encoding="utf-8")
        per_job.write_text(jobs_csv(jobs), encoding="utf-8")
        encode_png(chart, quality_chart(strategies, f"Quality of {context.run_dir}"))
    return paths
