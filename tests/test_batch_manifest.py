"""Batch manifests: every bad line reported at once with its number, before any model loads; stable ids."""

import pytest
from typer.testing import CliRunner

from fastvmt.batch import BatchSettings, ManifestError, job_id, load_jobs, read_manifest
from fastvmt.cli import app
from tests.support.batch_inputs import model_dir, write_manifest  # noqa: F401  (fixture)


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"only its existence is checked up front")
    return path


BAD_LINES = {
    2: ({"reference": "clip.mp4"}, "missing 'prompt'"),
    3: ('{"reference": "clip.mp4", "prompt": "x"', "not valid JSON"),
    4: ({"reference": "clip.mp4", "prompt": "b", "id": "first"}, "id 'first' is also used on line 1"),
    5: ({"reference": "nowhere.mp4", "prompt": "c"}, "'nowhere.mp4' not found"),
    6: ({"reference": "clip.mp4", "prompt": "d", "promt": "typo"}, "unknown key 'promt'"),
    7: ({"reference": "clip.mp4", "prompt": "e", "strategy": "fast"},
        "unknown strategy 'fast'; available: ditflow, "),
    8: ({"reference": "clip.mp4", "prompt": "f", "seed": "7"}, "'seed': seed must be an integer"),
    9: ({"reference": "clip.mp4", "prompt": "g", "overrides": {"no_such_field": 1}}, "unknown strategy field"),
    10: ({"reference": "clip.mp4", "prompt": "h", "id": "../escape"}, "not a usable folder name"),
    12: ({"reference": "clip.mp4", "prompt": "same"}, "repeats the job of line 11"),
}


def bad_manifest(folder):
    lines = [{"reference": "clip.mp4", "prompt": "a", "id": "first"}]
    lines += [BAD_LINES[n][0] for n in range(2, 11)]
    lines += [{"reference": "clip.mp4", "prompt": "same"}, {"prompt": "same", "reference": "clip.mp4"}]
    return write_manifest(folder / "jobs.jsonl", lines)


def test_every_bad_line_is_reported_at_once(tmp_path, clip, model_dir):
    settings = BatchSettings(model_dir=str(model_dir))
    with pytest.raises(ManifestError) as caught:
        load_jobs(bad_manifest(tmp_path), settings)
    message = str(caught.value)
    for number, (_, problem) in BAD_LINES.items():
        reported = [line for line in message.splitlines() if line.strip().startswith(f"line {number}:")]
        assert reported and problem in " ".join(reported), (number, message)
    assert "line 1:" not in message and "line 11:" not in message


def test_cli_reports_the_manifest_before_loading_a_model_and_writes_nothing(tmp_path, clip, model_dir):
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["batch", str(bad_manifest(tmp_path)), "--out", str(out), "--model-dir",
                                      str(model_dir)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "error: 10 problem(s)" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--frames", "10"], "4k+1"),
        (["--width", "100"], "multiple of 16"),
        (["--dtype", "float64"], "dtype must be one of"),
        (["--workers", "2"], "--workers apply to --executor ray"),
        (["--executor", "dask"], "--executor must be one of local, ray"),
        (["--set", "extractor.window"], "--set takes KEY=VALUE"),
    ],
)
def test_bad_options_fail_before_any_work(tmp_path, clip, model_dir, options, message):
    manifest = write_manifest(tmp_path / "jobs.jsonl", [{"reference": "clip.mp4", "prompt": "a"}])
    out = tmp_path / "results"
    result = CliRunner().invoke(app, ["batch", str(manifest), "--out", str(out), "--model-dir", str(model_dir),
                                      *options])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_missing_model_dir_and_empty_manifest_are_errors(tmp_path, clip):
    manifest = write_manifest(tmp_path / "jobs.jsonl", ["", "  "])
    with pytest.raises(FileNotFoundError, match="no-model"):
        load_jobs(manifest, BatchSettings(model_dir=str(tmp_path / "no-model")))
    with pytest.raises(ManifestError, match="holds no jobs"):
        read_manifest(manifest)
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        read_manifest(tmp_path / "missing.jsonl")


def test_ids_are_stable_and_references_are_read_from_the_manifest_folder(tmp_path, clip, monkeypatch):
    entry = {"reference": "clip.mp4", "prompt": "a red car", "seed": 3}
    spaced = '{ "seed": 3,  "prompt": "a red car", "reference": "clip.mp4" }'
    manifest = write_manifest(tmp_path / "jobs.jsonl", [entry, {**entry, "prompt": "a blue car"},
                                                        {**entry, "id": "named"}])
    monkeypatch.chdir(tmp_path.parent)  # relative references must not depend on the working directory
    first, other, named = read_manifest(manifest)
    again = read_manifest(write_manifest(tmp_path / "again.jsonl", [spaced]))[0]
    assert first.id == again.id == job_id(entry) and first.id != other.id
    assert named.id == "named" and named.seed == 3 and (first.line, other.line, named.line) == (1, 2, 3)
    assert first.reference == str(clip.resolve()) and first.strategy is None
