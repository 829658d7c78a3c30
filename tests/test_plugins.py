"""The plugin registry: built-ins, entry-point discovery, validation of what plugins register."""

import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

import fastvmt
from fastvmt import hookspecs
from fastvmt.hookspecs import PLUGIN_KINDS
from fastvmt.plugins import PluginError

PLUGINS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def write_distribution(root, module_source, *, dist="fakeplug", entry="fakeplug", module="fakeplug_mod"):
    """A minimal installed distribution on ``root``: a module plus a dist-info with a ``fastvmt`` entry point."""
    (root / f"{module}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[fastvmt]\n{entry} = {module}\n")
    return root


SCHEDULER_PLUGIN = """
    import fastvmt
    from fastvmt.interfaces import GradientScheduler

    class EveryOther(GradientScheduler):
        def is_guided(self, step, num_steps):
            return step == 0

        def should_compute(self, inner):
            return inner.inner % 2 == 0

    @fastvmt.hookimpl
    def fastvmt_register_schedulers(register):
        register("every_other", EveryOther)
"""


@pytest.fixture
def fake_dist(tmp_path, monkeypatch, fresh_plugins):
    write_distribution(tmp_path, SCHEDULER_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("FASTVMT_LOAD_PLUGINS", raising=False)
    return tmp_path


def test_every_hookspec_is_one_plugin_kind_with_an_importable_base():
    specs = {name for name, value in vars(hookspecs).items() if hasattr(value, "fastvmt_spec")}
    hooks = [kind.hook_name for kind in PLUGIN_KINDS]
    assert sorted(hooks) == sorted(specs) and len(set(hooks)) == len(hooks)  # no hook without a kind, none twice
    assert len({kind.name for kind in PLUGIN_KINDS}) == len(PLUGIN_KINDS)
    for kind in PLUGIN_KINDS:
        assert inspect.isclass(kind.base()) and inspect.getdoc(kind.hook), kind


def test_plugins_page_lists_every_kind_with_its_base_class():
    rows = re.findall(r"^\| `(fastvmt_register_\w+)\(register\)` \|.*\| `([\w.]+)` \|$", PLUGINS_PAGE.read_text(), re.M)
    assert {hook: base.rsplit(".", 1)[-1] for hook, base in rows} == {
        kind.hook_name: kind.base().__name__ for kind in PLUGIN_KINDS
    }


def test_an_unknown_kind_is_refused_naming_every_kind(fresh_plugins):
    with pytest.raises(LookupError) as caught:
        fresh_plugins.get("widget", "fastvmt")
    assert all(kind.name in str(caught.value) for kind in PLUGIN_KINDS)
    assert all(isinstance(fresh_plugins.names(kind.name), list) for kind in PLUGIN_KINDS)


def test_builtin_backends_are_registered(fresh_plugins):
    assert "reference" in fresh_plugins.names("backend")
    assert fresh_plugins.registry().get("backend", "reference").name == "reference"


def test_entry_point_plugin_is_discovered(fake_dist, fresh_plugins):
    scheduler = fresh_plugins.get("scheduler", "every_other")
    assert [r.plugin for r in fresh_plugins.registry().registrations() if r.name == "every_other"] == ["fakeplug"]
    from fastvmt.interfaces import InnerStep

    assert scheduler().should_compute(InnerStep(0, 1, inner=2, num_inner=4))


def test_cli_lists_entry_point_plugin(fake_dist):
    env = {**os.environ, "PYTHONPATH": f"{fake_dist}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("FASTVMT_LOAD_PLUGINS", None)
    out = subprocess.run(
        [sys.executable, "-m", "fastvmt", "plugins"], env=env, capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in out.splitlines()]
    assert ["scheduler", "every_other", "fakeplug"] in rows
    assert ["backend", "reference", "fastvmt.backends.plugin"] in rows


@pytest.mark.parametrize(
    ("allowed", "loaded"), [("", False), ("fakeplug", True), ("other, fakeplug", True), ("other", False)]
)
def test_load_plugins_env_restricts_entry_points(fake_dist, fresh_plugins, monkeypatch, allowed, loaded):
    monkeypatch.setenv("FASTVMT_LOAD_PLUGINS", allowed)
    assert ("every_other" in fresh_plugins.names("scheduler")) is loaded
    assert "reference" in fresh_plugins.names("backend")  # built-ins always load


BAD_REGISTRATIONS = {
    "dupe": (
        """
        import fastvmt
        from fastvmt.backends.reference import ReferenceBackend

        @fastvmt.hookimpl
        def fastvmt_register_backends(register):
            register("reference", ReferenceBackend)
        """,
        r"plugin 'dupe'.*'reference'.*already registered by plugin 'fastvmt.backends.plugin'",
    ),
    "wrongtype": (
        """
        import fastvmt

        @fastvmt.hookimpl
        def fastvmt_register_losses(register):
            register("not_a_loss", dict)
        """,
        r"plugin 'wrongtype'.*not_a_loss.*subclass of GuidanceLoss",
    ),
}


@pytest.mark.parametrize("plugin", BAD_REGISTRATIONS)
def test_a_bad_registration_fails_naming_the_plugin(tmp_path, monkeypatch, fresh_plugins, plugin):
    source, message = BAD_REGISTRATIONS[plugin]
    write_distribution(tmp_path, source, dist=plugin, entry=plugin, module=f"{plugin}_mod")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=message):
        fresh_plugins.registry()


def test_misspelled_hookimpl_fails_loudly(tmp_path, monkeypatch, fresh_plugins):
    write_distribution(
        tmp_path,
        """
        import fastvmt

        @fastvmt.hookimpl
        def fastvmt_register_schedulerz(register):
            pass
        """,
        dist="typo",
        entry="typo",
        module="typo_mod",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(pluggy.PluginValidationError, match="fastvmt_register_schedulerz"):
        fresh_plugins.plugin_manager()


def test_plugin_import_error_names_the_plugin(tmp_path, monkeypatch, fresh_plugins):
    write_distribution(tmp_path, "raise ImportError('needs foo')", dist="broken", entry="broken", module="broken_mod")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match=r"plugin 'broken'.*needs foo"):
        fresh_plugins.registry()


def test_unknown_name_lists_available(fresh_plugins):
    with pytest.raises(LookupError, match=r"unknown backend 'nope'; available: .*reference"):
        fresh_plugins.get("backend", "nope")


def test_import_is_light_and_fast():
    code = (
        "import sys, time; t = time.perf_counter(); import fastvmt; dt = time.perf_counter() - t; "
        "print(dt, [m for m in ('torch', 'diffsynth', 'triton') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[1].strip() == "[]"
    assert float(out[0]) < 2.0


def test_version_cli():
    out = subprocess.run([sys.executable, "-m", "fastvmt", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fastvmt {fastvmt.__version__}"


def test_a_backbone_written_before_the_speed_options_still_runs_guided_transfers():
    """Backbone.velocity's ``cache`` and features' ``checkpointing`` are passed only when asked for, so a third-party
    backbone without them serves every run that does not ask."""
    import numpy as np

    from fastvmt.backbones.patch import PatchBackbone
    from fastvmt.generation.pipeline import MotionTransferPipeline
    from fastvmt.strategies.components import resolve_strategy

    class EarlierBackbone(PatchBackbone):
        def velocity(self, latents, timestep, context, negative_context=None, cfg_scale=1.0):
            return super().velocity(latents, timestep, context, negative_context, cfg_scale)

        def features(self, latents, timestep, context, *, block):
            return super().features(latents, timestep, context, block=block)

    video = np.random.default_rng(0).integers(0, 256, size=(9, 64, 64, 3), dtype=np.uint8)
    strategy = resolve_strategy("fastvmt", {"extractor.tile": (2, 2), "extractor.window": 3})
    result = MotionTransferPipeline(EarlierBackbone(), strategy)(video, "a ball", num_inference_steps=4,
                                                                  progress=False)
    assert result.report.counts.gradients_computed > 0
