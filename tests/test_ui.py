"""``fastvmt ui``: the page's runs through gradio's client on the tiny Wan (complete, replayable, bad input shown,
cancelled cleanly), its form and run folder, and the page in headless Chromium."""

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

gradio = pytest.importorskip("gradio", reason="the web interface needs gradio: pip install -e '.[ui]'")

from gradio_client import Client, handle_file  # noqa: E402

from fastvmt.cli import app  # noqa: E402
from fastvmt.io import check_num_frames, read_video, write_video  # noqa: E402
from fastvmt.synthetic import moving_scene  # noqa: E402
from fastvmt.transfer_run import replay_options  # noqa: E402
from fastvmt.ui.app import build_app, is_local, launch  # noqa: E402
from fastvmt.ui.form import RunForm, StrategyFields, geometry_note  # noqa: E402
from fastvmt.ui.model import load_served_model  # noqa: E402
from fastvmt.ui.runner import UIRunner  # noqa: E402
from fastvmt.ui.runs import RunFolder  # noqa: E402
from fastvmt.ui.steps import RunCancelled  # noqa: E402
from tests.support.tiny_wan import tiny_wan_dir  # noqa: E402, F401  (fixture)
from tests.support.tiny_wan_i2v import tiny_i2v_dir  # noqa: E402, F401  (fixture)

#: Where the browser test saves its screenshot for the docs, when FASTVMT_UPDATE_SCREENSHOT=1.
DOCS_SCREENSHOT = Path(__file__).parents[1] / "docs" / "images" / "ui.png"
#: The page's main controls, by the text they show.
CONTROLS = ("Reference video", "Prompt", "Negative prompt", "Strategy", "Denoising steps", "Seed", "Frames (4k+1)",
            "Height (multiple of 16)", "Gradient scheduler", "Guided fraction", "Window", "Strength", "CFG scale",
            "Run", "Cancel", "Output", "Side by side", "for this computer only")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "ball.mp4"
    write_video(path, moving_scene(9, 48, 64)[0], fps=16)
    return path


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui") / "runs"
    return UIRunner(load_served_model(runs=root, backbone="tiny-wan"), RunFolder(root))


@pytest.fixture(scope="module")
def page(runner):
    """``(url, client)`` of the page served on a free local port."""
    port = _free_port()
    blocks = build_app(runner, host="127.0.0.1", port=port)
    launch(blocks, runner, host="127.0.0.1", port=port)
    url = f"http://127.0.0.1:{port}/"
    yield url, Client(url, verbose=False, analytics_enabled=False, download_files=False)
    blocks.close()


#: The strategy options, in the order of the page's /strategy_fields outputs.
OPTIONS = ("scheduler", "guided_fraction", "window", "tile_rows", "tile_cols", "strength", "cfg")


def _form(reference, **changes):
    """The page's run inputs, in the order of its /run endpoint: 9 frames at 48x64, 5 steps."""
    values = dict(reference=handle_file(str(reference)), prompt="a red ball rolls", strategy="fastvmt", frames=9,
                  height=48, width=64, steps=5, seed=3, negative="", scheduler="interval", guided_fraction=0.4,
                  window=3, tile_rows=3, tile_cols=4, strength=0.75, cfg=5.8, more="", image=None)
    values.update(changes)
    return list(values.values())


def _choose_strategy(client, name, form):
    """``form`` after choosing strategy ``name`` on the page: the options it fills in, the others kept."""
    updates = client.predict(name, api_name="/strategy_fields")
    values = dict(zip(OPTIONS, form[9:16]))
    values.update({option: update["value"] for option, update in zip(OPTIONS, updates) if "value" in update})
    return [*form[:2], name, *form[3:9], *values.values(), *form[16:]]


def _folders(runner):
    return sorted(p.name for p in runner.folder.root.iterdir() if not p.name.startswith("."))


def test_a_run_writes_its_files_and_a_sidecar_that_fastvmt_transfer_replays(page, runner, reference, tmp_path):
    _, client = page
    started = time.perf_counter()
    status, output, *_, summary, downloads, runs, _ = client.predict(*_form(reference), api_name="/run")
    seconds = time.perf_counter() - started
    assert status.startswith("**done:**"), status
    run = runner.folder.runs()[0]
    assert runs["value"] == run.name and run.name in status
    for path in (run.output, run.sidecar, run.reference, run.side_by_side, run.flow, run.source(".mp4")):
        assert path.stat().st_size > 0, path
    assert not list(run.folder.glob(".*")), "no partial file is left"
    assert read_video(run.output).frames.shape == (9, 48, 64, 3)
    assert {Path(item["path"]).name for item in downloads} == {"output.mp4", "output.json"}
    assert Path(output["path"]).name == "output.mp4"
    record = run.record()
    assert record["config"]["reference"] == str(run.source(".mp4"))
    assert record["config"]["strategy"]["extractor"]["options"]["window"] == 3
    assert record["config"]["strategy"]["scheduler"]["options"]["guided_fraction"] == 0.4
    assert f"gradients computed {record['counts']['gradients_computed']}" in summary
    print(f"a 9-frame 48x64 5-step run through the page took {seconds:.1f} s")

    status, opened, *_ = client.predict(run.name, api_name="/open_run")
    assert status == "" and Path(opened["path"]).name == "output.mp4"
    picked = client.predict(str(run.source(".mp4")), api_name="/pick")
    assert Path(picked["path"]).name == "source.mp4", "an earlier run's reference can be picked"

    again = tmp_path / "again.mp4"
    result = CliRunner().invoke(app, ["transfer", "--config", str(run.sidecar), "--out", str(again), "--no-progress"])
    assert result.exit_code == 0, result.output
    replayed = replay_options(again.with_suffix(".json"))
    assert replayed == replay_options(run.sidecar)
    assert np.array_equal(read_video(again).frames, read_video(run.output).frames), "the replay makes the same video"


def test_a_bad_input_shows_the_cli_message_and_writes_nothing(page, runner, reference):
    _, client = page
    before = _folders(runner)
    with pytest.raises(ValueError) as expected:
        check_num_frames(10)
    status, *_ = client.predict(*_form(reference, frames=10), api_name="/run")
    assert status == f"**error:** {expected.value}"
    status, *_ = client.predict(*_form(reference, more="extractor.window"), api_name="/run")
    assert status.startswith("**error:** more overrides takes KEY=VALUE"), status
    status, *_ = client.predict(*_form(reference, prompt="  "), api_name="/run")
    assert status == "**error:** the prompt is empty: describe the video to generate"
    assert _folders(runner) == before


def _step(job):
    """The job's progress once it is at a denoising step, else None."""
    progress = job.status().progress_data
    return progress[0] if progress and progress[0].length else None


def test_cancel_stops_the_run_after_a_step_and_leaves_nothing(page, runner, reference):
    _, client = page
    before = _folders(runner)
    assert client.predict(api_name="/cancel") == "no run of yours is going"
    job = client.submit(*_choose_strategy(client, "no_transfer", _form(reference, steps=400)), api_name="/run")
    deadline = time.monotonic() + 60
    while not (_step(job) or job.done()) and time.monotonic() < deadline:
        time.sleep(0.05)
    step = _step(job)
    assert step.length == 400 and "gradients 0 computed" in step.desc, step
    assert client.predict(api_name="/cancel").startswith("**cancelling**")
    status = job.result(timeout=60)[0]
    assert status.startswith("**cancelled** after step") and "nothing was written" in status, status
    assert _folders(runner) == before


def test_the_runner_cancels_between_steps(runner, reference):
    before = _folders(runner)
    seen = []

    def report(state):
        seen.append(state.step)
        runner.cancel("me")

    form = RunForm(reference, "a ball", "no_transfer", 9, 48, 64, 50, 0)
    with pytest.raises(RunCancelled) as cancelled:
        runner.run(form, session="me", report=report)
    assert seen == [0] and (cancelled.value.step, cancelled.value.num_steps) == (1, 50)
    assert _folders(runner) == before
    assert not runner.cancel("me"), "no run is going any more"


def test_stopping_the_server_cancels_the_run_going_and_waits_for_it(runner, reference):
    before = _folders(runner)
    stepped, outcome = threading.Event(), []

    def run():
        try:
            form = RunForm(reference, "a ball", "no_transfer", 9, 48, 64, 400, 0)
            runner.run(form, session="s", report=lambda _: stepped.set())
        except RunCancelled as cancelled:
            outcome.append(cancelled)

    thread = threading.Thread(target=run)
    thread.start()
    assert stepped.wait(60) and runner.busy
    runner.stop()
    assert not runner.busy and outcome and _folders(runner) == before
    thread.join(10)


def test_the_form_sends_only_the_options_a_strategy_has():
    fastvmt, ditflow, plain = (StrategyFields.of_preset(name) for name in ("fastvmt", "ditflow", "no_transfer"))
    assert (fastvmt.window, fastvmt.tile, fastvmt.scheduler) == (21, (3, 4), "interval")
    assert (ditflow.window, ditflow.tile, ditflow.denoising_strength) == (None, None, 1.0)
    assert (plain.scheduler, plain.guided_fraction) == (None, None)
    common = dict(reference="clip.mp4", prompt="p", num_frames=9, height=48, width=64, num_inference_steps=5, seed=0,
                  scheduler="every", guided_fraction=0.5, window=5, tile_rows=1, tile_cols=2)
    assert RunForm(strategy="ditflow", **common).overrides() == {"scheduler.guided_fraction": 0.5}
    assert RunForm(strategy="no_transfer", **common).overrides() == {}
    more = "loss.lambda_win=0\nextractor.window=7"
    assert RunForm(strategy="fastvmt", more_overrides=more, **common).overrides() == {
        "scheduler": "every", "scheduler.guided_fraction": 0.5, "extractor.window": 7, "extractor.tile": (1, 2),
        "loss.lambda_win": 0}


def test_the_size_note_gives_the_token_grid_or_the_nearest_valid_sizes():
    assert geometry_note(17, 96, 128) == "token grid 5 x 6 x 8 (latent frames x rows x columns)"
    assert "use 17 or 21 frames" in geometry_note(18, 96, 128)
    assert "height" in geometry_note(17, 100, 128) and "96" in geometry_note(17, 100, 128)


def test_the_page_listens_locally_by_default_and_the_command_checks_its_model_choice(tmp_path):
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and not is_local("0.0.0.0")
    result = CliRunner().invoke(app, ["ui", "--backbone", "huge-wan", "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "--backbone must be one of tiny-wan" in result.output
    result = CliRunner().invoke(app, ["ui", "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "give either --model-dir DIR" in result.output
    assert not (tmp_path / "runs").exists(), "nothing is written before the choice is checked"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium to load the page in (Debian: apt-get install chromium; .ci/run installs it where "
                "apt-get is available)")


def test_the_page_renders_its_controls_in_a_browser(page, tmp_path):
    url, _ = page
    browser = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--virtual-time-budget=20000", "--window-size=1400,1900"]
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    missing = [text for text in CONTROLS if text not in dom]
    assert not missing, f"the page does not show {missing}"
    screenshot = tmp_path / "ui.png"
    subprocess.run([*browser, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    image = np.asarray(Image.open(screenshot).convert("RGB"))
    assert image.shape[:2] == (1900, 1400) and image.std() > 20, "the screenshot shows a page"
    if os.environ.get("FASTVMT_UPDATE_SCREENSHOT") == "1":
        Image.fromarray(image).quantize(256).save(DOCS_SCREENSHOT, optimize=True)  # a third of the size


def test_an_image_to_video_model_moves_the_uploaded_image(tmp_path, reference, tiny_i2v_dir):
    root = tmp_path / "runs"
    runner = UIRunner(load_served_model(runs=root, model_dir=tiny_i2v_dir, dtype="float32"), RunFolder(root))
    assert runner.model.backbone.takes_image
    subject = tmp_path / "subject.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(subject)
    form = RunForm(reference, "a ball", "fastvmt", 9, 48, 64, 2, 0, image=subject, more_overrides="extractor.window=3")
    outcome = runner.run(form, session="s", report=lambda _: None)
    kept = outcome.files.first_frame(".png")
    sidecar = outcome.files.record()
    assert kept.read_bytes() == subject.read_bytes() and sidecar["config"]["image"] == str(kept.resolve())
    assert sidecar["notes"] == [] and sidecar["counts"]["guided_steps"] > 0
