"""pluggy hook specifications of fastvmt: one registration hook per kind of component, and the table of kinds.

Each hook receives a ``register(name, obj)`` callback. A plugin module implements any of them with
``@fastvmt.hookimpl`` and is found through the entry-point group ``fastvmt``. :data:`PLUGIN_KINDS` pairs each
hook with the kind's name and the type what it registers must have; the registry is built from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("fastvmt")
hookimpl = pluggy.HookimplMarker("fastvmt")


@hookspec
def fastvmt_register_strategies(register):
    """Register presets: ``register(name, fastvmt.Strategy(...))``."""


@hookspec
def fastvmt_register_extractors(register):
    """Register motion extractors: ``register(name, MotionExtractorSubclass)``."""


@hookspec
def fastvmt_register_losses(register):
    """Register guidance losses: ``register(name, GuidanceLossSubclass)``."""


@hookspec
def fastvmt_register_schedulers(register):
    """Register gradient schedulers: ``register(name, GradientSchedulerSubclass)``."""


@hookspec
def fastvmt_register_backbones(register):
    """Register backbones: ``register(name, BackboneSubclass)``."""


@hookspec
def fastvmt_register_backends(register):
    """Register AMF backends: ``register(name, AMFBackendSubclass)``."""


@hookspec
def fastvmt_register_trackers(register):
    """Register point trackers for the metrics: ``register(name, TrackerSubclass)``."""


@dataclass(frozen=True)
class PluginKind:
    """A kind of component: its name in lookups (``plugins.get(name, ...)``), the hook that registers it, and
    the dotted path of the type it registers, imported on use so that listing the kinds stays light.
    ``values``: the kind registers instances of that type (strategies); otherwise subclasses."""

    name: str
    hook: Callable[..., Any]
    base_path: str
    values: bool = False

    @property
    def hook_name(self) -> str:
        return self.hook.__name__

    def base(self) -> type:
        """The type a registration must be (an instance of, for ``values``; else a subclass of)."""
        module, _, name = self.base_path.rpartition(".")
        return getattr(importlib.import_module(module), name)


#: Every kind of component, in listing order; a new kind is a hook above and a row here.
PLUGIN_KINDS = (
    PluginKind("strategy", fastvmt_register_strategies, "fastvmt.strategies.spec.Strategy", values=True),
    PluginKind("extractor", fastvmt_register_extractors, "fastvmt.interfaces.MotionExtractor"),
    PluginKind("loss", fastvmt_register_losses, "fastvmt.interfaces.GuidanceLoss"),
    PluginKind("scheduler", fastvmt_register_schedulers, "fastvmt.interfaces.GradientScheduler"),
    PluginKind("backbone", fastvmt_register_backbones, "fastvmt.interfaces.Backbone"),
    PluginKind("backend", fastvmt_register_backends, "fastvmt.backends.base.AMFBackend"),
    PluginKind("tracker", fastvmt_register_trackers, "fastvmt.metrics.trackers.base.Tracker"),
)
