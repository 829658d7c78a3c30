"""The built-in strategies: ``fastvmt`` (the paper), ``ditflow`` (the baseline on Wan), ``no_transfer``."""

from __future__ import annotations

from fastvmt.strategies.spec import Component, Strategy

__all__ = ["DITFLOW", "FASTVMT", "NO_TRANSFER", "PRESETS"]

FASTVMT = Strategy(
    name="fastvmt",
    extractor=Component(
        "windowed_amf", {"heads": "mean_qk", "sf": 4, "tile": (3, 4), "window": 21, "tau": 1.0, "pairs": "forward"}
    ),
    loss=Component("amf_window", {"lambda_amf": 5.0, "lambda_win": 1.0, "alpha": 0.2}),
    scheduler=Component("interval", {"every": 3, "guided_fraction": 0.2}),
    optimizer="adamw",
    inner_iterations=10,
    learning_rate=(0.003, 0.002),
    lr_schedule="inner",
    weight_decay=0.01,
    reference="per_step",
    denoising_strength=0.75,
)

DITFLOW = Strategy(
    name="ditflow",
    extractor=Component(
        "dense_amf", {"heads": "mean_logits", "sf": 4, "tau": 2.0, "pairs": "all", "reference_mode": "argmax"}
    ),
    loss=Component("masked_mse"),
    scheduler=Component("every", {"guided_fraction": 0.2}),
    optimizer="adam",
    inner_iterations=5,
    learning_rate=(0.002, 0.001),
    lr_schedule="outer",
    weight_decay=0.0,
    reference="once",
    denoising_strength=1.0,
)

NO_TRANSFER = Strategy(name="no_transfer", denoising_strength=0.75)

PRESETS = (FASTVMT, DITFLOW, NO_TRANSFER)
