"""The CoTracker adapter's loading contract: local checkpoint only, clear errors, the predictor's layouts.

No CoTracker weights can be had here, so a stand-in ``cotracker.predictor`` module checks what the adapter
passes to ``CoTrackerPredictor`` and how it reads the result; the real model is not exercised.
"""

import sys
import types

import numpy as np
import pytest
import torch

from fastvmt.metrics import motion_fidelity
from fastvmt.metrics.trackers.cotracker import CoTrackerTracker

VELOCITY = (1.5, -0.5)  # (x, y) pixels a frame, what the stand-in predictor reports for every point


class FakePredictor(torch.nn.Module):
    """Stands in for cotracker.predictor.CoTrackerPredictor: records its inputs, returns known tracks."""

    instances: list = []

    def __init__(self, checkpoint, **options):
        super().__init__()
        self.checkpoint, self.options, self.calls = checkpoint, options, []
        FakePredictor.instances.append(self)

    def forward(self, video, queries):
        self.calls.append((video, queries))
        b, t = video.shape[:2]
        steps = torch.arange(t, dtype=torch.float32)[:, None, None] * torch.tensor(VELOCITY)
        tracks = queries[:, None, :, 1:] + steps[None]  # (B, T, N, 2)
        visibility = torch.ones(b, t, queries.shape[1], dtype=torch.bool)
        visibility[:, -1, 0] = False
        return tracks, visibility


@pytest.fixture
def fake_cotracker(monkeypatch):
    package, module = types.ModuleType("cotracker"), types.ModuleType("cotracker.predictor")
    module.CoTrackerPredictor = FakePredictor
    package.predictor = module
    monkeypatch.setitem(sys.modules, "cotracker", package)
    monkeypatch.setitem(sys.modules, "cotracker.predictor", module)
    FakePredictor.instances.clear()
    return FakePredictor


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "scaled_offline.pth"
    path.write_bytes(b"not real weights")
    return path


def test_no_checkpoint_is_a_clear_error():
    with pytest.raises(ValueError, match="local checkpoint"):
        CoTrackerTracker()
    video = np.zeros((3, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="checkpoint"):
        motion_fidelity(video, video, tracker="cotracker")


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CoTrackerTracker(checkpoint=tmp_path / "absent.pth")


def test_missing_package_is_a_clear_error(monkeypatch, checkpoint):
    monkeypatch.setitem(sys.modules, "cotracker", None)  # makes `import cotracker` fail
    with pytest.raises(ImportError, match="cotracker package"):
        CoTrackerTracker(checkpoint=checkpoint)


def test_predictor_gets_the_checkpoint_video_and_queries(fake_cotracker, checkpoint):
    tracker = CoTrackerTracker(checkpoint=checkpoint, predictor_options={"window_len": 60})
    (predictor,) = fake_cotracker.instances
    assert predictor.checkpoint == str(checkpoint) and predictor.options == {"window_len": 60}

    video = np.random.default_rng(0).integers(0, 256, (4, 24, 40, 3), dtype=np.uint8)
    points = np.array([[3.0, 5.0], [20.5, 7.25]])
    tracks = tracker.track(video, points)

    (clip, queries), = predictor.calls
    assert clip.shape == (1, 4, 3, 24, 40) and clip.dtype == torch.float32
    torch.testing.assert_close(clip[0, 2, 1], torch.from_numpy(video[2, :, :, 1]).float())  # 0..255, channels
    torch.testing.assert_close(queries, torch.tensor([[[0.0, 3.0, 5.0], [0.0, 20.5, 7.25]]]))  # (t, x, y)
    expected = points[:, None, :] + np.arange(4)[None, :, None] * np.array(VELOCITY)
    np.testing.assert_allclose(tracks.positions, expected)
    assert tracks.valid.all()  # occluded positions are estimates too: they count unless use_visibility
    visible_only = CoTrackerTracker(checkpoint=checkpoint, use_visibility=True).track(video, points)
    assert visible_only.valid.shape == (2, 4) and not visible_only.valid[0, -1] and visible_only.valid[1].all()


def test_motion_fidelity_runs_through_the_registered_tracker(fake_cotracker, checkpoint):
    video = np.zeros((5, 32, 48, 3), np.uint8)
    options = {"checkpoint": checkpoint, "use_visibility": True}
    score = motion_fidelity(video, video, tracker="cotracker", grid=4, incomplete="zero", tracker_options=options)
    # Every point moves with the same velocity; point 0's last step is invisible in both videos.
    n, steps = 16, 4
    assert score == pytest.approx(((n - 1) * 1.0 + (steps - 1) / steps) / n)
    assert motion_fidelity(video, video, tracker="cotracker", grid=4, tracker_options=options) == pytest.approx(1.0)
