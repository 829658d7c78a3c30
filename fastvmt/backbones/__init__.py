"""Video diffusion backbones: Wan2.1 on diffsynth (:mod:`.wan`) and a tiny random Wan for tests (:mod:`.tiny`).

Importing this package is light; diffsynth loads when a model is first built.
"""

from typing import NamedTuple

__all__ = ["MODEL_DTYPES", "RECOMMENDED_RUN", "RecommendedRun"]

#: The dtypes a Wan backbone runs in, by torch name; the first is the default.
MODEL_DTYPES = ("bfloat16", "float16", "float32")


class RecommendedRun(NamedTuple):
    """A run's size and length: frames, height and width in pixels, sampling steps."""

    num_frames: int
    height: int
    width: int
    num_steps: int


#: Wan2.1's recommended 480P run, the default of the library, the commands and the cost model.
RECOMMENDED_RUN = RecommendedRun(num_frames=81, height=480, width=832, num_steps=50)
