"""The run folder: one subfolder per run of the page, each file in it written atomically.

A run's folder is named by its start time and prompt and holds ``source.*`` (the reference as given, which the
sidecar names, so that ``fastvmt transfer --config`` replays the run), ``reference.mp4`` (the reference as the
model saw it), ``side-by-side.mp4``, ``flow.png``, then ``output.mp4`` and its sidecar ``output.json``, written
last: a folder with the sidecar is a complete run, and only complete runs are listed. A failed or cancelled
run's folder is removed.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvmt.json_input import read_json
from fastvmt.outputs import write_atomically
from fastvmt.transfer_run import sidecar_path

__all__ = ["RunFiles", "RunFolder", "copy_file"]

#: The longest part of a folder name taken from the prompt.
_SLUG_LENGTH = 40


@dataclass(frozen=True)
class RunFiles:
    """The files of one run, in ``folder``."""

    folder: Path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def output(self) -> Path:
        return self.folder / "output.mp4"

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.output)

    @property
    def reference(self) -> Path:
        return self.folder / "reference.mp4"

    @property
    def side_by_side(self) -> Path:
        return self.folder / "side-by-side.mp4"

    @property
    def flow(self) -> Path:
        return self.folder / "flow.png"

    def source(self, suffix: str) -> Path:
        """Where the reference as given is kept, with its own file suffix."""
        return self.folder / f"source{suffix.lower()}"

    def first_frame(self, suffix: str) -> Path:
        """Where the image as given (an image-to-video run's first frame) is kept, with its own file suffix."""
        return self.folder / f"first-frame{suffix.lower()}"

    @property
    def complete(self) -> bool:
        return self.sidecar.is_file()

    def record(self) -> dict[str, Any]:
        """The run's sidecar: its report and configuration."""
        return read_json(self.sidecar, "run sidecar")


class RunFolder:
    """The folder the page's runs go to (created if missing)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def new_run(self, prompt: str) -> RunFiles:
        """A new, empty run folder named ``YYYYMMDD-HHMMSS-<prompt's words>`` (``-2``, ... if taken)."""
        slug = "-".join(re.findall(r"[a-z0-9]+", prompt.lower()))[:_SLUG_LENGTH].strip("-") or "run"
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
        for attempt in range(1, 1000):
            folder = self.root / (stem if attempt == 1 else f"{stem}-{attempt}")
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            return RunFiles(folder)
        raise FileExistsError(f"{self.root / stem} and 998 numbered folders like it already exist")

    def runs(self) -> list[RunFiles]:
        """The complete runs, newest first."""
        folders = sorted((p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
        return [run for run in map(RunFiles, folders) if run.complete]

    def get(self, name: str) -> RunFiles:
        """The complete run called ``name``; ``LookupError`` otherwise."""
        run = RunFiles(self.root / name)
        if Path(name).name != name or name.startswith(".") or not run.complete:
            raise LookupError(f"no complete run called {name!r} in {self.root}")
        return run

    def sample(self, num_frames: int, height: int, width: int) -> Path:
        """A procedural clip to try the page with (a panning background, a moving ball), written once per size
        into ``.samples``."""
        from fastvmt.io import write_video
        from fastvmt.synthetic import moving_scene

        path = self.root / ".samples" / f"moving-scene-{num_frames}x{height}x{width}.mp4"
        if not path.is_file():
            path.parent.mkdir(exist_ok=True)
            write_video(path, moving_scene(num_frames, height, width)[0])
        return path

    @staticmethod
    def discard(run: RunFiles) -> None:
        """Remove a run that did not complete, and everything in it."""
        shutil.rmtree(run.folder, ignore_errors=True)


def copy_file(source: str | Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` atomically."""
    return write_atomically(target, lambda temporary: shutil.copyfile(source, temporary))
