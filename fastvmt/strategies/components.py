"""Resolving a strategy: its preset by name and its components built from the registry."""

from __future__ import annotations

from dataclasses import dataclass

from fastvmt import plugins
from fastvmt.interfaces import GradientScheduler, GuidanceLoss, MotionExtractor
from fastvmt.strategies.spec import Strategy

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


def build_components(strategy: Strategy) -> Components | None:
    """The strategy's extractor, loss and scheduler (``None`` for an unguided strategy); bad options raise."""
    if not strategy.guided:
        return None
    return Components(
        extractor=plugins.create("extractor", strategy.extractor.name, strategy.extractor.options),
        loss=plugins.create("loss", strategy.loss.name, strategy.loss.options),
        scheduler=plugins.create("scheduler", strategy.scheduler.name, strategy.scheduler.options),
    )
