"""The tiny Wan checkpoint written once per test session, for the test modules that share it (writing one takes
seconds, several times that under the jaxtyping checks the tests run with).

A session fixture imported into several modules is set up once per module, so the checkpoint is cached by the
session's temporary root.
"""

from functools import cache
from pathlib import Path

import pytest


@cache
def _checkpoint(session_root: Path) -> Path:
    from fastvmt.backbones.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(session_root / "tiny-wan-shared", seed=0)


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory):
    return _checkpoint(tmp_path_factory.getbasetemp())
