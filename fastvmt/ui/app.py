"""The page of ``fastvmt ui``: a gradio app over a :class:`~fastvmt.ui.runner.UIRunner`.

Left, the inputs: a reference video (uploaded or picked), prompts, a strategy and its main options, the size with
its rules, Run and Cancel. Right, the results of the last run or of one picked from the run folder: output,
reference, side by side, flow picture, counts and timings, downloads. Runs queue one at a time
(``concurrency_limit=1``); input errors are shown in the page as one line, never as a traceback.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import gradio as gr

from fastvmt.cli.errors import USER_ERRORS
from fastvmt.ui.form import GEOMETRY_RULES, RunForm, StrategyFields, geometry_note
from fastvmt.ui.runner import UIRunner
from fastvmt.ui.runs import RunFiles
from fastvmt.ui.steps import RunCancelled, step_line
from fastvmt.ui.summary import run_summary

__all__ = ["address_line", "build_app", "is_local", "launch"]

logger = logging.getLogger(__name__)


def is_local(host: str) -> bool:
    """Whether ``host`` is a loopback address, reachable from this computer only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_line(host: str, port: int) -> str:
    """Where the page listens, and who can open it."""
    shown = f"[{host}]" if ":" in host else host
    if is_local(host):
        return f"Listening on http://{shown}:{port}, for this computer only."
    return f"Listening on http://{shown}:{port}: anyone who can reach this address on your network can use it."


def _message(error: BaseException) -> str:
    """An error as the CLI words it: a ``LookupError``'s message without ``KeyError``'s quotes."""
    return str(error.args[0]) if isinstance(error, LookupError) and error.args else str(error)


class _Page:
    """The page's event handlers, on one runner."""

    #: The result panes, in the order the handlers fill them.
    RESULTS = ("output", "reference", "side_by_side", "flow", "summary", "downloads")

    def __init__(self, runner: UIRunner):
        self.runner = runner

    def strategy_fields(self, name: str) -> list[Any]:
        """The strategy options of preset ``name``: its values, and hidden where it has no such option (keeping
        their values, which a run then ignores)."""
        fields = StrategyFields.of_preset(name)
        rows, cols = fields.tile or (None, None)

        def shown(value: Any) -> Any:
            return gr.update(visible=False) if value is None else gr.update(value=value, visible=True)

        return [shown(fields.scheduler), shown(fields.guided_fraction), shown(fields.window), shown(rows), shown(cols),
                gr.update(value=fields.denoising_strength), gr.update(value=fields.cfg_scale)]

    def results(self, run: RunFiles) -> list[Any]:
        """The result panes filled from a complete run's files."""
        return [str(run.output), str(run.reference), str(run.side_by_side), str(run.flow),
                run_summary(run, run.record()), [str(run.output), str(run.sidecar)]]

    def listings(self, shown: RunFiles | None) -> list[Any]:
        """The run list (on the ``shown`` run) and the reference picker, with the runs now in the folder."""
        runs = self.runner.folder.runs()
        picks = [("sample: a panning scene with a moving ball", str(self.runner.sample))]
        picks += [(f"run {run.name}", str(source)) for run in runs for source in run.folder.glob("source.*")]
        return [gr.update(choices=[run.name for run in runs], value=shown.name if shown else None),
                gr.update(choices=picks)]

    def open_latest(self) -> list[Any]:
        """On page load: the newest run's results (if any) and the listings."""
        runs = self.runner.folder.runs()
        if not runs:
            return [*[gr.skip()] * len(self.RESULTS), *self.listings(None)]
        return [*self.results(runs[0]), *self.listings(runs[0])]

    @staticmethod
    def pick(path: str | None) -> Any:
        """The picked video (gradio checks that it is one of the choices) as the reference."""
        return path or gr.skip()

    def open_run(self, name: str | None) -> list[Any]:
        if not name:
            return ["", *[gr.skip()] * len(self.RESULTS)]
        try:
            return ["", *self.results(self.runner.folder.get(name))]
        except USER_ERRORS as error:
            return [f"**error:** {_message(error)}", *[gr.skip()] * len(self.RESULTS)]

    def run(self, reference, prompt, strategy, frames, height, width, steps, seed, negative, scheduler,
            guided_fraction, window, tile_rows, tile_cols, strength, cfg, more, image, request: gr.Request,
            progress=gr.Progress()) -> list[Any]:  # noqa: B008  (gradio reads the progress bar from the default)
        """Run the form; status line, result panes and listings (results unchanged unless it completed)."""
        form = RunForm(reference, prompt, strategy, frames, height, width, steps, seed, negative, scheduler,
                       guided_fraction, window, tile_rows, tile_cols, strength, cfg, more or "", image or None)
        unchanged = [gr.skip()] * (len(self.RESULTS) + 2)

        def report(state) -> None:
            progress((state.step + 1, state.num_steps), desc=step_line(state), unit="steps")

        progress(0, desc="reading the reference and encoding the prompts")
        try:
            outcome = self.runner.run(form, session=request.session_hash, report=report)
        except RunCancelled as cancelled:
            return [f"**cancelled** after step {cancelled.step} of {cancelled.num_steps}: nothing was written",
                    *unchanged]
        except USER_ERRORS as error:
            return [f"**error:** {_message(error)}", *unchanged]
        except Exception as error:  # a failure of the run itself: one line here, the traceback in the server's log
            logger.exception("run failed")
            return [f"**failed:** {type(error).__name__}: {error} (the server's log has the details)", *unchanged]
        notes = "".join(f"\n\nnote: {note}" for note in outcome.notes)
        return [f"**done:** {outcome.files.folder}{notes}", *self.results(outcome.files), *self.listings(outcome.files)]

    def cancel(self, request: gr.Request) -> str:
        if self.runner.cancel(request.session_hash):
            return "**cancelling** after the current denoising step..."
        return "no run of yours is going"


def _strategy_controls(defaults: StrategyFields) -> dict[str, Any]:
    """The strategy options, in :meth:`_Page.strategy_fields`' order."""
    from fastvmt import plugins

    controls = {
        "scheduler": gr.Dropdown(plugins.names("scheduler"), value=defaults.scheduler, label="Gradient scheduler",
                                 info="which inner iterations compute a gradient and which reuse the last one"),
        "guided_fraction": gr.Slider(0, 1, value=defaults.guided_fraction, step=0.05, label="Guided fraction",
                                     info="share of the denoising steps, from the first, that are guided"),
    }
    with gr.Row():
        controls["window"] = gr.Number(defaults.window, precision=0, label="Window (tokens, odd)",
                                       info="side of the window each tile's flow is searched in")
        controls["tile_rows"] = gr.Number(defaults.tile[0], precision=0, label="Tile rows (tokens)")
        controls["tile_cols"] = gr.Number(defaults.tile[1], precision=0, label="Tile columns (tokens)")
    with gr.Row():
        controls["denoising_strength"] = gr.Number(defaults.denoising_strength, label="Strength",
                                                   info="in (0, 1]: 1 starts from pure noise", minimum=0, maximum=1)
        controls["cfg_scale"] = gr.Number(defaults.cfg_scale, label="CFG scale",
                                          info="classifier-free guidance; 1 turns it off")
    return controls


def build_app(runner: UIRunner, *, host: str, port: int) -> gr.Blocks:
    """The page for ``runner``, saying that it listens on ``host:port``."""
    from fastvmt import plugins

    page = _Page(runner)
    settings = runner.model.settings
    defaults = StrategyFields.of_preset(settings.strategy)
    with gr.Blocks(title="fastvmt", analytics_enabled=False) as app:
        gr.Markdown(f"# fastvmt: motion transfer\nModel: {runner.model.description}. {address_line(host, port)} "
                    f"Runs are saved in `{runner.folder.root}`.")
        with gr.Row():
            with gr.Column(scale=1):
                reference = gr.Video(label="Reference video (its motion is transferred)", sources=["upload"])
                pick = gr.Dropdown([], label="...or pick a video", info="a sample clip, or an earlier run's reference")
                image = gr.Image(label="First frame to move (image-to-video model; empty: the reference's)",
                                 type="filepath", sources=["upload"], visible=runner.model.backbone.takes_image)
                prompt = gr.Textbox(label="Prompt", lines=2, placeholder="a red fox runs through fresh snow")
                negative = gr.Textbox(label="Negative prompt", lines=1, placeholder="empty: Wan's default")
                strategy = gr.Dropdown(plugins.names("strategy"), value=settings.strategy, label="Strategy")
                with gr.Row():
                    steps = gr.Number(settings.num_inference_steps, precision=0, label="Denoising steps", minimum=1)
                    seed = gr.Number(settings.seed, precision=0, label="Seed")
                with gr.Row():
                    frames = gr.Number(settings.num_frames, precision=0, label="Frames (4k+1)")
                    height = gr.Number(settings.height, precision=0, label="Height (multiple of 16)")
                    width = gr.Number(settings.width, precision=0, label="Width (multiple of 16)")
                geometry = gr.Markdown(geometry_note(settings.num_frames, settings.height, settings.width))
                gr.Markdown(GEOMETRY_RULES)
                with gr.Accordion("Strategy options", open=True):
                    options = _strategy_controls(defaults)
                    more = gr.Textbox(label="More overrides", lines=2, placeholder="loss.lambda_win=0.5",
                                      info="KEY=VALUE lines, as fastvmt transfer --set takes them; they win")
            with gr.Column(scale=1):
                with gr.Row():
                    run_button = gr.Button("Run", variant="primary")
                    cancel_button = gr.Button("Cancel", variant="stop")
                status = gr.Markdown("Cancel stops a run after its current denoising step; nothing is written then.")
                with gr.Row():
                    output = gr.Video(label="Output", interactive=False, buttons=["download"])
                    shown_reference = gr.Video(label="Reference as the model saw it", interactive=False)
                side_by_side = gr.Video(label="Side by side", interactive=False)
                flow = gr.Image(
                    label="Motion: the attention motion flow (AMF) of reference and output", interactive=False
                )
                summary = gr.Markdown("")
                downloads = gr.File(label="Downloads: the MP4 and its JSON sidecar", file_count="multiple",
                                    interactive=False)
                runs = gr.Dropdown([], label="Runs in the run folder", info="open an earlier run")

        results = [output, shown_reference, side_by_side, flow, summary, downloads]
        listings = [runs, pick]
        strategy_outputs = [options[name] for name in
                            ("scheduler", "guided_fraction", "window", "tile_rows", "tile_cols",
                             "denoising_strength", "cfg_scale")]
        form_inputs = [reference, prompt, strategy, frames, height, width, steps, seed, negative, *strategy_outputs,
                       more, image]

        strategy.change(page.strategy_fields, strategy, strategy_outputs, api_name="strategy_fields")
        for field in (frames, height, width):
            field.change(geometry_note, [frames, height, width], geometry, api_name=False)
        pick.input(page.pick, pick, reference, api_name="pick")
        runs.input(page.open_run, runs, [status, *results], api_name="open_run")
        app.load(page.open_latest, None, [*results, *listings], api_name=False)
        run_button.click(page.run, form_inputs, [status, *results, *listings], api_name="run",
                         concurrency_limit=1, concurrency_id="run")
        cancel_button.click(page.cancel, None, status, api_name="cancel", queue=False)
    return app


def launch(app: gr.Blocks, runner: UIRunner, *, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port``, with the run folder's files, and return once it listens
    (``app.block_thread()`` then serves until Ctrl-C)."""
    app.queue(default_concurrency_limit=1).launch(
        server_name=host, server_port=port, allowed_paths=[str(runner.folder.root)], prevent_thread_lock=True,
        share=False, inbrowser=False, quiet=True, ssr_mode=False, show_error=False, footer_links=[],
    )
