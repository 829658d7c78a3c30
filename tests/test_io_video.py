"""read_video / write_video: round trips, crop + resize, 4k+1 frame policies, clear errors, safe writes."""

import os
import stat

import numpy as np
import pytest
from PIL import Image

from fastvmt.io import Video, VideoError, read_video, write_video
from fastvmt.synthetic import moving_scene


def _level_clip(num_frames, height=32, width=48):
    """Flat grey frames whose level encodes the frame index (10 * t), robust to compression."""
    levels = (10 * np.arange(num_frames)).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def _indices(video):
    return np.round(video.frames.astype(float).mean(axis=(1, 2, 3)) / 10).astype(int).tolist()


@pytest.fixture(scope="module")
def level_video(tmp_path_factory):
    """A 23-frame MP4 at 12 fps whose frame t is grey level 10 t."""
    return write_video(tmp_path_factory.mktemp("levels") / "levels.mp4", _level_clip(23), fps=12)


def test_round_trip_keeps_count_size_fps_and_content(tmp_path):
    frames, _ = moving_scene(21, 80, 112, seed=3)
    path = write_video(tmp_path / "clip.mp4", frames, fps=12)
    assert path == tmp_path / "clip.mp4"
    video = read_video(path)
    assert isinstance(video, Video)
    assert video.frames.shape == frames.shape and video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(12.0)
    assert video.notes == ()
    error = np.abs(video.frames.astype(float) - frames)
    assert error.mean() < 5  # H.264 crf 18 with 4:2:0 chroma on a colourful texture
    assert np.percentile(error, 99) < 25


def test_fractional_fps_survives_the_round_trip(tmp_path):
    path = write_video(tmp_path / "ntsc.mp4", _level_clip(5), fps=30000 / 1001)
    assert read_video(path).fps == pytest.approx(30000 / 1001, rel=1e-4)


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = _level_clip(5, height=33, width=47)
    video = read_video(write_video(tmp_path / "odd.mp4", frames))
    assert video.frames.shape == (5, 34, 48, 3)
    assert np.abs(video.frames[:, :33, :47].astype(int) - frames).max() <= 3


def _write_sequence(folder, frames):
    folder.mkdir()
    for t, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"frame_{t}.png")  # natural order: frame_10 after frame_9
    return folder


def test_centre_crop_then_resize_to_target(tmp_path):
    # 64 x 128 (H x W): a gradient in the centred 64 x 64 window, blue bars outside it.
    rows, cols = np.mgrid[0:64, 0:64].astype(float)
    window = np.stack([2 * rows, 2 * cols, 255 - 2 * rows], axis=-1).round().astype(np.uint8)
    frame = np.zeros((64, 128, 3), np.uint8)
    frame[..., 2] = 255
    frame[:, 32:96] = window
    folder = _write_sequence(tmp_path / "wide", [frame] * 5)

    video = read_video(folder, height=32, width=32)
    assert video.frames.shape == (5, 32, 32, 3)
    expected = window.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))  # the window, 2 x 2 block means
    assert np.abs(video.frames.astype(float) - expected).max() <= 2  # no blue leaks in at the edges
    assert any("centre-cropped 128x64 to 64x64" in note for note in video.notes)
    assert any("resized 64x64 to 32x32" in note for note in video.notes)


def test_tall_source_is_cropped_vertically_and_one_size_follows_the_aspect(tmp_path):
    frame = np.zeros((96, 48, 3), np.uint8)
    frame[24:72] = 200  # the centred 48 x 48 square is bright, top and bottom quarters black
    folder = _write_sequence(tmp_path / "tall", [frame] * 5)
    square = read_video(folder, height=16, width=16)
    assert square.frames.shape[1:] == (16, 16, 3) and square.frames.min() >= 195
    derived = read_video(folder, width=32)  # keeps 2:1, height rounds to a multiple of 16
    assert derived.frames.shape[1:] == (64, 32, 3)
    assert any("height 64 derived" in note for note in derived.notes)


def test_image_sequence_reads_in_natural_order_with_default_fps(tmp_path):
    folder = _write_sequence(tmp_path / "seq", list(_level_clip(12)))
    video = read_video(folder)
    assert _indices(video) == list(range(9))
    assert video.fps == 16.0
    assert any("no frame rate" in note for note in video.notes)


def test_gif_is_read_with_its_frame_rate(tmp_path):
    images = [Image.fromarray(frame) for frame in _level_clip(9)]
    images[0].save(tmp_path / "clip.gif", save_all=True, append_images=images[1:], duration=100, loop=0)
    video = read_video(tmp_path / "clip.gif")
    assert _indices(video) == list(range(9))
    assert video.fps == pytest.approx(10.0)


def test_default_trims_to_the_largest_4k_plus_1(level_video):
    video = read_video(level_video)
    assert _indices(video) == list(range(21))
    assert video.fps == pytest.approx(12.0)
    assert video.notes == ("trimmed from 23 to 21 frames (kept the first 21)",)


def test_trim_to_num_frames_keeps_the_first_frames(level_video):
    video = read_video(level_video, num_frames=9)
    assert _indices(video) == list(range(9))
    assert video.fps == pytest.approx(12.0)


def test_all_keeps_every_frame_unfitted(level_video, tmp_path):
    video = read_video(level_video, num_frames="all")
    assert _indices(video) == list(range(23)) and video.fps == pytest.approx(12.0) and video.notes == ()
    short = read_video(write_video(tmp_path / "short.mp4", _level_clip(3)), num_frames="all")
    assert _indices(short) == [0, 1, 2]  # below the 5 frames a fitted clip needs


def test_resample_picks_evenly_spaced_frames_and_keeps_the_duration(level_video):
    video = read_video(level_video, num_frames=9, frame_policy="resample")
    picked = _indices(video)
    assert len(picked) == 9 and picked[0] == 0 and picked[-1] == 22
    assert all(abs(b - a - 22 / 8) <= 1 for a, b in zip(picked, picked[1:]))
    assert video.fps == pytest.approx(12.0 * 9 / 23)
    assert any("resampled from 23 to 9" in note for note in video.notes)


def test_resample_repeats_frames_when_the_clip_is_short(level_video):
    video = read_video(level_video, num_frames=41, frame_policy="resample")
    picked = _indices(video)
    assert len(picked) == 41 and sorted(picked) == picked and set(picked) == set(range(23))
    assert video.fps == pytest.approx(12.0 * 41 / 23)
    assert any("repeating" in note for note in video.notes)


def _single_line_video_error(excinfo):
    assert isinstance(excinfo.value, ValueError) and "\n" not in str(excinfo.value)
    return str(excinfo.value)


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="not found") as excinfo:
        read_video(tmp_path / "nope.mp4")
    _single_line_video_error(excinfo)


@pytest.mark.parametrize("content", [b"", os.urandom(4096)])
def test_garbage_file_is_not_a_video(tmp_path, content):
    path = tmp_path / "garbage.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match="cannot read") as excinfo:
        read_video(path)
    _single_line_video_error(excinfo)


def test_too_few_frames(tmp_path):
    path = write_video(tmp_path / "short.mp4", _level_clip(3))
    with pytest.raises(VideoError, match="has 3 frame") as excinfo:
        read_video(path, frame_policy="resample")
    _single_line_video_error(excinfo)


def test_trim_needs_at_least_num_frames(level_video):
    with pytest.raises(VideoError, match="fewer than num_frames=81.*at most 21.*resample"):
        read_video(level_video, num_frames=81)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 100}, "height must be a multiple of 16.*use 96 or 112"),
        ({"width": 850}, "width must be a multiple of 16.*use 848 or 864"),
        ({"width": 8}, "at least 16"),
        ({"num_frames": 80}, "4k\\+1.*use 77 or 81"),
        ({"num_frames": 1}, "at least 5"),
        ({"frame_policy": "stretch"}, "trim, resample"),
    ],
)
def test_bad_arguments_fail_before_the_file_is_opened(monkeypatch, tmp_path, kwargs, message):
    import imageio_ffmpeg

    def must_not_run(*args, **kwargs):
        raise AssertionError("ffmpeg ran before the arguments were checked")

    monkeypatch.setattr(imageio_ffmpeg, "count_frames_and_secs", must_not_run)
    monkeypatch.setattr(imageio_ffmpeg, "read_frames", must_not_run)
    with pytest.raises(VideoError, match=message) as excinfo:
        read_video(tmp_path / "missing.mp4", **kwargs)  # the argument error wins over the missing file
    _single_line_video_error(excinfo)


def test_no_overwrite_without_the_flag(tmp_path):
    path = write_video(tmp_path / "out.mp4", _level_clip(5))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        write_video(path, _level_clip(9))
    assert path.read_bytes() == before
    write_video(path, _level_clip(9), overwrite=True)
    assert read_video(path).num_frames == 9
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(monkeypatch, tmp_path):
    from fastvmt.io import video as video_module

    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    # An encoder that writes half a file to its output (the last argument), then fails.
    script = '#!/bin/sh\nfor last; do :; done\nprintf partial > "$last"\necho "Conversion failed!" >&2\nexit 1\n'
    fake.write_text(script)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(video_module, "ffmpeg_executable", lambda: str(fake))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError, match="Conversion failed"):
        write_video(out / "new.mp4", _level_clip(5))
    assert os.listdir(out) == []
    (out / "old.mp4").write_bytes(b"previous")
    with pytest.raises(OSError):
        write_video(out / "old.mp4", _level_clip(5), overwrite=True)
    assert os.listdir(out) == ["old.mp4"] and (out / "old.mp4").read_bytes() == b"previous"


@pytest.mark.parametrize(("name", "message"), [("clip.mkv", "must be an .mp4"), ("nowhere/clip.mp4", "does not exist")])
def test_bad_output_paths(tmp_path, name, message):
    with pytest.raises(VideoError, match=message):
        write_video(tmp_path / name, _level_clip(5))


def test_write_rejects_non_uint8_frames(tmp_path):
    with pytest.raises(TypeError):
        write_video(tmp_path / "f.mp4", _level_clip(5).astype(np.float32))
