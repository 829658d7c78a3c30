"""What the page says about a complete run: what ran, the counts and timings of its report, how to replay it."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from fastvmt.transfer_run import TransferSettings
from fastvmt.ui.runs import RunFiles

__all__ = ["replay_command", "run_summary"]

#: The model options a sidecar does not record, with the flag that sets each.
_MODEL_FLAGS = {"dtype": "--dtype", "device": "--device", "offload": "--offload"}


def replay_command(run: RunFiles, settings: TransferSettings) -> str:
    """``fastvmt transfer --config`` on the run's sidecar, with the model options the server was started with
    where they are not the defaults (the sidecar does not record them)."""
    defaults = {f.name: f.default for f in fields(TransferSettings)}
    flags = []
    for name, flag in _MODEL_FLAGS.items():
        value = getattr(settings, name)
        if value != defaults[name]:
            flags.append(flag if isinstance(value, bool) else f"{flag} {value}")
    return " ".join(["fastvmt transfer --config", str(run.sidecar), *flags, "--out again.mp4"])


def run_summary(run: RunFiles, record: dict[str, Any], settings: TransferSettings) -> str:
    """Markdown: the run's folder, strategy, size and seed, its gradient counts, seconds per phase, and the
    command that replays it on the server's ``settings``."""
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
        f"- replay: `{replay_command(run, settings)}`",
    ])
