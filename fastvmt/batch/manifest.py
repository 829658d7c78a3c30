"""Batch manifests: one JSON object per line, each a (reference video, prompt) job, all checked up front.

A line looks like ``{"reference": "clips/dog.mp4", "prompt": "a fox runs", "seed": 3, "id": "fox"}``; besides
``reference`` and ``prompt`` it may set ``image`` (the first frame, for an image-to-video checkpoint),
``strategy`` (a preset name), ``overrides`` (strategy fields, as with ``--set``), ``seed`` and ``id``. Relative
reference and image paths are read from the manifest's folder. Without an
``id`` a job is named by a hash of its JSON object (keys sorted, so spacing and key order do not matter): the
same line gets the same id in every run, which is what lets a rerun find its finished jobs.

:func:`read_manifest` reports every bad line of the file in one :class:`ManifestError` (line numbers, what is
wrong, how to fix it) before any model loads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvmt.json_input import parse_json, read_json_text
from fastvmt.transfer_run import TransferJob

__all__ = ["FIELDS", "Job", "ManifestError", "RESERVED_IDS", "job_id", "read_manifest"]

#: The keys a manifest line may have, with what each must be.
FIELDS = {
    "reference": "path of the reference video (file or image folder)",
    "prompt": "text of the video to generate",
    "image": "path of the first frame to move (an image-to-video checkpoint only)",
    "strategy": "strategy preset name",
    "overrides": "object of strategy overrides, e.g. {\"extractor.window\": 11}",
    "seed": "integer seed, 0 to 2**64 - 1",
    "id": "job name: letters, digits, '.', '_', '-'",
}
#: Names a job id cannot take: files the batch writes beside the job folders.
RESERVED_IDS = frozenset({"summary.json"})
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class ManifestError(ValueError):
    """A manifest with bad lines; the message lists each one with its line number."""


@dataclass(frozen=True, kw_only=True)
class Job(TransferJob):
    """One (reference, prompt) run of a batch, named ``id``, from line ``line`` (1-based) of its manifest;
    ``reference`` is absolute."""

    id: str
    line: int


def job_id(entry: Mapping[str, Any]) -> str:
    """The default id of a manifest entry: 12 hex digits of the SHA-256 of its canonical JSON."""
    canonical = json.dumps(dict(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def _entry_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f"expected a JSON object, got {type(entry).__name__}"]
    problems = [f"unknown key {key!r} (keys: {', '.join(FIELDS)})" for key in entry if key not in FIELDS]
    for key in ("reference", "prompt"):
        if key not in entry:
            problems.append(f"missing {key!r} ({FIELDS[key]})")
        elif not isinstance(entry[key], str) or not entry[key].strip():
            problems.append(f"{key!r} must be a non-empty string ({FIELDS[key]})")
    if "image" in entry and not (isinstance(entry["image"], str) and entry["image"].strip()):
        problems.append(f"'image' must be a non-empty string ({FIELDS['image']})")
    if "strategy" in entry and not (isinstance(entry["strategy"], str) and entry["strategy"]):
        problems.append(f"'strategy' must be a {FIELDS['strategy']}")
    if "overrides" in entry and not isinstance(entry["overrides"], dict):
        problems.append(f"'overrides' must be an {FIELDS['overrides']}")
    if "seed" in entry:
        from fastvmt.generation.sampling import check_seed

        try:
            check_seed(entry["seed"])
        except ValueError as exc:
            problems.append(f"'seed': {exc}")
    name = entry.get("id")
    if "id" in entry and not (isinstance(name, str) and _ID_PATTERN.fullmatch(name) and name not in RESERVED_IDS):
        problems.append(
            f"'id' {name!r} is not a usable folder name ({FIELDS['id']}; starting with a letter or digit, "
            f"at most 128 characters, not {', '.join(sorted(RESERVED_IDS))})"
        )
    return problems


def _path_in(folder: Path, given: str) -> str:
    """``given`` as an absolute path, a relative one read from ``folder``."""
    path = Path(given).expanduser()
    return str(path if path.is_absolute() else (folder / path).resolve())


def _job(entry: dict[str, Any], line: int, folder: Path) -> Job:
    overrides = {key: tuple(v) if isinstance(v, list) else v for key, v in entry.get("overrides", {}).items()}
    return Job(
        id=entry.get("id") or job_id(entry),
        reference=_path_in(folder, entry["reference"]),
        prompt=entry["prompt"],
        image=_path_in(folder, entry["image"]) if "image" in entry else None,
        line=line,
        strategy=entry.get("strategy"),
        overrides=overrides,
        seed=entry.get("seed"),
    )


def read_manifest(path: str | Path, check: Callable[[Job], None] | None = None) -> list[Job]:
    """The jobs of a JSONL manifest, in file order (blank lines are skipped).

    Args:
        path: the manifest file.
        check: called on each well-formed job; a ``ValueError``/``LookupError``/``TypeError`` it raises is
            reported as a problem of that line (e.g. an unknown strategy).

    Raises:
        ManifestError: every problem of the file at once: unreadable JSON, missing or mistyped fields,
            duplicate ids, missing reference files, what ``check`` rejects; or a manifest without jobs.
        FileNotFoundError: no such manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {str(path)!r} does not exist (a .jsonl file, one job per line)")
    problems: list[str] = []
    jobs: list[Job] = []
    lines_of_id: dict[str, int] = {}
    for number, text in enumerate(read_json_text(path, "manifest").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            entry = parse_json(text, f"line {number}")
        except ValueError as exc:
            problems.append(str(exc))
            continue
        found = _entry_problems(entry)
        if found:
            problems.extend(f"line {number}: {problem}" for problem in found)
            continue
        job = _job(entry, number, path.parent)
        line_problems = []
        if job.id in lines_of_id:
            first = lines_of_id[job.id]
            line_problems.append(
                f"id {job.id!r} is also used on line {first}" if "id" in entry
                else f"repeats the job of line {first} (same JSON object); remove it or give each an 'id'"
            )
        lines_of_id.setdefault(job.id, number)
        if not Path(job.reference).exists():
            line_problems.append(f"reference {entry['reference']!r} not found (looked for {job.reference})")
        if job.image is not None and not Path(job.image).is_file():
            line_problems.append(f"image {entry['image']!r} not found (looked for {job.image})")
        if check is not None:
            try:
                check(job)
            except (ValueError, LookupError, TypeError) as exc:
                line_problems.append(str(exc.args[0] if isinstance(exc, LookupError) and exc.args else exc))
        problems.extend(f"line {number}: {problem}" for problem in line_problems)
        jobs.append(job)
    if problems:
        listing = "\n  ".join(problems)
        raise ManifestError(f"{len(problems)} problem(s) in manifest {str(path)!r}; nothing was run:\n  {listing}")
    if not jobs:
        raise ManifestError(f"manifest {str(path)!r} holds no jobs (one JSON object per line)")
    return jobs
