"""Video input and output: read clips fitted to Wan's sizes and frame counts, write H.264 MP4s."""

from fastvmt.io.checks import VideoError, check_num_frames, check_output_path, check_size
from fastvmt.io.video import DEFAULT_FPS, Video, read_video, write_video

__all__ = [
    "DEFAULT_FPS",
    "Video",
    "VideoError",
    "check_num_frames",
    "check_output_path",
    "check_size",
    "read_video",
    "write_video",
]
