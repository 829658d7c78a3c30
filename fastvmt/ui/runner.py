"""One run of the page, from its form to a complete run folder, on the server's one model.

The run goes through :mod:`fastvmt.transfer_run`, the path of ``fastvmt transfer`` and ``fastvmt batch``, so its
sidecar is the same and replays with ``fastvmt transfer --config``. Order: the form's checks and the settings'
(``fastvmt transfer``'s), then a run folder with a copy of the reference (and of the image), the reference read, sampling with a
callback per step (progress, cancel), the pictures, and last the output and its sidecar. Anything that stops the
run (a bad input found late, a cancel, an error) removes its folder.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastvmt.interfaces import StepState
from fastvmt.outputs import write_png
from fastvmt.transfer_run import prepare_transfer
from fastvmt.ui.form import RunForm
from fastvmt.ui.model import ServedModel
from fastvmt.ui.runs import RunFiles, RunFolder, copy_file
from fastvmt.ui.steps import CancelSwitch, step_callback

__all__ = ["RunOutcome", "UIRunner"]


@dataclass(frozen=True)
class RunOutcome:
    """A complete run: its files and what reading the reference changed (crop, resize, trim)."""

    files: RunFiles
    notes: tuple[str, ...]


class UIRunner:
    """Runs the page's forms on ``model``, one at a time, into ``folder``; ``sample`` is a clip at the model's
    default size to try it with."""

    def __init__(self, model: ServedModel, folder: RunFolder):
        self.model, self.folder = model, folder
        self.switch = CancelSwitch()
        settings = model.settings
        self.sample = folder.sample(settings.num_frames, settings.height, settings.width)

    def run(self, form: RunForm, *, session: str, report: Callable[[StepState], None]) -> RunOutcome:
        """Run ``form`` for ``session``, calling ``report`` after each denoising step.

        Raises:
            ValueError, LookupError, FileNotFoundError, ...: a bad input (the messages of ``fastvmt transfer``).
            RunCancelled: :meth:`cancel` was called for ``session``; nothing was written.
        """
        form.check_inputs()
        settings = form.settings(self.model.settings)
        strategy = settings.job_strategy(form.job(form.reference))
        source = Path(form.reference)
        if not source.is_file():
            raise FileNotFoundError(f"reference video {source} does not exist")
        image = None if form.image is None else Path(form.image)
        if image is not None and not image.is_file():
            raise FileNotFoundError(f"image {image} does not exist")
        self.switch.start(session)
        run = self.folder.new_run(form.prompt)
        try:
            job = form.job(copy_file(source, run.source(source.suffix)),
                           None if image is None else copy_file(image, run.first_frame(image.suffix)))
            prepared = prepare_transfer(job, settings, run.output)
            pipeline = settings.pipeline(self.model.backbone, strategy)
            result = prepared.run(functools.partial(pipeline, callbacks=[step_callback(report, self.switch)]))
            self._write_pictures(run, pipeline, prepared, result)
            prepared.write(result)
        except BaseException:
            self.folder.discard(run)
            raise
        finally:
            self.switch.finish()
        return RunOutcome(run, prepared.reference.notes)

    def cancel(self, session: str) -> bool:
        """Stop ``session``'s run after its current denoising step; False when it has no run going."""
        return self.switch.cancel(session)

    @property
    def busy(self) -> bool:
        """Whether a run is going."""
        return self.switch.busy

    def stop(self) -> None:
        """Cancel whichever run is going and wait until it has stopped after its current denoising step (the
        server is stopping)."""
        self.switch.stop()

    @staticmethod
    def _write_pictures(run: RunFiles, pipeline, prepared, result) -> None:
        """The reference as the model saw it, the side-by-side video and the flow picture (read with the run's
        first-frame conditioning on an image-to-video model)."""
        from fastvmt.io import write_video
        from fastvmt.io.frames import frames_to_tensor
        from fastvmt.ui.pictures import flow_picture, side_by_side_video

        reference = prepared.reference
        write_video(run.reference, reference.frames, fps=reference.fps)
        write_video(run.side_by_side, side_by_side_video(reference.frames, result.frames), fps=reference.fps)
        geometry = pipeline.backbone.geometry(*reference.frames.shape[:3])
        image = None if prepared.image is None else prepared.image.frame
        first_frame, _ = pipeline.first_frame(image, frames_to_tensor(reference.frames), geometry)
        with pipeline.conditioned_on(first_frame, geometry):
            write_png(run.flow, flow_picture(pipeline, reference.frames, result.frames, result.latents))
