"""Strategy configuration: which registered components a run uses and how guidance optimises.

A :class:`Strategy` is a frozen value; presets are registered by name and overridden field by field with
:meth:`Strategy.override` (``"loss.lambda_win"`` reaches into a component's options).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from fastvmt.values import check_flag, check_int, check_real

__all__ = [
    "CFG_SCALE_RANGE",
    "MAX_LEARNING_RATE",
    "STRENGTH_SEMANTICS",
    "TARGETS",
    "Component",
    "Strategy",
    "check_field",
]

#: Classifier-free guidance scales accepted: 0 (the negative prompt's velocity alone) to 100, 20 times Wan's
#: recommended 5; past it the guided velocity outgrows the latents by orders of magnitude at every step.
CFG_SCALE_RANGE = (0.0, 100.0)
#: The largest learning rate: Adam moves every latent element by about the rate per iteration and the latents have
#: unit variance, so a larger rate moves them by more than their spread each iteration (the presets use 0.001-0.003).
MAX_LEARNING_RATE = 1.0
#: How sampling starts at a denoising strength below 1 (docs/algorithm.md#guided-sampling): ``"diffsynth"`` spreads
#: all the steps over the sigmas from the strength down; ``"truncate"`` runs only the steps of the full schedule
#: whose sigmas are at most the strength, as image-to-image pipelines do.
STRENGTH_SEMANTICS = ("diffsynth", "truncate")
#: What guidance optimises (docs/algorithm.md#motion-embeddings): the latent, or the angles of the 3D RoPE rotation
#: every block applies to its self-attention q and k.
TARGETS = ("latent", "rope")


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


def _choice(*choices: str) -> Callable[[str, Any], str]:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value

    return check


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _blocks(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} is a list of DiT blocks, e.g. {name}=[0] ([] for none), got {value!r}")
    blocks = tuple(check_int(f"{name} block", block, low=0) for block in value)
    if len(set(blocks)) != len(blocks):
        raise ValueError(f"{name} names a block twice: {list(blocks)}")
    return tuple(sorted(blocks))


def _learning_rate(name: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name} is a (start, end) pair, e.g. {name}=[0.003,0.002] (both the same for a constant "
                         f"rate), got {value!r}")
    return tuple(check_real(f"{name} {end}", rate, low=0.0, high=MAX_LEARNING_RATE)
                 for end, rate in zip(("start", "end"), value))  # type: ignore[return-value]


def _step_cache(name: str, value: Any) -> float | None:
    if value is None:
        return None
    try:
        return check_real(name, value, low=0.0, low_open=True)
    except ValueError as exc:
        raise ValueError(f"{exc} (TeaCache's threshold, e.g. 0.2; None/null turns the step cache off)") from None


#: The rule of each non-component field: what its values must be, and their normal form.
_FIELD_RULES: dict[str, Callable[[str, Any], Any]] = {
    "name": _name,
    "block": lambda name, value: check_int(name, value, low=0),
    "optimizer": _choice("adamw", "adam"),
    "inner_iterations": lambda name, value: check_int(name, value, low=1),
    "learning_rate": _learning_rate,
    "lr_schedule": _choice("inner", "outer"),
    # AdamW scales the latent by 1 - lr * weight_decay: with both at most 1 it stays non-negative.
    "weight_decay": lambda name, value: check_real(name, value, low=0.0, high=1.0),
    "reference": _choice("per_step", "per_step_fresh", "once"),
    "denoising_strength": lambda name, value: check_real(name, value, low=0.0, high=1.0, low_open=True),
    "strength_semantics": _choice(*STRENGTH_SEMANTICS),
    "target": _choice(*TARGETS),
    "kv_injection": _blocks,
    "shift": lambda name, value: check_real(name, value, low=0.0, low_open=True),
    "cfg_scale": lambda name, value: check_real(name, value, low=CFG_SCALE_RANGE[0], high=CFG_SCALE_RANGE[1]),
    "guidance_checkpointing": check_flag,
    "step_cache": _step_cache,
}


def check_field(name: str, value: Any) -> Any:
    """``value`` in its normal form if it is valid for the strategy field ``name`` (e.g. a CLI's ``--cfg``, which
    replaces ``cfg_scale``); ``ValueError`` saying what it must be otherwise."""
    return _FIELD_RULES[name](name, value)


def _checked(strategy: Any, name: str, value: Any) -> Any:
    try:
        return check_field(name, value)
    except ValueError as exc:
        raise ValueError(f"strategy {strategy!r}: {exc}") from None


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
        reference: ``"per_step"`` re-extracts reference motion from the reference noised to every guided step
            with one noise drawn at the start; ``"per_step_fresh"`` likewise with new noise at every guided step
            (FlowMotion); ``"once"`` extracts it once from the clean reference latent at timestep 0 (DiTFlow).
        denoising_strength: where sampling starts, ``(0, 1]``; 1 starts from pure noise.
        strength_semantics: ``"diffsynth"`` runs every step from the strength down; ``"truncate"`` runs only the
            full schedule's steps from the strength down (about ``strength * num_steps``; ``STRENGTH_SEMANTICS``).
            Defaults to ``"diffsynth"``, what runs recorded before the field existed used.
        guidance_checkpointing: run the guidance forward's blocks before the captured one with activation
            checkpointing (docs/algorithm.md#memory): the backward recomputes them, so a guided step keeps about
            one activation per block instead of a block's worth, for one more forward of those blocks per
            gradient. Same gradients up to float rounding. Off by default (and in the presets).
        target: what guidance optimises (``TARGETS``): ``"latent"``, or ``"rope"``, an angle offset per token and
            rotary frequency added to the RoPE rotation of every block's q and k, warm-started from guided step to
            guided step, in effect during the guided steps only (docs/algorithm.md#motion-embeddings).
            ``learning_rate`` is the target's (radians per Adam step for ``"rope"``).
        kv_injection: DiT blocks whose self-attention keys and values come, during guided steps, from the
            reference noised to the step with the run's start noise and read with the prompt (DiTFlow's
            injection; empty: none).
        step_cache: TeaCache's threshold for the denoising velocities after the last guided step
            (docs/algorithm.md#step-cache), e.g. 0.2; ``None`` (the paper presets') computes every one.
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
    reference: Literal["per_step", "per_step_fresh", "once"]
    denoising_strength: float
    shift: float
    cfg_scale: float
    strength_semantics: Literal["diffsynth", "truncate"] = "diffsynth"
    guidance_checkpointing: bool = False
    target: Literal["latent", "rope"] = "latent"
    kv_injection: tuple[int, ...] = ()
    step_cache: float | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name not in _COMPONENT_FIELDS:
                object.__setattr__(self, f.name, _checked(self.name, f.name, getattr(self, f.name)))
        parts = (self.extractor, self.loss, self.scheduler)
        if any(p is None for p in parts) and not all(p is None for p in parts):
            raise ValueError(f"strategy {self.name!r}: extractor, loss and scheduler are all set or all None")

    @property
    def guided(self) -> bool:
        return self.extractor is not None

    def check_block(self, num_blocks: int) -> None:
        """``ValueError`` unless the captured block and the ``kv_injection`` blocks are among a backbone's
        ``num_blocks`` (any, when unguided)."""
        if self.guided and self.block >= num_blocks:
            raise ValueError(
                f"strategy {self.name!r} captures block {self.block} but the backbone has {num_blocks} blocks "
                f"(0..{num_blocks - 1}); override 'block'"
            )
        if self.guided and self.kv_injection and self.kv_injection[-1] >= num_blocks:
            raise ValueError(
                f"strategy {self.name!r} injects keys and values into block {self.kv_injection[-1]} but the "
                f"backbone has {num_blocks} blocks (0..{num_blocks - 1}); override 'kv_injection'"
            )

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
                direct[head] = _checked(self.name, head, value)
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
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.name not in data)
        if missing:
            raise ValueError(f"strategy fields missing: {', '.join(missing)}")
        name = data["name"]
        values = {key: _component(key, value) if key in _COMPONENT_FIELDS else _checked(name, key, value)
                  for key, value in data.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in _COMPONENT_FIELDS:
            out[key] = out[key].to_dict() if out[key] is not None else None
        return out
