"""Resolving a strategy: its preset by name and its components built from the registry."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from fastvmt import plugins
from fastvmt.interfaces import GradientScheduler, GuidanceLoss, MotionExtractor
from fastvmt.strategies.spec import Component, Strategy

__all__ = ["Components", "build_components", "resolve_strategy"]


@dataclass(frozen=True)
class Components:
    """The instantiated parts of a guided strategy."""

    extractor: MotionExtractor
    loss: GuidanceLoss
    scheduler: GradientScheduler


def resolve_strategy(strategy: str | Strategy, overrides: dict | None = None) -> Strategy:
    """A registered preset by name (or a given Strategy), with field overrides applied."""
    resolved = plugins.get("strategy", strategy) if isinstance(strategy, str) else strategy
    return resolved.override(**overrides) if overrides else resolved


def _build(kind: str, component: Component):
    cls = plugins.get(kind, component.name)
    try:
        inspect.signature(cls).bind(**component.options)
    except TypeError as exc:
        raise ValueError(f"invalid options for {kind} {component.name!r}: {exc}") from None
    return cls(**component.options)


def build_components(strategy: Strategy) -> Components | None:
    """The strategy's extractor, loss and scheduler (``None`` for an unguided strategy); bad options raise."""
    if not strategy.guided:
        return None
    return Components(
        extractor=_build("extractor", strategy.extractor),
        loss=_build("loss", strategy.loss),
        scheduler=_build("scheduler", strategy.scheduler),
    )
