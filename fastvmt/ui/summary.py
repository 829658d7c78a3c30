"""What the page says about a complete run: what ran, the counts and timings of its report, how to replay it."""

from __future__ import annotations

from typing import Any

from fastvmt.ui.runs import RunFiles

__all__ = ["run_summary"]


def run_summary(run: RunFiles, record: dict[str, Any]) -> str:
    """Markdown: the run's folder, strategy, size and seed, its gradient counts, seconds per phase, and the
    command that replays it."""
    config, counts, seconds = record["config"], record["counts"], record["seconds"]
    strategy = config["strategy"]["name"]
    phases = " · ".join(f"{phase} {value:.2f}" for phase, value in seconds.items())
    return "\n".join([
        f"**{run.name}** — `{strategy}`, {config['num_frames']} frames at {config['height']}x{config['width']}, "
        f"{config['num_inference_steps']} steps, seed {record['seed']}",
        "",
        f"- guided steps: {counts['guided_steps']} of {counts['steps']}; gradients computed "
        f"{counts['gradients_computed']}, reused {counts['gradients_reused']}; DiT blocks run forward "
        f"{counts['blocks_forward']}, backward {counts['blocks_backward']}",
        f"- seconds: {phases} (total {sum(seconds.values()):.2f})",
        f"- replay: `fastvmt transfer --config {run.sidecar} --out again.mp4`",
    ])
