"""Strategy configuration: which registered components a run uses and how guidance optimises.

A :class:`Strategy` is a frozen value; presets are registered by name and overridden field by field with
:meth:`Strategy.override` (``"loss.lambda_win"`` reaches into a component's options).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any, Literal

__all__ = ["Component", "Strategy"]


def _tuples(options: Mapping[str, Any]) -> dict[str, Any]:
    """JSON turns tuples into lists; component options use tuples (e.g. ``tile``)."""
    return {key: tuple(value) if isinstance(value, list) else value for key, value in options.items()}


def _frozen(options: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(options or {}))


@dataclass(frozen=True)
class Component:
    """A registered component (extractor, loss or scheduler) by name, with its constructor options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", _frozen(self.options))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "options": dict(self.options)}

    def __str__(self) -> str:
        """``name(key=value,...)``, as listings show a component."""
        options = ",".join(f"{key}={value}" for key, value in self.options.items())
        return f"{self.name}({options})"


_COMPONENT_FIELDS = ("extractor", "loss", "scheduler")


def _component(field_name: str, value: Any) -> Component | None:
    """A component field's value from a Component, a registered name or a ``{"name", "options"}`` mapping."""
    if value is None or isinstance(value, Component):
        return value
    if isinstance(value, str):
        return Component(value)
    if isinstance(value, Mapping) and "name" in value and set(value) <= {"name", "options"}:
        return Component(value["name"], _tuples(value.get("options", {})))
    raise ValueError(f"{field_name} must be a component name or {{'name': ..., 'options': {{...}}}}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """A motion-transfer recipe (docs/algorithm.md#presets); build one from a preset with :meth:`override`.

    Every field but the components is given by name (the presets in :mod:`fastvmt.strategies.presets` hold
    the values).

    Attributes:
        name: the preset's name.
        extractor, loss, scheduler: the components; all ``None`` means no guidance (plain sampling).
        block: DiT block whose self-attention Q/K are captured.
        optimizer: ``"adamw"`` or ``"adam"``, created fresh at every guided step on a float32 master latent.
        inner_iterations: optimisation iterations per guided step (J).
        learning_rate: ``(start, end)``; see ``lr_schedule``.
        lr_schedule: ``"inner"``: ``lr_j = start + (end - start) * j / J`` inside every guided step (FastVMT);
            ``"outer"``: constant inside a guided step, linear from start to end across guided steps (DiTFlow).
        weight_decay: the optimiser's weight decay.
        reference: ``"per_step"`` re-extracts reference motion from the reference noised to every guided step;
            ``"once"`` extracts it once from the clean reference latent at timestep 0 (DiTFlow).
        denoising_strength: where sampling starts, ``(0, 1]``; 1 starts from pure noise.
        shift: flow-matching timestep shift.
        cfg_scale: classifier-free guidance scale of the denoising velocity.
    """

    name: str
    extractor: Component | None = None
    loss: Component | None = None
    scheduler: Component | None = None
    block: int
    optimizer: Literal["adamw", "adam"]
    inner_iterations: int
    learning_rate: tuple[float, float]
    lr_schedule: Literal["inner", "outer"]
    weight_decay: float
    reference: Literal["per_step", "once"]
    denoising_strength: float
    shift: float
    cfg_scale: float

    def __post_init__(self) -> None:
        parts = (self.extractor, self.loss, self.scheduler)
        if any(p is None for p in parts) and not all(p is None for p in parts):
            raise ValueError(f"strategy {self.name!r}: extractor, loss and scheduler are all set or all None")
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"strategy {self.name!r}: optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        if self.lr_schedule not in ("inner", "outer"):
            raise ValueError(f"strategy {self.name!r}: lr_schedule must be 'inner' or 'outer'")
        if self.reference not in ("per_step", "once"):
            raise ValueError(f"strategy {self.name!r}: reference must be 'per_step' or 'once'")
        if not 0.0 < self.denoising_strength <= 1.0:
            raise ValueError(
                f"strategy {self.name!r}: denoising_strength must be in (0, 1], got {self.denoising_strength}"
            )
        if self.inner_iterations < 1:
            raise ValueError(f"strategy {self.name!r}: inner_iterations must be >= 1")
        if self.block < 0:
            raise ValueError(f"strategy {self.name!r}: block must be >= 0")

    @property
    def guided(self) -> bool:
        return self.extractor is not None

    def override(self, **changes: Any) -> Strategy:
        """A copy with fields replaced.

        ``"extractor.window"``-style keys (passed via ``**{...}``) set one option of a component; a component
        field itself takes a :class:`Component`, a registered name (``scheduler="every"``: that component with
        its default options) or a ``{"name": ..., "options": {...}}`` mapping.
        """
        fields = {f.name for f in dataclasses.fields(self)}
        direct: dict[str, Any] = {}
        nested: dict[str, dict[str, Any]] = {}
        for key, value in changes.items():
            head, _, option = key.partition(".")
            if head not in fields:
                raise ValueError(f"unknown strategy field {head!r}; fields: {', '.join(sorted(fields))}")
            if option:
                nested.setdefault(head, {})[option] = value
            elif head in _COMPONENT_FIELDS:
                direct[head] = _component(head, value)
            else:
                direct[head] = tuple(value) if isinstance(value, list) else value
        for head, options in nested.items():
            component = direct.get(head, getattr(self, head))
            if head not in _COMPONENT_FIELDS or component is None:
                raise ValueError(f"{head}.{next(iter(options))!r}: {head!r} has no options to set in {self.name!r}")
            direct[head] = Component(component.name, {**component.options, **options})
        return dataclasses.replace(self, **direct)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Strategy:
        """The inverse of :meth:`to_dict` (e.g. a run's JSON sidecar); unknown fields raise ``ValueError``."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown strategy fields {sorted(unknown)}; fields: {', '.join(sorted(fields))}")
        values = dict(data)
        for key in _COMPONENT_FIELDS:
            values[key] = _component(key, values.get(key))
        if "learning_rate" in values:
            values["learning_rate"] = tuple(values["learning_rate"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in _COMPONENT_FIELDS:
            out[key] = out[key].to_dict() if out[key] is not None else None
        return out
