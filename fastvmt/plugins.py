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
import typing
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from fastvmt import hookspecs
from fastvmt.hookspecs import PLUGIN_KINDS, PluginKind

__all__ = [
    "PluginError",
    "Registration",
    "Registry",
    "create",
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


class PluginError(Exception):
    """A plugin failed to load or registered something invalid."""


@dataclass(frozen=True)
class Registration:
    """One registered component: a value for kinds that register values (strategies), else a class."""

    kind: str
    name: str
    obj: Any
    plugin: str


class Registry:
    """Every registration, by kind and name."""

    def __init__(self, registrations: list[Registration]):
        self._by_kind: dict[str, dict[str, Registration]] = {kind.name: {} for kind in PLUGIN_KINDS}
        for registration in registrations:
            self._by_kind[registration.kind][registration.name] = registration

    def get(self, kind: str, name: str) -> Any:
        """The component registered as ``name``; ``LookupError`` listing the available names otherwise."""
        try:
            return self._by_kind[kind][name].obj
        except KeyError:
            if kind not in self._by_kind:
                raise LookupError(f"unknown kind {kind!r}; kinds: {', '.join(self._by_kind)}") from None
            available = ", ".join(sorted(self._by_kind[kind])) or "none"
            raise LookupError(f"unknown {kind} {name!r}; available: {available}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._by_kind[kind])

    def registrations(self) -> list[Registration]:
        return [r for kind in self._by_kind for r in sorted(self._by_kind[kind].values(), key=lambda r: r.name)]


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


def _registrar(kind: PluginKind, plugin: str, out: dict[str, Registration]) -> Callable[[str, Any], None]:
    base = kind.base()

    def register(name: str, obj: Any) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {kind.name} with an invalid name {name!r}")
        if kind.values:
            valid, expected = isinstance(obj, base), f"a {base.__name__}"
        else:
            valid, expected = inspect.isclass(obj) and issubclass(obj, base), f"a subclass of {base.__name__}"
        if not valid:
            raise PluginError(f"plugin {plugin!r} registered {kind.name} {name!r} as {obj!r}, expected {expected}")
        if name in out:
            raise PluginError(f"plugin {plugin!r} registered {kind.name} {name!r}, already registered by plugin "
                              f"{out[name].plugin!r}")
        out[name] = Registration(kind.name, name, obj, plugin)

    return register


def collect(pm: pluggy.PluginManager) -> Registry:
    """Call every plugin's registration hooks and gather what they register."""
    registrations: list[Registration] = []
    for kind in PLUGIN_KINDS:
        seen: dict[str, Registration] = {}
        # pluggy calls hookimpls last-registered first; walk them in registration order instead.
        for impl in getattr(pm.hook, kind.hook_name).get_hookimpls():
            impl.function(register=_registrar(kind, impl.plugin_name, seen))
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


def _json_numbers(cls: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with integers as floats where ``cls``'s constructor takes a float and no int: JSON (``--set``,
    manifests, sidecars) writes 1.0 as 1."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:  # annotations that do not resolve here: the values go as they are
        return options

    def takes_float_only(hint: Any) -> bool:
        allowed = typing.get_args(hint) or (hint,)
        return float in allowed and int not in allowed

    return {key: float(value) if type(value) is int and takes_float_only(hints.get(key)) else value
            for key, value in options.items()}


def create(kind: str, name: str, options: Mapping[str, Any] | None = None) -> Any:
    """An instance of the ``kind`` registered as ``name``, built with user-given ``options`` (``--set``,
    ``--tracker-option``, a manifest): ``ValueError`` naming the component and what it takes when an option is
    unknown, missing or of a type its constructor refuses."""
    cls = get(kind, name)
    options = _json_numbers(cls, dict(options or {}))
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a builtin or C type: let the call itself check
        signature = None
    if signature is not None:
        try:
            signature.bind(**options)
        except TypeError as exc:
            accepted = ", ".join(p for p in signature.parameters if p not in ("args", "kwargs")) or "none"
            raise ValueError(f"invalid options for {kind} {name!r}: {exc} (options: {accepted})") from None
    try:
        return cls(**options)
    except ValueError as exc:  # the constructor's own check of a value
        raise ValueError(f"{kind} {name!r}: {exc}") from None
    except TypeError as exc:  # a value of the wrong type for the constructor (e.g. a string where a number goes)
        given = ", ".join(f"{key}={value!r}" for key, value in options.items())
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"invalid options for {kind} {name!r} ({given}): {reason}") from None


def names(kind: str) -> list[str]:
    """Shortcut for ``registry().names(kind)``."""
    return registry().names(kind)
