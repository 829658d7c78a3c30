"""``fastvmt bench quality`` on a tiny batch (one row per strategy, markdown/CSV/PNG), its errors on bad run
directories, and ``fastvmt bench manifest`` on a fake DAVIS folder."""

import csv
import json
import math
import shutil

import imageio.v3 as iio
import pytest
from PIL import Image
from typer.testing import CliRunner

from fastvmt.batch.manifest import read_manifest
from fastvmt.cli import app
from fastvmt.evaluation.quality import strategy_label
from fastvmt.evaluation.quality_chart import COLORS
from fastvmt.io import read_video
from fastvmt.strategies.presets import DITFLOW, FASTVMT, PRESETS
from fastvmt.strategies.spec import Component
from tests.support.batch_inputs import clips, write_manifest  # noqa: F401  (fixture)
from tests.support.tiny_clip import tiny_clip  # noqa: F401  (fixture)
from tests.support.tiny_vbench import tiny_vbench  # noqa: F401  (fixture)
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

JOBS = [
    {"reference": "pan_right.mp4", "prompt": "a red ball", "id": "ball", "strategy": "fastvmt"},
    {"reference": "pan_down.mp4", "prompt": "a blue cube", "id": "cube", "strategy": "fastvmt"},
    {"reference": "pan_right.mp4", "prompt": "a red ball", "id": "ball-baseline", "strategy": "no_transfer"},
]


def invoke(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


def one_error_line(result):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, clips, tiny_wan_dir):
    out = tmp_path_factory.mktemp("batch") / "results"
    manifest = write_manifest(clips / "quality.jsonl", JOBS)
    result = invoke("batch", manifest, "--out", out, "--model-dir", tiny_wan_dir, "--frames", "9", "--height", "48",
                    "--width", "64", "--steps", "2", "--dtype", "float32", "--cpus-per-job", "1")
    assert result.exit_code == 0, result.output
    return out


def test_quality_tables_have_one_row_per_strategy_with_every_metric(tmp_path, run_dir, tiny_clip):
    result = invoke("bench", "quality", run_dir, "--out", tmp_path, "--clip-model", tiny_clip, "--incomplete", "zero")
    assert result.exit_code == 0, result.output
    rows = {row["strategy"]: row for row in read_csv(tmp_path / "quality.csv")}
    assert list(rows) == ["fastvmt", "no_transfer"]  # first appearance, by job id: ball, ball-baseline
    assert (rows["fastvmt"]["jobs"], rows["no_transfer"]["jobs"]) == ("2", "1")
    for row in rows.values():
        for metric in ("text_similarity", "motion_fidelity", "temporal_consistency", "seconds", "peak_memory_gib",
                       "amf_epe"):
            assert math.isfinite(float(row[metric])) and row[f"{metric}_jobs"] == row["jobs"], (metric, row)
        assert -1 <= float(row["motion_fidelity"]) <= 1 and float(row["seconds"]) > 0 and float(row["amf_epe"]) > 0
    jobs = read_csv(tmp_path / "quality_jobs.csv")
    assert sorted(job["job"] for job in jobs) == ["ball", "ball-baseline", "cube"]
    ball = next(job for job in jobs if job["job"] == "ball")
    sidecar = json.loads((run_dir / "ball" / "output.json").read_text())
    assert float(ball["amf_epe"]) == pytest.approx(sidecar["motion_check"]["amf_epe"])
    assert float(ball["seconds"]) == pytest.approx(sum(v for k, v in sidecar["seconds"].items() if k != "motion_check"))

    report = (tmp_path / "quality.md").read_text(encoding="utf-8")
    table1 = "| strategy | jobs | text similarity ↑ | motion fidelity ↑ | temporal consistency ↑ | time (s) ↓"
    assert table1 in report
    assert report.count("\n| fastvmt | 2 |") == 1 and report.count("\n| no_transfer | 1 |") == 1
    assert "| fastvmt | 2 |" in result.output  # the table is printed too
    chart = iio.imread(tmp_path / "quality.png")
    assert chart.ndim == 3 and chart.shape[2] == 3 and chart.shape[1] > 600
    drawn = {tuple(color) for color in chart.reshape(-1, 3)[::7]}
    assert COLORS[0] in drawn and COLORS[1] in drawn and COLORS[2] not in drawn  # two strategies, two colours


def test_missing_scores_and_unscored_jobs_are_stated(tmp_path, run_dir):
    copy = shutil.copytree(run_dir, tmp_path / "results")
    (copy / "broken").mkdir()
    (copy / "broken" / "error.json").write_text("{}")
    (copy / "half").mkdir()
    shutil.copy(copy / "cube" / "output.mp4", copy / "half" / "output.mp4")
    result = invoke("bench", "quality", copy)
    assert result.exit_code == 0, result.output
    assert {path.name for path in copy.glob("quality*")} == {"quality.md", "quality.csv", "quality_jobs.csv",
                                                              "quality.png"}
    report = (copy / "quality.md").read_text(encoding="utf-8")
    assert "no CLIP model given" in report and "broken: failed (error.json)" in report and "half: unfinished" in report
    rows = read_csv(copy / "quality.csv")
    assert len(rows) == 2 and all(row["text_similarity"] == "" and row["text_similarity_jobs"] == "0" for row in rows)
    assert not list(copy.glob(".*fastvmt-tmp*"))


def test_vbench_dimensions_add_the_table2_columns(tmp_path, run_dir, tiny_vbench):
    result = invoke("bench", "quality", run_dir, "--out", tmp_path, "--vbench-dir", tiny_vbench, "--incomplete", "zero")
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "quality.csv")
    for row in rows:
        for metric in ("subject_consistency", "background_consistency"):
            assert 0 < float(row[metric]) <= 1 and row[f"{metric}_jobs"] == row["jobs"], (metric, row)
        assert math.isfinite(float(row["aesthetic_quality"])) and row["aesthetic_quality_jobs"] == row["jobs"]
    report = (tmp_path / "quality.md").read_text(encoding="utf-8")
    vbench = "| subject consistency ↑ | background consistency ↑ | aesthetic quality ↑ | motion smoothness ↑ |"
    assert vbench in report and "definitions of VBench 0.1.5" in report
    table2 = report.split("## The paper's Table 2")[1].strip().splitlines()[0]
    quality = "| strategy | jobs | text similarity ↑ | motion fidelity ↑ | temporal consistency ↑ "
    assert table2 == quality + vbench
    # the batch's 48x64 frames are too small for AMT-S: no motion smoothness, and the report says why
    assert all(row["motion_smoothness"] == "" and row["motion_smoothness_jobs"] == "0" for row in rows)
    assert "- motion smoothness (" in report and "113 pixels a side" in report
    without = invoke("bench", "quality", run_dir, "--out", tmp_path / "plain", "--incomplete", "zero")
    assert without.exit_code == 0, without.output
    assert "no VBench model directory given" in (tmp_path / "plain" / "quality.md").read_text(encoding="utf-8")
    (tmp_path / "empty").mkdir()
    line = one_error_line(invoke("bench", "quality", run_dir, "--out", tmp_path / "none", "--vbench-dir",
                                 tmp_path / "empty"))
    assert "lacks dino_model/dino-vitb16" in line and "sa_0_4_vit_l_14_linear.pth" in line
    assert not (tmp_path / "none").exists()


def test_bad_run_directories_get_one_clear_error(tmp_path, run_dir):
    assert "does not exist" in one_error_line(invoke("bench", "quality", tmp_path / "absent"))
    (tmp_path / "file.txt").write_text("x")
    assert "is not a directory" in one_error_line(invoke("bench", "quality", tmp_path / "file.txt"))
    (tmp_path / "empty").mkdir()
    assert "holds no finished job" in one_error_line(invoke("bench", "quality", tmp_path / "empty"))

    broken = shutil.copytree(run_dir / "ball", tmp_path / "broken" / "ball")
    (broken / "output.json").write_text("{not json")
    moved = shutil.copytree(run_dir / "cube", tmp_path / "broken" / "cube")
    sidecar = json.loads((moved / "output.json").read_text())
    sidecar["config"]["reference"] = str(tmp_path / "gone.mp4")
    (moved / "output.json").write_text(json.dumps(sidecar))
    line = one_error_line(invoke("bench", "quality", tmp_path / "broken"))
    assert "2 job(s) that cannot be scored" in line and "not a fastvmt run sidecar" in line and "gone.mp4" in line
    assert not list((tmp_path / "broken").glob("quality*"))


def test_strategies_are_named_with_what_differs_from_their_preset():
    assert strategy_label(json.loads(json.dumps(FASTVMT.to_dict()))) == "fastvmt"
    assert strategy_label(DITFLOW.override(inner_iterations=2).to_dict()) == "ditflow (inner_iterations=2)"
    window = FASTVMT.override(extractor=Component("windowed_amf", {**FASTVMT.extractor.options, "window": 11}))
    assert strategy_label(window.to_dict()) == "fastvmt (extractor.window=11)"


def fake_davis(root, frames):
    for clip, count in frames.items():
        folder = root / "JPEGImages" / "480p" / clip
        folder.mkdir(parents=True)
        for index in range(count):
            shade = (index * 9) % 256
            Image.new("RGB", (64, 48), (shade, 255 - shade, 90)).save(folder / f"{index:05d}.jpg")
    return root


def captions_file(path, clips):
    path.write_text(json.dumps({clip: [f"{clip} as a fox", f"{clip} as a car", f"{clip} in snow"] for clip in clips}))
    return path


def test_the_davis_manifest_runs_every_clip_prompt_and_strategy(tmp_path):
    davis = fake_davis(tmp_path / "DAVIS", {"bear": 25, "car-turn": 30, "short": 10})
    captions = captions_file(tmp_path / "captions.json", ["bear", "car-turn"])
    out = tmp_path / "protocol.jsonl"
    result = invoke("bench", "manifest", davis, captions, "--out", out, "--frames", "24", "--strategy", "fastvmt",
                    "--strategy", "no_transfer")
    assert result.exit_code == 0, result.output
    assert "--frames 21" in result.output and "first 21" in result.output
    jobs = read_manifest(out)
    assert len(jobs) == 2 * 3 * 2 and len({job.id for job in jobs}) == 12
    assert [jobs[0].id, jobs[1].id, jobs[-1].id] == ["bear-1-fastvmt", "bear-1-no_transfer", "car-turn-3-no_transfer"]
    assert {job.prompt for job in jobs if job.id.startswith("bear-")} == {"bear as a fox", "bear as a car",
                                                                          "bear in snow"}
    assert jobs[0].reference == str(davis / "JPEGImages" / "480p" / "bear")
    assert read_video(jobs[0].reference, num_frames=21).frames.shape == (21, 48, 64, 3)

    again = invoke("bench", "manifest", davis, captions, "--out", out, "--frames", "25")
    assert "already exist" in one_error_line(again)
    assert invoke("bench", "manifest", davis, captions, "--out", out, "--frames", "25", "--overwrite").exit_code == 0
    assert len(read_manifest(out)) == 2 * 3 * len(PRESETS)  # the built-in presets by default


def test_the_davis_manifest_refuses_what_the_protocol_cannot_run(tmp_path):
    davis = fake_davis(tmp_path / "DAVIS", {"bear": 25, "short": 10})
    out = tmp_path / "protocol.jsonl"
    line = one_error_line(invoke("bench", "manifest", davis, captions_file(tmp_path / "c.json", ["bear", "short",
                                 "absent"]), "--out", out, "--frames", "21"))
    assert "2 captioned clip(s)" in line and "short: 10 frames, fewer than 21" in line and "absent: no folder" in line
    assert "4k+1" in one_error_line(invoke("bench", "manifest", davis, tmp_path / "c.json", "--out", out,
                                           "--frames", "23"))
    (tmp_path / "two.json").write_text(json.dumps({"bear": ["one", "two"]}))
    assert "3 non-empty prompts" in one_error_line(invoke("bench", "manifest", davis, tmp_path / "two.json",
                                                          "--out", out, "--frames", "21"))
    assert "JPEGImages/480p/<clip>" in one_error_line(invoke("bench", "manifest", tmp_path, tmp_path / "c.json",
                                                             "--out", out, "--frames", "21"))
    assert "--frames" in one_error_line(invoke("bench", "manifest", davis, tmp_path / "c.json", "--out", out))
    assert not list(tmp_path.glob("*.jsonl")) and not list(tmp_path.glob(".*"))
