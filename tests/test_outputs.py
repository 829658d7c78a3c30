"""Nothing a user gave is written over, and every output is atomic: outputs that are inputs are refused by every
command that writes, temporaries never collide and never outlive their run, groups of files are whole or absent."""

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastvmt.cli import app
from fastvmt.generation.pipeline import MotionTransferPipeline, TransferResult
from fastvmt.generation.report import RunReport
from fastvmt.io import read_video, write_video
from fastvmt.outputs import (
    TEMPORARY_MARK,
    OutputIsInputError,
    atomic_outputs,
    clean_stale_temporaries,
    refuse_inputs,
    write_json,
)
from fastvmt.synthetic import moving_scene
from tests.support.batch_inputs import clips, model_dir, write_manifest  # noqa: F401  (fixtures)

SIZE = ["--frames", "9", "--height", "48", "--width", "64"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result, *needles):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert all(needle in errors[0] for needle in needles), errors[0]


def snapshot(folder):
    """Every file under ``folder`` with its bytes."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- outputs that are inputs, in every command that writes (eval and bench cost write nothing) ----------------

def _transfer_onto_the_reference(tmp, clip, model):
    return ["transfer", clip, "--prompt", "x", "--model-dir", model, "--out", clip, "--overwrite", *SIZE]


def _transfer_onto_the_reference_by_a_relative_path(tmp, clip, model):
    os.chdir(tmp / "sub")
    return ["transfer", clip, "--prompt", "x", "--model-dir", model, "--out", "../clip.mp4", "--overwrite", *SIZE]


def _transfer_onto_the_reference_through_a_symlink(tmp, clip, model):
    (tmp / "link.mp4").symlink_to(clip)
    return ["transfer", clip, "--prompt", "x", "--model-dir", model, "--out", tmp / "link.mp4", "--overwrite", *SIZE]


def _transfer_whose_sidecar_is_the_replayed_config(tmp, clip, model):
    return ["transfer", "--config", tmp / "run.json", "--out", tmp / "run.mp4", "--overwrite"]


def _transfer_into_an_image_folder_reference(tmp, clip, model):
    return ["transfer", tmp / "frames", "--prompt", "x", "--model-dir", model, "--out", tmp / "frames" / "o.mp4",
            *SIZE]


def _batch_onto_a_reference(tmp, clip, model):
    manifest = write_manifest(tmp / "jobs.jsonl", [{"reference": str(tmp / "out" / "fox" / "output.mp4"),
                                                    "prompt": "x", "id": "fox"}])
    (tmp / "out" / "fox").mkdir(parents=True)
    write_video(tmp / "out" / "fox" / "output.mp4", moving_scene(9, 48, 64, seed=2)[0])
    return ["batch", manifest, "--out", tmp / "out", "--model-dir", model, *SIZE]


def _batch_whose_summary_is_the_manifest(tmp, clip, model):
    (tmp / "out").mkdir()
    manifest = write_manifest(tmp / "out" / "summary.json", [{"reference": str(clip), "prompt": "x"}])
    return ["batch", manifest, "--out", tmp / "out", "--model-dir", model, *SIZE]


def _flow_onto_its_reference(tmp, clip, model):
    os.replace(clip, tmp / "colors.mp4")
    return ["flow", tmp / "colors.mp4", "--out", tmp, "--overwrite", "--height", "48", "--width", "64"]


def _flow_into_an_image_folder_reference(tmp, clip, model):
    return ["flow", tmp / "frames", "--out", tmp / "frames", "--height", "48", "--width", "64"]


@pytest.mark.parametrize("case", [
    _transfer_onto_the_reference, _transfer_onto_the_reference_by_a_relative_path,
    _transfer_onto_the_reference_through_a_symlink, _transfer_whose_sidecar_is_the_replayed_config,
    _transfer_into_an_image_folder_reference, _batch_onto_a_reference, _batch_whose_summary_is_the_manifest,
    _flow_onto_its_reference, _flow_into_an_image_folder_reference,
], ids=lambda case: case.__name__.strip("_"))
def test_an_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path, monkeypatch, model_dir, case):
    monkeypatch.chdir(tmp_path)
    model = model_dir  # refused before the model loads
    for folder in (tmp_path / "sub", tmp_path / "frames"):
        folder.mkdir()
    frames = moving_scene(9, 48, 64, seed=1)[0]
    clip = write_video(tmp_path / "clip.mp4", frames)
    for index, frame in enumerate(frames):
        (tmp_path / "frames" / f"{index:02d}.png").write_bytes(_png(frame))
    (tmp_path / "run.json").write_text(json.dumps({"seed": 1, "config": {
        "reference": str(clip), "prompt": "x", "model_dir": str(model), "num_frames": 9, "height": 48, "width": 64}}))
    args = case(tmp_path, clip, model)
    before = snapshot(tmp_path)
    result = invoke(*args)
    one_error_line(result, "never writes")
    assert snapshot(tmp_path) == before


def _png(frame):
    import io

    import imageio.v3 as iio

    buffer = io.BytesIO()
    iio.imwrite(buffer, frame, extension=".png")
    return buffer.getvalue()


def test_refuse_inputs_names_the_input_and_passes_distinct_paths(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"a")
    (tmp_path / "hard.mp4").hardlink_to(tmp_path / "a.mp4")
    refuse_inputs([tmp_path / "b.mp4", tmp_path / "sub" / "a.mp4"], [("reference", tmp_path / "a.mp4"), ("x", None)])
    for output in (tmp_path / "a.mp4", tmp_path / "." / "a.mp4", tmp_path / "hard.mp4"):
        with pytest.raises(OutputIsInputError, match=r"is the reference .*a\.mp4"):
            refuse_inputs([output], [("reference", tmp_path / "a.mp4")])


# ---- atomic writes: unique temporaries, groups whole or absent ----------------------------------------------

def test_two_writers_of_one_path_never_share_a_temporary(tmp_path):
    target = tmp_path / "output.json"
    with atomic_outputs([target]) as (first,):
        with atomic_outputs([target]) as (second,):  # another batch writing the same job at the same time
            assert first != second and first.exists() and second.exists()
            second.write_text('"second"')
        first.write_text('"first"')
    assert json.loads(target.read_text()) == "first" and os.listdir(tmp_path) == ["output.json"]


def test_threads_writing_one_json_file_all_succeed_and_leave_one_whole_file(tmp_path):
    target, errors = tmp_path / "summary.json", []

    def write(n):
        try:
            for _ in range(20):
                write_json(target, {"writer": n, "padding": "x" * 10_000})
        except Exception as error:  # noqa: BLE001  (collected and asserted below)
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and os.listdir(tmp_path) == ["summary.json"]
    assert json.loads(target.read_text())["writer"] in range(4)


@pytest.mark.parametrize("interrupted_at", [1, 2, 3])
@pytest.mark.parametrize("existing", [False, True])
def test_an_interrupted_group_leaves_all_its_files_or_none(tmp_path, monkeypatch, interrupted_at, existing):
    targets = [tmp_path / name for name in ("colors.mp4", "arrows.mp4", "panel.png")]
    if existing:
        for target in targets:
            target.write_text("old")
    real_replace, calls = os.replace, []

    def replace(source, target):
        calls.append(target)
        if len(calls) == interrupted_at:
            raise KeyboardInterrupt
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        with atomic_outputs(targets) as temporaries:
            for temporary in temporaries:
                temporary.write_text("new")
    monkeypatch.undo()
    left = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert "new" not in left.values() and not any(TEMPORARY_MARK in name for name in left), left
    # An old group's later files are removed before the first rename: never an old last file beside a new first.
    assert left == ({"colors.mp4": "old"} if existing and interrupted_at == 1 else {})


def test_existing_target_is_not_replaced_without_overwrite(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(FileExistsError, match="appeared while writing"):
        with atomic_outputs([target], overwrite=False) as (temporary,):
            temporary.write_text("new")
            target.write_text("someone else's")
    assert os.listdir(tmp_path) == ["out.json"] and target.read_text() == "someone else's"


def test_an_interrupted_summary_write_keeps_the_old_summary(tmp_path, monkeypatch):
    from fastvmt.batch import BatchSummary, JobOutcome

    path = tmp_path / "summary.json"
    BatchSummary((JobOutcome("a", "done"),), 1.0, "local").write(path)
    before = path.read_bytes()
    def interrupted(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        BatchSummary((JobOutcome("a", "failed"),), 2.0, "local").write(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["summary.json"]


# ---- stale temporaries -------------------------------------------------------------------------------------

def _killed_writer_leftover(folder):
    """What a process killed while writing ``folder/output.mp4`` leaves: its temporary, made by fastvmt itself."""
    code = ("import os, sys; from fastvmt.outputs import atomic_outputs; "
            "writing = atomic_outputs([sys.argv[1]]); writing.__enter__(); os._exit(9)")
    subprocess.run([sys.executable, "-c", code, str(folder / "output.mp4")], check=False)
    (leftover,) = [p for p in folder.iterdir() if TEMPORARY_MARK in p.name]
    return leftover


def test_a_run_removes_stale_temporaries_of_its_own_pattern_and_keeps_everything_else(tmp_path):
    leftover = _killed_writer_leftover(tmp_path)
    an_hour_ago = time.time() - 3600
    os.utime(leftover, (an_hour_ago, an_hour_ago))
    legacy = tmp_path / ".output.0a1b2c3d.tmp.mp4"  # what write_video left before
    fresh = tmp_path / f".output.mp4.0123456789ab{TEMPORARY_MARK}.mp4"  # another process writing right now
    users = [tmp_path / name for name in (".output.mp4.tmp", f"notes{TEMPORARY_MARK}.txt", ".output.tmp.mp4",
                                          f".output.mp4.not-hex-at-all{TEMPORARY_MARK}.mp4", "output.json.partial")]
    nested = tmp_path / "sub" / leftover.name
    nested.parent.mkdir()
    for path in (legacy, fresh, nested, *users):
        path.write_bytes(b"data")
    for path in (legacy, nested, *users):
        os.utime(path, (an_hour_ago, an_hour_ago))

    write_json(tmp_path / "output.json", {"done": True})  # the first write into the folder cleans it

    assert not leftover.exists() and not legacy.exists()
    assert fresh.exists() and nested.exists() and all(path.exists() for path in users)
    assert clean_stale_temporaries(tmp_path) == []


# ---- concurrent batches on one output folder ---------------------------------------------------------------

@pytest.mark.slow
def test_two_batches_on_one_output_folder_both_complete(tmp_path, clips, model_dir, monkeypatch):
    from fastvmt.batch import BatchSettings, LocalExecutor, load_jobs, run_batch

    both_writing = threading.Barrier(2, timeout=60)

    def copy_the_reference(self, video, prompt, **options):  # both batches reach each job's write together
        both_writing.wait()
        return TransferResult(frames=np.asarray(video), latents=torch.zeros(1),
                              report=RunReport(config={"prompt": prompt}, seed=options["seed"]))

    monkeypatch.setattr(MotionTransferPipeline, "__call__", copy_the_reference)
    loading, real_load = threading.Lock(), BatchSettings.load_backbone
    monkeypatch.setattr(BatchSettings, "load_backbone", lambda self: _locked(loading, real_load, self))
    manifest = write_manifest(clips / "twice.jsonl", [{"reference": "pan_right.mp4", "prompt": "a", "id": "a"},
                                                      {"reference": "pan_down.mp4", "prompt": "b", "id": "b"}])
    settings = BatchSettings(model_dir=model_dir, num_frames=9, height=48, width=64, num_inference_steps=1,
                             dtype="float32")
    jobs, out, summaries = load_jobs(manifest, settings), tmp_path / "results", []
    threads = [threading.Thread(target=lambda: summaries.append(run_batch(jobs, settings, out, LocalExecutor())))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(summaries) == 2 and all(s.counts["failed"] == 0 for s in summaries), [s.table() for s in summaries]
    for job in ("a", "b"):
        assert sorted(os.listdir(out / job)) == ["output.json", "output.mp4"]
        assert json.loads((out / job / "output.json").read_text())["job"]["id"] == job
        assert read_video(out / job / "output.mp4").frames.shape == (9, 48, 64, 3)
    assert sorted(os.listdir(out)) == ["a", "b", "summary.json"]


def _locked(lock, load, settings):
    """diffsynth's model construction is not thread-safe: the two batches load one after the other."""
    with lock:
        return load(settings)
