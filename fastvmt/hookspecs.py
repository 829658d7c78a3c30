"""pluggy hook specifications of fastvmt: one registration hook per kind of component.

Each hook receives a ``register(name, obj)`` callback. A plugin module implements any of them with
``@fastvmt.hookimpl`` and is found through the entry-point group ``fastvmt``.
"""

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
