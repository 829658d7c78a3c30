"""The quality bar chart: one panel per metric, one bar per strategy, drawn with PIL (no plotting library)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jaxtyping import UInt8
from PIL import Image, ImageDraw, ImageFont

from fastvmt.evaluation.quality import METRICS, Metric, StrategyQuality

__all__ = ["quality_chart"]

#: Bar colours, one per strategy in order (Tableau 10).
COLORS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
_PANEL = (360, 250)
_COLUMNS = 3
_MARGIN = 16
_FONT = 14


def _font(size: int = _FONT) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _panel(draw: ImageDraw.ImageDraw, origin: tuple[int, int], metric: Metric,
           strategies: Sequence[StrategyQuality]) -> None:
    left, top = origin
    width, height = _PANEL
    font = _font()
    arrow = "higher is better" if metric.higher_is_better else "lower is better"
    draw.text((left + width / 2, top + 4), f"{metric.title} ({arrow})", fill="black", font=font, anchor="mt")
    values = [row.values[metric.key] for row in strategies]
    plot_top, plot_bottom = top + 44, top + height - 12
    plot_left, plot_right = left + 12, left + width - 12
    draw.rectangle((left, top, left + width - 1, top + height - 1), outline=(200, 200, 200))
    present = [value for value in values if value is not None]
    if not present:
        draw.text((left + width / 2, (plot_top + plot_bottom) / 2), "not computed", fill=(120, 120, 120),
                  font=font, anchor="mm")
        return
    low, high = min(0.0, *present), max(0.0, *present)
    span = (high - low) or 1.0
    high += 0.15 * span  # room for the labels above the bars (and "n/a" above the zero line)
    if low < 0:
        low -= 0.15 * span

    def y(value: float) -> float:
        return plot_bottom - (value - low) / (high - low) * (plot_bottom - plot_top)

    slot = (plot_right - plot_left) / len(strategies)
    for index, value in enumerate(values):
        x0 = plot_left + index * slot + 0.15 * slot
        x1 = plot_left + (index + 1) * slot - 0.15 * slot
        if value is None:
            draw.text(((x0 + x1) / 2, y(0.0) - 4), "n/a", fill=(120, 120, 120), font=_font(12), anchor="mb")
            continue
        draw.rectangle((x0, min(y(value), y(0.0)), x1, max(y(value), y(0.0))), fill=COLORS[index % len(COLORS)])
        label_y, anchor = (y(value) - 2, "mb") if value >= 0 else (y(value) + 2, "mt")
        draw.text(((x0 + x1) / 2, label_y), f"{value:.{metric.digits}f}", fill="black", font=_font(12),
                  anchor=anchor)
    draw.line((plot_left, y(0.0), plot_right, y(0.0)), fill="black", width=1)


def quality_chart(strategies: Sequence[StrategyQuality], title: str,
                  metrics: Sequence[Metric] = METRICS) -> UInt8[np.ndarray, "h w 3"]:
    """An RGB image: ``title``, a legend of the strategies' colours, then one panel per metric."""
    if not strategies:
        raise ValueError("a quality chart needs at least one strategy")
    rows = -(-len(metrics) // _COLUMNS)
    width = _COLUMNS * _PANEL[0] + (_COLUMNS + 1) * _MARGIN
    legend_rows = -(-len(strategies) // 3)
    header = 40 + 22 * legend_rows
    height = header + rows * (_PANEL[1] + _MARGIN) + _MARGIN
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((_MARGIN, 10), title, fill="black", font=_font(18))
    column_width = (width - 2 * _MARGIN) / 3
    for index, row in enumerate(strategies):
        x = _MARGIN + (index % 3) * column_width
        y = 38 + 22 * (index // 3)
        draw.rectangle((x, y, x + 14, y + 14), fill=COLORS[index % len(COLORS)])
        draw.text((x + 20, y + 7), f"{row.strategy} ({row.jobs} job{'s' if row.jobs != 1 else ''})",
                  fill="black", font=_font(), anchor="lm")
    for index, metric in enumerate(metrics):
        origin = (_MARGIN + (index % _COLUMNS) * (_PANEL[0] + _MARGIN),
                  header + (index // _COLUMNS) * (_PANEL[1] + _MARGIN))
        _panel(draw, origin, metric, strategies)
    return np.asarray(image, dtype=np.uint8)
