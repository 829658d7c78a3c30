"""The batch manifest of the DiTFlow/FastVMT evaluation protocol: DAVIS clips, three prompts each, every strategy.

Inputs: a local DAVIS folder (``JPEGImages/480p/<clip>/00000.jpg ...``) and a captions file, a JSON object that
gives each clip of the evaluation set its three prompts::

    {"bear": ["a panda walks along rocks", "...", "..."], "blackswan": ["...", "...", "..."]}

Each (clip, prompt, strategy) becomes one line of a ``fastvmt batch`` manifest, ``{"reference": <clip folder>,
"prompt": ..., "strategy": ..., "id": "<clip>-<prompt number>-<strategy>"}``; the batch reads each clip's first
``--frames`` images. ``frames`` is what the protocol takes of each clip: 24 (DiTFlow's clip length; Wan runs
4k+1 frames, so the batch takes the first 21 of them) or a count 4k+1 that the batch runs as it is. Every clip
of the captions must be in the DAVIS folder with at least that many frames; all problems are reported at once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvmt.geometry import frame_count_at_most
from fastvmt.json_input import read_json

__all__ = ["DITFLOW_FRAMES", "FRAMES_FOLDER", "PROMPTS_PER_CLIP", "DavisManifest", "check_protocol_frames",
           "davis_manifest", "read_captions", "write_manifest"]

#: Prompts the protocol gives each clip.
PROMPTS_PER_CLIP = 3
#: DiTFlow's clip length, in frames.
DITFLOW_FRAMES = 24
#: Where DAVIS keeps a resolution's frames.
FRAMES_FOLDER = Path("JPEGImages")


@dataclass(frozen=True)
class DavisManifest:
    """The manifest's lines and what the batch needs to run them: ``run_frames``, the 4k+1 frames per clip."""

    lines: list[dict[str, Any]]
    clips: int
    run_frames: int
    frames: int


def check_protocol_frames(frames: int) -> int:
    """The frames the batch runs for ``frames`` of each clip: 24 -> 21, a count 4k+1 (>= 5) -> itself."""
    from fastvmt.io.checks import check_num_frames
    from fastvmt.values import check_int

    check_int("frames", frames, low=1)
    if frames == DITFLOW_FRAMES:
        return frame_count_at_most(frames)
    try:
        return check_num_frames(frames)
    except ValueError as error:
        raise ValueError(f"frames must be {DITFLOW_FRAMES} (DiTFlow's clips) or 4k+1 (Wan's): {error}") from None


def read_captions(path: str | Path) -> dict[str, list[str]]:
    """The captions file: ``{clip: [three prompts]}``; ``ValueError`` naming every bad entry."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"captions file {str(path)!r} does not exist")
    captions = read_json(path, "captions file")
    if not isinstance(captions, dict) or not captions:
        raise ValueError(f"captions file {str(path)!r} must be a JSON object {{\"clip\": [three prompts], ...}}")
    bad = [clip for clip, prompts in captions.items()
           if not (isinstance(prompts, list) and len(prompts) == PROMPTS_PER_CLIP
                   and all(isinstance(prompt, str) and prompt.strip() for prompt in prompts))]
    if bad:
        raise ValueError(f"captions file {str(path)!r}: {', '.join(map(repr, bad))} must each have a list of "
                         f"{PROMPTS_PER_CLIP} non-empty prompts")
    return captions


def _frame_count(folder: Path) -> int:
    return sum(1 for path in folder.iterdir() if path.suffix.lower() == ".jpg")


def davis_manifest(davis_dir: str | Path, captions_path: str | Path, *, frames: int, strategies: Sequence[str],
                   resolution: str = "480p") -> DavisManifest:
    """The protocol's manifest lines, clips in the captions' order, then prompts, then ``strategies``.

    Raises:
        FileNotFoundError: no DAVIS frames folder or captions file.
        ValueError: bad ``frames``, captions, strategies; clips missing from DAVIS or too short (all listed).
    """
    from fastvmt import plugins

    run_frames = check_protocol_frames(frames)
    if not strategies:
        raise ValueError("give at least one strategy")
    for name in strategies:
        plugins.get("strategy", name)  # LookupError listing the registered ones
    clips_dir = Path(davis_dir) / FRAMES_FOLDER / resolution
    if not clips_dir.is_dir():
        raise FileNotFoundError(f"{str(clips_dir)!r} does not exist: a DAVIS folder holds "
                                f"{FRAMES_FOLDER}/{resolution}/<clip>/*.jpg")
    captions = read_captions(captions_path)
    problems = []
    for clip in captions:
        folder = clips_dir / clip
        if not folder.is_dir():
            problems.append(f"{clip}: no folder {folder}")
        elif (count := _frame_count(folder)) < frames:
            problems.append(f"{clip}: {count} frames, fewer than {frames}")
    if problems:
        raise ValueError(f"{len(problems)} captioned clip(s) cannot be used: {'; '.join(problems)}")
    lines = [{"reference": str((clips_dir / clip).resolve()), "prompt": prompt, "strategy": strategy,
              "id": f"{clip}-{number}-{strategy}"}
             for clip, prompts in captions.items() for number, prompt in enumerate(prompts, start=1)
             for strategy in strategies]
    return DavisManifest(lines, len(captions), run_frames, frames)


def write_manifest(path: str | Path, manifest: DavisManifest, *, overwrite: bool = False) -> Path:
    """Write the manifest's lines as JSON Lines, atomically, after ``fastvmt batch``'s own reader has accepted them
    (ids, references): a manifest that is written is one the batch runs."""
    from fastvmt.batch.manifest import ManifestError, read_manifest
    from fastvmt.outputs import refuse_overwrite, write_atomically

    path = Path(path)
    refuse_overwrite([path], overwrite)

    def write(temporary: Path) -> None:
        temporary.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in manifest.lines),
                             encoding="utf-8")
        try:
            read_manifest(temporary)
        except ManifestError as error:
            raise ManifestError(str(error).replace(str(temporary), str(path))) from None

    return write_atomically(path, write, overwrite=overwrite)
