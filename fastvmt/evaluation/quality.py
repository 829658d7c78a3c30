"""The quality of a batch run, per job and per strategy: the metrics of the FastVMT paper's Table 1 and the run's
own records.

A run directory is what ``fastvmt batch --out`` writes: ``DIR/<id>/output.mp4`` with its sidecar ``output.json``
per finished job. Per job:

- ``motion_fidelity``: the generated video's motion fidelity to its reference (:mod:`fastvmt.metrics`; the
  reference read as the run read it, from the sidecar's path, size and frame count);
- ``text_similarity`` and ``temporal_consistency``: CLIP scores (:class:`fastvmt.metrics.ClipScorer`), with a
  local CLIP model only;
- ``seconds``: the run's wall time without its motion check (the sidecar's ``seconds``);
- ``peak_memory_gib``: the sidecar's ``peak_memory`` (what it measures is recorded with it);
- ``amf_epe``: the sidecar's motion check, the AMF end-point error to the reference, in tokens;
- ``subject_consistency``, ``background_consistency``, ``aesthetic_quality``, ``motion_smoothness``: VBench's
  dimensions of the paper's Table 2 (:class:`fastvmt.metrics.vbench.VBenchScorer`), with a local VBench model
  directory only.

A value that cannot be had is ``None`` with the reason in the job's ``notes``; a strategy's value is the mean
over its jobs that have one. Jobs are grouped by their recorded strategy; one that differs from its registered
preset is named with the fields that differ (``ditflow (inner_iterations=2)``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

from fastvmt.batch.results import JobPaths
from fastvmt.json_input import read_json

__all__ = ["METRICS", "TABLE1", "TABLE2", "VBENCH", "JobQuality", "Metric", "QualityScorer", "RunJob",
           "StrategyQuality", "find_run_jobs", "strategy_label", "strategy_labels", "summarize"]


@dataclass(frozen=True)
class Metric:
    """A column of the quality tables: key, heading, unit and whether higher is better."""

    key: str
    title: str
    higher_is_better: bool
    digits: int = 4


METRICS = (
    Metric("text_similarity", "text similarity", True),
    Metric("motion_fidelity", "motion fidelity", True),
    Metric("temporal_consistency", "temporal consistency", True),
    Metric("seconds", "time (s)", False, 2),
    Metric("peak_memory_gib", "peak memory (GiB)", False, 2),
    Metric("amf_epe", "AMF EPE (tokens)", False),
    Metric("subject_consistency", "subject consistency", True),
    Metric("background_consistency", "background consistency", True),
    Metric("aesthetic_quality", "aesthetic quality", True),
    Metric("motion_smoothness", "motion smoothness", True),
)
#: The paper's Table 1 columns, in its order.
TABLE1 = METRICS[:4]
#: VBench's dimensions, in the paper's Table 2 order.
VBENCH = METRICS[6:]
#: The paper's Table 2 columns: Table 1's quality columns, then VBench's.
TABLE2 = (*METRICS[:3], *VBENCH)


@dataclass(frozen=True)
class RunJob:
    """A finished job of a run directory: its id, folder, sidecar record and checked run options."""

    id: str
    folder: Path
    record: dict[str, Any]
    options: dict[str, Any]

    @property
    def video(self) -> Path:
        return JobPaths(self.folder.parent, self.id).video


@dataclass(frozen=True)
class JobQuality:
    """One job's metrics (``None`` where there is none, the reason in ``notes``)."""

    id: str
    strategy: str
    prompt: str
    reference: str
    values: dict[str, float | None]
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StrategyQuality:
    """A strategy's means over its jobs, and how many jobs each mean has."""

    strategy: str
    jobs: int
    values: dict[str, float | None]
    counts: dict[str, int]


def find_run_jobs(run_dir: str | Path) -> tuple[list[RunJob], dict[str, str]]:
    """The finished jobs of ``run_dir`` (sorted by id) and the job folders left out, with why (failed, unfinished).

    Raises:
        FileNotFoundError, NotADirectoryError: no such directory.
        ValueError: no finished job, or sidecars that are not a run's (every problem on one line).
    """
    from fastvmt.transfer_run import replay_options

    root = Path(run_dir)
    if not root.exists():
        raise FileNotFoundError(f"run directory {str(root)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"{str(root)!r} is not a directory: give the folder fastvmt batch --out wrote")
    jobs, left_out, problems = [], {}, []
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        paths = JobPaths(root, folder.name)
        if not paths.finished():
            if paths.error.is_file():
                left_out[folder.name] = "failed (error.json)"
            elif paths.video.is_file() or paths.sidecar.is_file():
                left_out[folder.name] = "unfinished (output.mp4 or output.json missing)"
            continue
        try:
            options = replay_options(paths.sidecar)
            record = read_json(paths.sidecar, "job sidecar")
            if not isinstance(options.get("strategy"), Mapping):
                raise ValueError(f"{paths.sidecar}: no recorded strategy")
            if not Path(options["reference"]).exists():
                raise ValueError(f"{paths.sidecar}: its reference {options['reference']} is not there")
        except ValueError as error:
            problems.append(str(error))
            continue
        jobs.append(RunJob(folder.name, folder, record, options))
    if problems:
        raise ValueError(f"run directory {str(root)!r} has {len(problems)} job(s) that cannot be scored: "
                         f"{'; '.join(problems)}")
    if not jobs:
        raise ValueError(f"run directory {str(root)!r} holds no finished job (folders <id>/ with output.mp4 and "
                         "output.json, as fastvmt batch --out writes them)")
    return jobs, left_out


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def strategy_label(recorded: Mapping[str, Any]) -> str:
    """The recorded strategy's name, with the fields that differ from the registered preset of that name."""
    from fastvmt import plugins

    name = str(recorded["name"])
    try:
        preset = json.loads(json.dumps(plugins.get("strategy", name).to_dict()))  # lists as a sidecar has them
    except LookupError:
        return name
    preset_fields = _flatten({key: value for key, value in preset.items() if key != "name"})
    fields_now = _flatten({key: value for key, value in json.loads(json.dumps(recorded)).items() if key != "name"})
    differences = [f"{key.removesuffix('.options').replace('.options.', '.')}={json.dumps(value)}"
                   for key, value in fields_now.items() if preset_fields.get(key, object()) != value]
    return f"{name} ({', '.join(differences)})" if differences else name


def strategy_labels(jobs: Sequence[RunJob]) -> dict[str, str]:
    """Each job's :func:`strategy_label`; distinct strategies that would share a label (an unregistered name with
    several settings) are numbered ``name #1``, ``name #2``."""
    canonical = {job.id: json.dumps(job.options["strategy"], sort_keys=True) for job in jobs}
    label_of = {text: strategy_label(json.loads(text)) for text in dict.fromkeys(canonical.values())}
    texts_of: dict[str, list[str]] = {}
    for text, label in label_of.items():
        texts_of.setdefault(label, []).append(text)
    for label, texts in texts_of.items():
        if len(texts) > 1:
            label_of |= {text: f"{label} #{number}" for number, text in enumerate(texts, start=1)}
    return {job_id: label_of[text] for job_id, text in canonical.items()}


class QualityScorer:
    """Scores the jobs of a run: motion fidelity with ``tracker``, CLIP scores with ``clip`` (or none).

    Args:
        tracker: a :class:`~fastvmt.metrics.Tracker`, e.g. ``plugins.create("tracker", "lk")``.
        grid: query points a side for motion fidelity.
        incomplete: ``"drop"`` or ``"zero"``: tracklets lost before the last frame (see :mod:`fastvmt.metrics`).
        clip: a :class:`~fastvmt.metrics.ClipScorer`, or ``None`` (CLIP scores are then missing, and say why).
        vbench: a :class:`~fastvmt.metrics.vbench.VBenchScorer`, or ``None`` (VBench's dimensions are then missing,
            and say why).
    """

    def __init__(self, tracker: Any, *, grid: int = 55, incomplete: str = "drop", clip: Any = None,
                 vbench: Any = None):
        self.tracker, self.grid, self.incomplete, self.clip, self.vbench = tracker, grid, incomplete, clip, vbench
        self._last_reference: tuple[tuple[Any, ...], Any] | None = None

    def _reference(self, options: Mapping[str, Any]) -> Any:
        """The job's reference as its run read it; the last one is kept (jobs of one clip come one after another)."""
        from fastvmt.io import read_video

        key = tuple(options[name] for name in ("reference", "num_frames", "height", "width"))
        if self._last_reference is None or self._last_reference[0] != key:
            frames = read_video(options["reference"], num_frames=options["num_frames"], height=options["height"],
                                width=options["width"]).frames
            self._last_reference = (key, frames)
        return self._last_reference[1]

    def score(self, job: RunJob, label: str) -> JobQuality:
        """The job's metrics. Raises ``VideoError`` for a reference or output that cannot be read."""
        from fastvmt.io import read_video
        from fastvmt.metrics import evaluate_motion_fidelity

        generated = read_video(job.video, num_frames="all").frames
        reference = self._reference(job.options)
        values: dict[str, float | None] = {}
        notes: dict[str, str] = {}
        try:
            values["motion_fidelity"] = evaluate_motion_fidelity(reference, generated, tracker=self.tracker,
                                                                 grid=self.grid, incomplete=self.incomplete).score
        except ValueError as error:  # a video the tracker cannot follow
            values["motion_fidelity"], notes["motion_fidelity"] = None, str(error)
        if self.clip is not None:
            values["text_similarity"] = self.clip.text_similarity(generated, job.options["prompt"])
            values["temporal_consistency"] = self.clip.temporal_consistency(generated)
        else:
            for key in ("text_similarity", "temporal_consistency"):
                values[key], notes[key] = None, "no CLIP model given (--clip-model DIR: local weights)"
        vbench = self.vbench.score(generated) if self.vbench is not None else {}
        unscorable = self.vbench.unscorable(generated) if self.vbench is not None else {}
        for metric in VBENCH:
            values[metric.key] = vbench.get(metric.key)
            if metric.key not in vbench:
                notes[metric.key] = "no VBench model directory given (--vbench-dir DIR: local weights)" \
                    if self.vbench is None else unscorable.get(metric.key, "not among the VBench scorer's dimensions")
        for key, (value, note) in _recorded(job.record).items():
            values[key] = value
            if note is not None:
                notes[key] = note
        return JobQuality(job.id, label, job.options["prompt"], str(job.options["reference"]), values, notes)


def _recorded(record: Mapping[str, Any]) -> dict[str, tuple[float | None, str | None]]:
    """Time, peak memory and AMF end-point error from a sidecar, each with a note (why missing, what measured)."""
    seconds = record.get("seconds") or {}
    memory = record.get("peak_memory") or {}
    check = record.get("motion_check") or {}
    older = "not in the sidecar (written by a fastvmt without it)"
    return {
        "seconds": (sum(value for key, value in seconds.items() if key != "motion_check"), None) if seconds
        else (None, older),
        "peak_memory_gib": (memory["bytes"] / 2**30, None) if memory.get("bytes") is not None
        else (None, memory.get("measure", older)),
        "amf_epe": (float(check["amf_epe"]), None) if "amf_epe" in check else (None, older),
    }


def summarize(jobs: Sequence[JobQuality]) -> list[StrategyQuality]:
    """Per strategy (in order of first appearance): the mean of each metric over the jobs that have it."""
    groups: dict[str, list[JobQuality]] = {}
    for job in jobs:
        groups.setdefault(job.strategy, []).append(job)
    rows = []
    for strategy, members in groups.items():
        values: dict[str, float | None] = {}
        counts: dict[str, int] = {}
        for metric in METRICS:
            present = [job.values[metric.key] for job in members if job.values.get(metric.key) is not None]
            values[metric.key] = fmean(present) if present else None
            counts[metric.key] = len(present)
        rows.append(StrategyQuality(strategy, len(members), values, counts))
    return rows

