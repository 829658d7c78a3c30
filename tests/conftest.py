"""Shared test configuration: hypothesis profiles and plugin-registry isolation."""

import os

import pytest
import torch
from hypothesis import settings

# Without CUDA the Triton kernels run in Triton's CPU interpreter, which Triton picks when a kernel module is
# imported: set it here, before any test module can import one.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# The tests run tiny shapes, where a second intra-op thread only adds synchronisation (and, on a busy 2-core
# machine, oversubscription that made tiny-model runs 10x slower).
torch.set_num_threads(1)

settings.register_profile("ci", max_examples=12, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", max_examples=30, deadline=None, print_blob=True)
settings.register_profile("thorough", max_examples=300, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def fresh_plugins(monkeypatch):
    """A registry rebuilt for this test (and again after it), so plugin changes do not leak."""
    from fastvmt import plugins

    plugins.reset()
    yield plugins
    monkeypatch.undo()
    plugins.reset()
