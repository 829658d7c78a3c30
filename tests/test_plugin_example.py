"""The third-party plugin example (examples/fastvmt-plugin-example): discovered through its entry point, its
scheduler and loss behave as documented, and a tiny guided run really uses them when selected by name."""

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from fastvmt import Component
from fastvmt.interfaces import InnerStep, MotionField, TokenGrid

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastvmt-plugin-example"
SOURCE = str(EXAMPLE / "src")

# The modules, for the tests below; off sys.path again at once, so that no stray metadata there (an egg-info
# left by a local build) can register the plugin for other tests.
sys.path.insert(0, SOURCE)
try:
    from fastvmt_plugin_example.losses import CharbonnierAMFLoss
    from fastvmt_plugin_example.schedulers import CosineSpaced, cosine_spaced_iterations
finally:
    sys.path.remove(SOURCE)


def install_metadata(root: Path) -> dict[str, str]:
    """A dist-info on ``root`` with the entry points the example's pyproject.toml declares (what pip would
    write); returns them."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    entries = project["entry-points"]["fastvmt"]
    info = root / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[fastvmt]\n{lines}")
    return entries


@pytest.fixture
def example_plugin(tmp_path, monkeypatch, fresh_plugins):
    entries = install_metadata(tmp_path)
    monkeypatch.syspath_prepend(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("FASTVMT_LOAD_PLUGINS", raising=False)
    return entries


def test_entry_point_registers_the_components_under_the_plugin_name(example_plugin, fresh_plugins):
    assert list(example_plugin) == ["example"]
    by_name = {r.name: r for r in fresh_plugins.registry().registrations()}
    for kind, name in (("scheduler", "cosine_spaced"), ("loss", "charbonnier_amf"), ("strategy", "fastvmt_robust")):
        assert by_name[name].kind == kind and by_name[name].plugin == "example"
    assert fresh_plugins.get("scheduler", "cosine_spaced") is CosineSpaced
    assert fresh_plugins.get("loss", "charbonnier_amf") is CharbonnierAMFLoss


def test_pip_installs_the_example_and_the_cli_lists_its_components(tmp_path):
    pytest.importorskip("setuptools", reason="building the example offline (--no-build-isolation) needs setuptools")
    source, target = tmp_path / "source", tmp_path / "site-packages"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    env.pop("FASTVMT_LOAD_PLUGINS", None)
    listing = subprocess.run(
        [sys.executable, "-m", "fastvmt", "plugins"], env=env, capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in listing.splitlines()]
    for row in (["scheduler", "cosine_spaced", "example"], ["loss", "charbonnier_amf", "example"],
                ["strategy", "fastvmt_robust", "example"]):  # fmt: skip
        assert row in rows, listing


def test_load_plugins_env_can_leave_the_example_out(example_plugin, fresh_plugins, monkeypatch):
    monkeypatch.setenv("FASTVMT_LOAD_PLUGINS", "")
    assert "cosine_spaced" not in fresh_plugins.names("scheduler")
    assert "interval" in fresh_plugins.names("scheduler")


@given(computations=st.integers(1, 40), num_inner=st.integers(1, 40))
def test_cosine_spaced_computes_the_asked_count_front_loaded_and_at_the_end(computations, num_inner):
    scheduler = CosineSpaced(computations=computations)
    computed = [
        j for j in range(num_inner) if scheduler.should_compute(InnerStep(0, 50, inner=j, num_inner=num_inner))
    ]
    assert len(computed) == min(computations, num_inner)
    assert computed[0] == 0  # the first iteration has no cached gradient to reuse
    if len(computed) >= 2:
        assert computed[-1] == num_inner - 1  # every guided step ends on a fresh gradient
    middle = (num_inner - 1) / 2
    assert sum(j < middle for j in computed) >= sum(j > middle for j in computed)


def test_cosine_spaced_guides_the_first_fraction_and_rejects_bad_options():
    scheduler = CosineSpaced(computations=4, guided_fraction=0.2)
    assert [k for k in range(50) if scheduler.is_guided(k, 50)] == list(range(10))
    assert sorted(cosine_spaced_iterations(4, 10)) != [0, 3, 6, 9]  # not interval(3) in disguise
    with pytest.raises(ValueError, match="computations"):
        CosineSpaced(computations=0)
    with pytest.raises(ValueError, match="guided_fraction"):
        CosineSpaced(guided_fraction=1.5)


def motion(displacement, *, pairs=((0, 0), (0, 1), (1, 1)), span=2, key_means=None):
    frames = max(map(max, pairs)) + 1
    return MotionField(displacement, torch.tensor(pairs), TokenGrid(frames, 2, 3), span=span, key_means=key_means)


def test_charbonnier_is_zero_on_equal_motion_and_the_weighted_l1_for_small_epsilon():
    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(3, 6, 2, generator=generator)
    generated = reference + torch.randn(3, 6, 2, generator=generator)
    loss = CharbonnierAMFLoss(epsilon=1e-6, lambda_amf=1.0, lambda_win=0.0, alpha=0.5)
    assert loss(motion(reference), motion(reference.clone())).total.item() == pytest.approx(0.0, abs=1e-5)
    # offsets d = 0, 1, 0 with sf = 2: weights 1, 1 - 0.5, 1; per token the Euclidean error
    expected = sum(w * (generated[n] - reference[n]).norm(dim=-1).sum() for n, w in enumerate((1.0, 0.5, 1.0))) / 3
    value = loss(motion(reference), motion(generated))
    assert value.total.item() == pytest.approx(float(expected), rel=1e-4)
    assert set(value.parts) == {"charbonnier"}


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_charbonnier_bounds_each_tokens_pull_where_the_squared_error_does_not(scale):
    reference = torch.zeros(3, 6, 2)
    error = torch.zeros(3, 6, 2)
    error[1, 4] = torch.tensor([3.0, -4.0]) * scale  # one outlier token
    error[0, :] = 0.5
    generated = (reference + error).requires_grad_(True)
    robust = CharbonnierAMFLoss(epsilon=0.1, lambda_amf=1.0, lambda_win=0.0, alpha=0.0)
    (grad,) = torch.autograd.grad(robust(motion(reference), motion(generated)).total, generated)
    assert grad.norm(dim=-1).max().item() <= 1 / 3 + 1e-6  # (1/N) per token, whatever the error
    from fastvmt.strategies.losses import AMFWindowLoss

    squared = AMFWindowLoss(lambda_amf=1.0, lambda_win=0.0, alpha=0.0)
    (grad_sq,) = torch.autograd.grad(squared(motion(reference), motion(generated)).total, generated)
    assert grad_sq[1, 4].norm().item() == pytest.approx(2 * 5.0 * scale / 3, rel=1e-5)


def test_charbonnier_window_term_needs_window_key_means():
    loss = CharbonnierAMFLoss()
    with pytest.raises(ValueError, match="windowed extractor or lambda_win=0"):
        loss(motion(torch.zeros(3, 6, 2)), motion(torch.zeros(3, 6, 2)))
    means = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(1))
    pairs = ((0, 0), (0, 1), (0, 2))  # anchor 0 with two later targets: the window term counts it
    still = torch.zeros(3, 6, 2)
    value = loss(motion(still, pairs=pairs, span=3), motion(still, pairs=pairs, span=3, key_means=means))
    assert set(value.parts) == {"charbonnier", "window"} and value.parts["window"] > 0
    with pytest.raises(ValueError, match="epsilon"):
        CharbonnierAMFLoss(epsilon=0.0)


@pytest.fixture(scope="module")
def backbone():
    from fastvmt.backbones.tiny import tiny_backbone

    return tiny_backbone(seed=0)


def test_tiny_guided_run_uses_the_plugins_scheduler_and_loss(example_plugin, backbone):
    from fastvmt.generation.pipeline import MotionTransferPipeline
    from fastvmt.strategies.components import resolve_strategy

    computations = 3
    strategy = resolve_strategy(
        "fastvmt",
        {
            "scheduler": Component("cosine_spaced", {"computations": computations}),
            "loss": Component("charbonnier_amf", {"epsilon": 0.05}),
        },
    )
    pipe = MotionTransferPipeline(backbone, strategy)
    assert isinstance(pipe.components.scheduler, CosineSpaced) and isinstance(pipe.components.loss, CharbonnierAMFLoss)
    reference = np.random.default_rng(0).integers(0, 256, size=(9, 48, 64, 3), dtype=np.uint8)
    report = pipe(reference, "a tiny test", num_inference_steps=5, seed=0, progress=False).report
    # 5 steps: the first 20% = 1 guided step of 10 inner iterations
    assert (report.counts.guided_steps, report.counts.inner_iterations) == (1, 10)
    assert (report.counts.gradients_computed, report.counts.gradients_reused) == (computations, 10 - computations)
    assert len(report.losses) == computations
    for entry in report.losses:
        assert {"charbonnier", "window"} <= set(entry) and "amf" not in entry
        assert math.isfinite(entry["total"])
    assert report.config["strategy"]["scheduler"]["name"] == "cosine_spaced"


def test_the_plugins_preset_is_selected_by_name(example_plugin, fresh_plugins):
    from fastvmt.strategies.components import build_components, resolve_strategy

    strategy = resolve_strategy("fastvmt_robust", {"scheduler.computations": 2, "loss.epsilon": 0.5})
    components = build_components(strategy)
    assert isinstance(components.scheduler, CosineSpaced) and components.scheduler.computations == 2
    assert isinstance(components.loss, CharbonnierAMFLoss) and components.loss.epsilon == 0.5
    assert strategy.extractor == fresh_plugins.get("strategy", "fastvmt").extractor  # the rest is FastVMT's
