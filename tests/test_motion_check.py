"""The motion check of every run: the output's AMF end-point error to the reference's and its LK motion fidelity,
in the report and at the end of ``fastvmt transfer``; the callback that records it per guided step."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from fastvmt.backbones.patch import PatchBackbone
from fastvmt.backbones.wan import WanBackbone
from fastvmt.cli import app
from fastvmt.generation.motion_check import MotionCheckCallback, MotionProbe
from fastvmt.generation.pipeline import MotionTransferPipeline
from fastvmt.io.frames import frames_to_tensor
from fastvmt.synthetic import moving_scene
from tests.support.batch_inputs import clips  # noqa: F401  (fixture)
from tests.support.tiny_wan import tiny_wan_dir  # noqa: F401  (fixture)

STEPS = 3
BLOCK = 14  # every preset's


@pytest.fixture(scope="module")
def wan(tiny_wan_dir):
    return WanBackbone.from_pretrained(tiny_wan_dir, device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def reference():
    return moving_scene(9, 48, 64, seed=1, pan=(0.0, 2.0))[0]


def latents_of(backbone, frames):
    return backbone.encode_video(frames_to_tensor(frames)).to(backbone.dtype)


@pytest.mark.parametrize("strategy", ["fastvmt", "no_transfer"])
def test_every_run_reports_its_motion_check_and_the_callback_records_it(wan, reference, strategy):
    pipe = MotionTransferPipeline(wan, strategy)
    guided, every = MotionCheckCallback(pipe, reference), MotionCheckCallback(pipe, reference, every_step=True)
    result = pipe(reference, "a red ball", num_inference_steps=STEPS, progress=False, callbacks=[guided, every])
    check = result.report.motion_check
    assert math.isfinite(check.amf_epe) and check.amf_epe > 0
    assert (check.block, check.blocks_forward) == (BLOCK, 2 * (BLOCK + 1))  # the reference's and the output's
    assert (check.motion_fidelity is None) != (check.motion_fidelity_error is None)
    assert "motion_check" in result.report.seconds
    recorded = json.loads(json.dumps(result.report.to_dict()))["motion_check"]
    assert recorded["amf_epe"] == check.amf_epe and recorded["block"] == BLOCK
    assert result.report.peak_memory["bytes"] > 0 and result.report.peak_memory["measure"]
    if strategy == "no_transfer":  # CFG: two full forwards a step, then the check's two early exits
        assert result.report.counts.blocks_forward == STEPS * 2 * wan.num_blocks + 2 * (BLOCK + 1)
    assert [record["step"] for record in guided.records] == ([0] if strategy == "fastvmt" else [])
    assert [record["step"] for record in every.records] == list(range(STEPS))
    assert all(math.isfinite(record["amf_epe"]) for record in every.records)
    assert every.records[-1]["amf_epe"] == pytest.approx(check.amf_epe, abs=1e-6)  # the last step is the output


def test_the_end_point_error_is_zero_for_the_reference_itself_and_not_for_other_motion(wan, reference):
    probe = MotionProbe(wan, latents_of(wan, reference), block=BLOCK)
    assert probe.end_point_error(latents_of(wan, reference)) == 0.0
    assert probe.end_point_error(latents_of(wan, reference[::-1].copy())) > 1e-3  # the motion played backwards


def test_the_check_tells_an_output_that_moves_like_the_reference_from_one_that_moves_backwards():
    reference = moving_scene(9, 64, 64, seed=1, pan=(0.0, 2.0))[0]
    backbone = PatchBackbone()  # zero velocity: the output is the start latent
    checks = {}
    for name, start in (("same", reference), ("backwards", reference[::-1].copy())):
        pipe = MotionTransferPipeline(backbone, "no_transfer")
        result = pipe(reference, "p", latents=latents_of(backbone, start), num_inference_steps=2, progress=False)
        checks[name] = result.report.motion_check
    assert checks["same"].amf_epe == 0.0 and checks["backwards"].amf_epe > 0.005
    assert checks["same"].motion_fidelity.score > 0.9 > 0 > checks["backwards"].motion_fidelity.score


def test_motion_fidelity_missing_is_stated_not_silent(wan, reference, monkeypatch):
    import fastvmt.metrics.trackers.lk as lk

    def no_opencv():
        raise ImportError("the 'lk' tracker needs OpenCV: pip install 'fastvmt[eval]' (opencv-python-headless)")

    monkeypatch.setattr(lk, "_cv2", no_opencv)
    result = MotionTransferPipeline(wan, "no_transfer")(reference, "p", num_inference_steps=1, progress=False)
    check = result.report.motion_check
    assert check.motion_fidelity is None and "needs OpenCV" in check.motion_fidelity_error
    assert math.isfinite(check.amf_epe)
    assert "no motion fidelity: the 'lk' tracker needs OpenCV" in check.summary()


def test_fastvmt_transfer_ends_with_the_motion_check(tmp_path, clips, tiny_wan_dir):
    result = CliRunner().invoke(app, ["transfer", str(clips / "pan_right.mp4"), "--prompt", "a ball", "--model-dir",
                                      str(tiny_wan_dir), "--out", str(tmp_path / "out.mp4"), "--no-progress",
                                      "--frames", "9", "--height", "48", "--width", "64", "--steps", "2",
                                      "--dtype", "float32", "--strategy", "no_transfer"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("motion check: AMF end-point error ") and "block 14" in last
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert f"{sidecar['motion_check']['amf_epe']:.4f}" in last
    assert torch.isfinite(torch.tensor(sidecar["motion_check"]["amf_epe"]))
