"""What the page asks for, turned into a run's settings, job and strategy overrides with the CLI's own checks.

The page shows a strategy's main options (scheduler, guided fraction, window, tile, strength, CFG) filled
from the registered preset; :class:`StrategyFields` says which of them a strategy has. A :class:`RunForm` holds
the page's values; :meth:`RunForm.overrides` keeps only the options the chosen strategy has, and the
:class:`~fastvmt.transfer_run.TransferSettings` and :class:`~fastvmt.transfer_run.TransferJob` it builds are
checked by the same code as ``fastvmt transfer``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastvmt.cli.errors import parse_overrides
from fastvmt.strategies.spec import Component, Strategy
from fastvmt.transfer_run import TransferJob, TransferSettings

__all__ = ["GEOMETRY_RULES", "RunForm", "StrategyFields", "geometry_note"]

#: The size rules, as the page explains them beside the frame count, height and width.
GEOMETRY_RULES = (
    "**Frames: 4k+1** (5, 9, 13, ..., 81): Wan's VAE keeps the first frame and folds every next 4 into one latent "
    "frame. **Height and width: multiples of 16**: the VAE shrinks by 8, then the DiT groups 2x2 latent pixels "
    "into one token. The reference is centre-cropped to this aspect ratio, resized and trimmed to its first frames."
)


def _option(kind: str, component: Component | None, option: str) -> Any:
    """``component``'s ``option``: its own value, else its constructor's default; None when it has no such option."""
    from fastvmt import plugins

    if component is None:
        return None
    if option in component.options:
        return component.options[option]
    parameter = inspect.signature(plugins.get(kind, component.name)).parameters.get(option)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


@dataclass(frozen=True)
class StrategyFields:
    """A strategy's values for the page's strategy options; None where the strategy has no such option."""

    scheduler: str | None
    guided_fraction: float | None
    window: int | None
    tile: tuple[int, int] | None
    denoising_strength: float
    cfg_scale: float

    @classmethod
    def of(cls, strategy: Strategy) -> StrategyFields:
        tile = _option("extractor", strategy.extractor, "tile")
        return cls(
            scheduler=strategy.scheduler.name if strategy.scheduler is not None else None,
            guided_fraction=_option("scheduler", strategy.scheduler, "guided_fraction"),
            window=_option("extractor", strategy.extractor, "window"),
            tile=tuple(tile) if tile is not None else None,
            denoising_strength=strategy.denoising_strength,
            cfg_scale=strategy.cfg_scale,
        )

    @classmethod
    def of_preset(cls, name: str) -> StrategyFields:
        """The fields of the registered preset ``name`` (``LookupError`` listing the presets if unknown)."""
        from fastvmt import plugins

        return cls.of(plugins.get("strategy", name))


def geometry_note(num_frames: Any, height: Any, width: Any) -> str:
    """One line for the page: the token grid of a valid size, else the check's message naming the nearest
    valid values (the messages ``fastvmt transfer`` prints)."""
    from fastvmt.geometry import token_grid
    from fastvmt.io import check_num_frames, check_size

    try:
        frames = check_num_frames(_whole("frames", num_frames))
        pixels = check_size("height", _whole("height", height)), check_size("width", _whole("width", width))
        grid = token_grid(frames, *pixels)
    except (ValueError, TypeError) as error:
        return f"**error:** {error}"
    return f"token grid {grid.frames} x {grid.height} x {grid.width} (latent frames x rows x columns)"


def _whole(name: str, value: Any) -> int:
    """A page number as an int: ``ValueError`` for an empty field or a fraction."""
    if value is None or value == "":
        raise ValueError(f"{name} is empty; enter a number")
    if float(value) != int(value):
        raise ValueError(f"{name} must be a whole number, got {value}")
    return int(value)


@dataclass(frozen=True)
class RunForm:
    """The page's inputs for one run. ``None`` in ``negative_prompt`` means Wan's default; option fields the
    strategy does not have are ignored; ``more_overrides`` holds ``KEY=VALUE`` lines (``--set``'s syntax);
    ``image`` is the first frame to move (an image-to-video model only; None: the reference's first frame)."""

    reference: str | Path | None
    prompt: str
    strategy: str
    num_frames: Any
    height: Any
    width: Any
    num_inference_steps: Any
    seed: Any
    negative_prompt: str | None = None
    scheduler: str | None = None
    guided_fraction: float | None = None
    window: Any = None
    tile_rows: Any = None
    tile_cols: Any = None
    denoising_strength: float | None = None
    cfg_scale: float | None = None
    more_overrides: str = ""
    image: str | Path | None = None

    def check_inputs(self) -> None:
        """``ValueError`` for a missing reference or prompt, before anything is read."""
        if self.reference is None or not str(self.reference).strip():
            raise ValueError("no reference video: upload one or pick one")
        if not self.prompt or not self.prompt.strip():
            raise ValueError("the prompt is empty: describe the video to generate")

    def overrides(self) -> dict[str, Any]:
        """Strategy overrides: the page's options that the chosen strategy (with the chosen scheduler) has, then
        the ``KEY=VALUE`` lines, which win."""
        from fastvmt import plugins

        preset = plugins.get("strategy", self.strategy)
        overrides: dict[str, Any] = {}
        scheduler = preset.scheduler
        if preset.guided and self.scheduler and self.scheduler != scheduler.name:
            overrides["scheduler"] = self.scheduler
            scheduler = Component(self.scheduler)
        if self.guided_fraction is not None and _option("scheduler", scheduler, "guided_fraction") is not None:
            overrides["scheduler.guided_fraction"] = float(self.guided_fraction)
        if self.window is not None and _option("extractor", preset.extractor, "window") is not None:
            overrides["extractor.window"] = _whole("window", self.window)
        if None not in (self.tile_rows, self.tile_cols) and _option("extractor", preset.extractor, "tile"):
            overrides["extractor.tile"] = (_whole("tile rows", self.tile_rows), _whole("tile columns", self.tile_cols))
        lines = [line.strip() for line in self.more_overrides.splitlines() if line.strip()]
        return {**overrides, **parse_overrides(lines, option="more overrides")}

    def settings(self, base: TransferSettings) -> TransferSettings:
        """``base`` (the served model's settings) with this form's values, checked as ``fastvmt transfer`` checks
        its options."""
        values: dict[str, Any] = {
            "strategy": self.strategy,
            "overrides": self.overrides(),
            "num_frames": _whole("frames", self.num_frames),
            "height": _whole("height", self.height),
            "width": _whole("width", self.width),
            "num_inference_steps": _whole("steps", self.num_inference_steps),
            "seed": _whole("seed", self.seed),
            "denoising_strength": self.denoising_strength,
            "cfg_scale": self.cfg_scale,
            "negative_prompt": self.negative_prompt or None,
        }
        options = {**{name: getattr(base, name) for name in base.__dataclass_fields__}, **values}
        return TransferSettings.from_options(options).check()

    def job(self, reference: str | Path, image: str | Path | None = None) -> TransferJob:
        """The job of this form, reading its reference from ``reference`` and its image from ``image`` (the run
        folder's copies)."""
        return TransferJob(reference, self.prompt.strip(), image=image)
