"""Which backend an op runs on: argument > use_backend > FASTVMT_BACKEND > auto; reference never auto."""

import pytest
import torch

import fastvmt
from fastvmt import ops
from fastvmt.backends import BackendUnavailable, Case, select_backend
from fastvmt.backends.dispatch import ENV_BACKEND
from fastvmt.backends.reference import ReferenceBackend

CALLS = []


def spy(name):
    """A reference backend that records its name when it computes a dense AMF."""

    def dense_positions(self, q, k, pairs, scale):
        CALLS.append(name)
        return ReferenceBackend.dense_positions(self, q, k, pairs, scale)

    return type(f"Spy_{name}", (ReferenceBackend,), {"name": name, "dense_positions": dense_positions})


class Refusing(ReferenceBackend):
    name = "refusing"

    def supports(self, case):
        return False, "needs a device this machine does not have"


class SpyPlugin:
    @fastvmt.hookimpl
    def fastvmt_register_backends(self, register):
        for name in ("spy_arg", "spy_ctx", "spy_env"):
            register(name, spy(name))
        register("refusing", Refusing)


@pytest.fixture
def spies(fresh_plugins, monkeypatch):
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    fresh_plugins.plugin_manager().register(SpyPlugin(), name="spies")
    fresh_plugins.registry.cache_clear()
    CALLS.clear()
    return fresh_plugins


def features():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, 4, 8, generator=gen), torch.randn(2, 3, 4, 8, generator=gen)


def case(dtype=torch.float32):
    return Case("dense", torch.device("cpu"), dtype, (2, 3, 4, 8), False)


def test_argument_beats_context_beats_environment_beats_auto(spies, monkeypatch):
    q, k = features()
    monkeypatch.setenv(ENV_BACKEND, "spy_env")
    with ops.use_backend("spy_ctx"):
        ops.full_amf(q, k, backend="spy_arg")
        ops.full_amf(q, k)
        with ops.use_backend("auto"):  # an explicit "auto" block chooses automatically, over the environment
            ops.full_amf(q, k)
            assert select_backend(case()).name == "torch"
    ops.full_amf(q, k)
    assert CALLS == ["spy_arg", "spy_ctx", "spy_env"]
    monkeypatch.delenv(ENV_BACKEND)
    ops.full_amf(q, k)
    assert CALLS == ["spy_arg", "spy_ctx", "spy_env"]  # auto picked no spy...
    assert select_backend(case()).name == "torch"  # ...but the torch backend


def test_windowed_ops_dispatch_every_step(spies):
    q, k = features()
    ops.windowed_amf(q, k, tile=(1, 2), window=3, backend="spy_arg")
    assert CALLS == ["spy_arg"]  # the coarse pass ran on the requested backend too


def test_reference_is_never_chosen_automatically(spies):
    assert select_backend(case(torch.float64)).name == "torch"
    # torch refuses non-floating inputs; auto then fails rather than falling back to reference
    with pytest.raises(BackendUnavailable, match="no backend can run dense"):
        select_backend(case(torch.int64))


@pytest.mark.parametrize("where", ["argument", "context", "environment"])
def test_unknown_backend_names_list_the_available_ones(spies, monkeypatch, where):
    q, k = features()
    with pytest.raises(LookupError, match=r"unknown backend 'nope'; available: .*reference.*torch"):
        if where == "argument":
            ops.full_amf(q, k, backend="nope")
        elif where == "context":
            with ops.use_backend("nope"):
                pass
        else:
            monkeypatch.setenv(ENV_BACKEND, "nope")
            ops.full_amf(q, k)


def test_a_named_backend_that_cannot_run_the_case_raises(spies, monkeypatch):
    q, k = features()
    with pytest.raises(BackendUnavailable, match="refusing.*needs a device this machine does not have"):
        ops.full_amf(q, k, backend="refusing")
    monkeypatch.setenv(ENV_BACKEND, "refusing")
    with pytest.raises(BackendUnavailable):
        ops.windowed_amf(q, k, tile=(1, 2), window=3)
    with pytest.raises(BackendUnavailable, match="not a floating dtype"):
        select_backend(case(torch.int64), "torch")


def test_use_backend_is_reexported():
    assert ops.use_backend is fastvmt.use_backend
