"""Inputs shared by the batch tests: a tiny Wan checkpoint, a few clips (one unreadable), a manifest writer."""

import json

import pytest

from fastvmt.io import write_video
from fastvmt.synthetic import moving_scene


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from fastvmt.backbones.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-wan"), seed=0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    for name, seed, pan in (("pan_right", 1, (0.0, 2.0)), ("pan_down", 2, (1.5, 0.0))):
        frames, _ = moving_scene(9, 48, 64, seed=seed, pan=pan, object_velocity=(0.5, 1.0))
        write_video(folder / f"{name}.mp4", frames, fps=16)
    (folder / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    return folder


def write_manifest(path, lines):
    """One line per item: a dict as JSON, a string as it is (broken JSON, blank lines)."""
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path
