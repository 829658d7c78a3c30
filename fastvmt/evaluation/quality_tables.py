"""The quality tables as text: markdown (per strategy in the layout of the FastVMT paper's Table 1, with VBench's
dimensions also in its Table 2 layout, then per job) and CSV (one file per strategy rows, one per job rows)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from fastvmt.evaluation.quality import METRICS, TABLE2, JobQuality, Metric, StrategyQuality
from fastvmt.metrics.vbench import VBENCH_VERSION

__all__ = ["QualityContext", "jobs_csv", "markdown", "strategies_csv", "strategy_table"]

_MISSING = "–"


@dataclass(frozen=True)
class QualityContext:
    """What the tables say about how they were made: the run directory, the tracker and its settings, the CLIP
    model, the jobs left out and why, the peak-memory measures found in the sidecars."""

    run_dir: str
    tracker: str
    grid: int
    incomplete: str
    clip_model: str | None
    left_out: dict[str, str]
    memory_measures: tuple[str, ...]
    vbench_dir: str | None = None


def _number(metric: Metric, value: float | None) -> str:
    return _MISSING if value is None else f"{value:.{metric.digits}f}"


def _heading(metric: Metric) -> str:
    return f"{metric.title} {'↑' if metric.higher_is_better else '↓'}"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _strategy_cells(row: StrategyQuality, metrics: Sequence[Metric]) -> list[str]:
    cells = [row.strategy, str(row.jobs)]
    for metric in metrics:
        cell = _number(metric, row.values[metric.key])
        count = row.counts[metric.key]
        cells.append(cell if count in (0, row.jobs) else f"{cell} ({count}/{row.jobs})")
    return cells


def strategy_table(strategies: Sequence[StrategyQuality], metrics: Sequence[Metric] = METRICS) -> str:
    """The markdown table per strategy: jobs, then each metric's mean (default: every metric; ``TABLE2``: the
    paper's Table 2 layout)."""
    return "\n".join([_row(["strategy", "jobs", *(_heading(metric) for metric in metrics)]),
                      _row(["---", "---:", *("---:" for _ in metrics)]),
                      *(_row(_strategy_cells(row, metrics)) for row in strategies)])


def markdown(strategies: Sequence[StrategyQuality], jobs: Sequence[JobQuality], context: QualityContext) -> str:
    """The report: how it was made, the table per strategy, what is missing and why, the table per job."""
    clip = f"CLIP model {context.clip_model}" if context.clip_model else "no CLIP model (text similarity and " \
        "temporal consistency need --clip-model DIR)"
    vbench = f"VBench models {context.vbench_dir} (definitions of VBench {VBENCH_VERSION})" if context.vbench_dir \
        else "no VBench models (subject and background consistency, aesthetic quality and motion smoothness need " \
        "--vbench-dir DIR)"
    lines = [
        f"# Quality of {context.run_dir}",
        "",
        f"{len(jobs)} finished job(s). Motion fidelity: tracker {context.tracker}, grid {context.grid}x"
        f"{context.grid}, incomplete tracklets: {context.incomplete}, against each job's reference. {clip}. "
        f"{vbench}.",
        "",
        strategy_table(strategies),
        "",
        "Means over each strategy's jobs; `(k/n)`: only k of its n jobs have a value. Time: the run's seconds "
        "without its motion check. AMF EPE: the run's motion check (end-point error of the output's attention "
        "motion flow to the reference's, in tokens).",
    ]
    if context.memory_measures:
        lines += ["", "Peak memory measured as: " + "; ".join(context.memory_measures) + "."]
    if context.vbench_dir:
        lines += ["", "## The paper's Table 2", "", strategy_table(strategies, TABLE2)]
    missing = []
    for metric in METRICS:
        jobs_of: dict[str, list[str]] = {}
        for job in jobs:
            if job.values.get(metric.key) is None and metric.key in job.notes:
                jobs_of.setdefault(job.notes[metric.key], []).append(job.id)
        missing += [f"- {metric.title} ({', '.join(ids)}): {note}" for note, ids in jobs_of.items()]
    if missing:
        lines += ["", "Missing values:", "", *missing]
    if context.left_out:
        lines += ["", "Not scored: " + "; ".join(f"{name}: {why}" for name, why in context.left_out.items()) + "."]
    lines += ["", "## Jobs", "", _row(["job", "strategy", "prompt", *(metric.title for metric in METRICS)]),
              _row(["---", "---", "---", *("---:" for _ in METRICS)])]
    lines += [_row([job.id, job.strategy, job.prompt, *(_number(m, job.values.get(m.key)) for m in METRICS)])
              for job in jobs]
    return "\n".join(lines) + "\n"


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return buffer.getvalue()


def strategies_csv(strategies: Sequence[StrategyQuality]) -> str:
    """One row per strategy: jobs, then each metric's mean and how many jobs it averages."""
    header = ["strategy", "jobs", *(name for m in METRICS for name in (m.key, f"{m.key}_jobs"))]
    rows = [[row.strategy, row.jobs, *(cell for m in METRICS for cell in (row.values[m.key], row.counts[m.key]))]
            for row in strategies]
    return _csv(header, rows)


def jobs_csv(jobs: Sequence[JobQuality]) -> str:
    """One row per job: id, strategy, prompt, reference, each metric, and the notes on missing values."""
    header = ["job", "strategy", "prompt", "reference", *(m.key for m in METRICS), "notes"]
    rows = [[job.id, job.strategy, job.prompt, job.reference, *(job.values.get(m.key) for m in METRICS),
             "; ".join(f"{key}: {note}" for key, note in job.notes.items())] for job in jobs]
    return _csv(header, rows)
