"""The plugin registry: built-in components and third-party plugins found through entry points.

Built-in modules are registered first, then every entry point of group ``fastvmt`` (restricted by the
environment variable ``FASTVMT_LOAD_PLUGINS``, a comma-separated list of entry-point names; empty loads none).
Each plugin's registration hooks are called with a ``register`` callback that checks types and duplicates and
names the offending plugin in its errors.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from collections.abc import Callable
from typing import Any

import pluggy

from fastvmt import hookspecs

__all__ = [
    "KINDS",
    "PluginError",
    "Registration",
    "Registry",
    "get",
    "names",
    "plugin_manager",
    "register_plugin",
    "registry",
]

ENTRY_POINT_GROUP = "fastvmt"
ENV_LOAD_PLUGINS = "FASTVMT_LOAD_PLUGINS"
BUILTIN_PLUGINS = (
    "fastvmt.backends.plugin",
    "fastvmt.backbones.plugin",
    "fastvmt.strategies.plugin",
    "fastvmt.metrics.plugin",
)


def _base_types() -> dict[str, type]:
    from fastvmt.backends.base import AMFBackend
    from fastvmt.interfaces import Backbone, GradientScheduler, GuidanceLoss, MotionExtractor
    from fastvmt.metrics.trackers.base import Tracker
    from fastvmt.strategies.spec import Strategy

    return {
        "strategy": Strategy,
        "extractor": MotionExtractor,
        "loss": GuidanceLoss,
        "scheduler": GradientScheduler,
        "backbone": Backbone,
        "backend": AMFBackend,
        "tracker": Tracker,
    }


#: kind -> the hook that registers it.
KINDS = {
    "strategy": "fastvmt_register_strategies",
    "extractor": "fastvmt_register_extractors",
    "loss": "fastvmt_register_losses",
    "scheduler": "fastvmt_register_schedulers",
    "backbone": "fastvmt_register_backbones",
    "backend": "fastvmt_register_backends",
    "tracker": "fastvmt_register_trackers",
}


class PluginError(Exception):
    """A plugin failed to load or registered something invalid."""


@dataclass(frozen=True)
class Registration:
    """One registered component: strategies are ``Strategy`` values, the other kinds are classes."""

    kind: str
    name: str
    obj: Any
    plugin: str


class Registry:
    """Every registration, by kind and name."""

    def __init__(self, registrations: list[Registration]):
        self._by_kind: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        for registration in registrations:
            self._by_kind[registration.kind][registration.name] = registration

    def get(self, kind: str, name: str) -> Any:
        """The component registered as ``name``; ``LookupError`` listing the available names otherwise."""
        try:
            return self._by_kind[kind][name].obj
        except KeyError:
            if kind not in self._by_kind:
                raise LookupError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}") from None
            available = ", ".join(sorted(self._by_kind[kind])) or "none"
            raise LookupError(f"unknown {kind} {name!r}; available: {available}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def registrations(self) -> list[Registration]:
        return [r for kind in KINDS for r in sorted(self._by_kind[kind].values(), key=lambda r: r.name)]


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = os.environ.get(ENV_LOAD_PLUGINS)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}") from exc
        pm.register(plugin, name=ep.name)


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager with built-ins and entry-point plugins registered."""
    pm = pluggy.PluginManager("fastvmt")
    pm.add_hookspecs(hookspecs)
    for module in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module), name=module)
    _load_entry_points(pm)
    pm.check_pending()
    return pm


def _registrar(kind: str, plugin: str, base: type, out: dict[str, Registration]) -> Callable[[str, Any], None]:
    def register(name: str, obj: Any) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r}")
        if kind == "strategy":
            valid = isinstance(obj, base)
        else:
            valid = inspect.isclass(obj) and issubclass(obj, base)
        if not valid:
            expected = f"a {base.__name__}" if kind == "strategy" else f"a subclass of {base.__name__}"
            raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} as {obj!r}, expected {expected}")
        if name in out:
            raise PluginError(
                f"plugin {plugin!r} registered {kind} {name!r}, already registered by plugin {out[name].plugin!r}"
            )
        out[name] = Registration(kind, name, obj, plugin)

    return register


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's registration hooks and gather what they register."""
    bases = _base_types()
    registrations: list[Registration] = []
    for kind, hook_name in KINDS.items():
        seen: dict[str, Registration] = {}
        # pluggy calls hookimpls last-registered first; walk them in registration order instead.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            impl.function(register=_registrar(kind, impl.plugin_name, bases[kind], seen))
        registrations.extend(seen.values())
    return Registry(registrations)


@cache
def registry() -> Registry:
    """The process-wide registry (built once, on first use)."""
    return collect(plugin_manager())


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Add a plugin (a module or object with ``@fastvmt.hookimpl`` functions) to this process, e.g. from a
    notebook, and rebuild the registry so its registrations are visible."""
    pm = plugin_manager()
    pm.register(plugin, name=name)
    pm.check_pending()
    registry.cache_clear()
    registry()  # build now, so an invalid registration fails here, naming the plugin


def reset() -> None:
    """Forget the plugin manager and registry, so the next use rediscovers plugins (tests, notebooks)."""
    registry.cache_clear()
    plugin_manager.cache_clear()


def get(kind: str, name: str) -> Any:
    """Shortcut for ``registry().get(kind, name)``."""
    return registry().get(kind, name)


def names(kind: str) -> list[str]:
    """Shortcut for ``registry().names(kind)``."""
    return registry().names(kind)
