"""The built-in strategies: ``fastvmt`` (the paper), ``ditflow`` (the baseline on Wan), ``flowmotion`` (guidance on
latent predictions, no backward through the DiT), ``fastvmt_flowmotion`` (both terms), ``fastvmt_turbo``
(``fastvmt`` with a truncated start), ``ditflow_full`` (``ditflow`` with DiTFlow's key/value injection) and
``no_transfer``.

This module is where their values live (docs/algorithm.md#presets), except the paper's AMF parameters, which are
the AMF ops' defaults (:mod:`fastvmt.ops`): the built-in components take their defaults from here, and the cost
model (:mod:`fastvmt.costmodel.recipes`) reads its recipes from these presets.
"""

from __future__ import annotations

from fastvmt.ops.amf import DEFAULT_SPAN, DEFAULT_TAU, DEFAULT_TILE, DEFAULT_WINDOW
from fastvmt.ops.losses import DEFAULT_ALPHA
from fastvmt.strategies.spec import Component, Strategy

__all__ = [
    "CAPTURED_BLOCK",
    "DITFLOW",
    "DITFLOW_FULL",
    "FASTVMT",
    "FASTVMT_FLOWMOTION",
    "FASTVMT_TURBO",
    "FLOWMOTION",
    "GUIDED_FRACTION",
    "NO_TRANSFER",
    "PRESETS",
]

#: The DiT block whose self-attention Q/K the presets capture: a middle block of the released Wan2.1 DiTs.
CAPTURED_BLOCK = 14

#: Share of the denoising steps, from the first, that the presets guide.
GUIDED_FRACTION = 0.2

FASTVMT = Strategy(
    name="fastvmt",
    extractor=Component(
        "windowed_amf",
        {
            "heads": "mean_qk",
            "sf": DEFAULT_SPAN,
            "tile": DEFAULT_TILE,
            "window": DEFAULT_WINDOW,
            "tau": DEFAULT_TAU,
            "pairs": "forward",
        },
    ),
    loss=Component("amf_window", {"lambda_amf": 5.0, "lambda_win": 1.0, "alpha": DEFAULT_ALPHA}),
    scheduler=Component("interval", {"every": 3, "guided_fraction": GUIDED_FRACTION}),
    block=CAPTURED_BLOCK,
    optimizer="adamw",
    inner_iterations=10,
    learning_rate=(0.003, 0.002),
    lr_schedule="inner",
    weight_decay=0.01,
    reference="per_step",
    denoising_strength=0.75,
    strength_semantics="diffsynth",
    shift=7.0,
    cfg_scale=5.8,
)

#: DiTFlow's guidance and optimiser on FastVMT's sampler (block, shift, CFG scale).
DITFLOW = FASTVMT.override(
    name="ditflow",
    extractor=Component(
        "dense_amf",
        {"heads": "mean_logits", "sf": DEFAULT_SPAN, "tau": 2.0, "pairs": "all", "reference_mode": "argmax"},
    ),
    loss=Component("masked_mse"),
    scheduler=Component("every", {"guided_fraction": GUIDED_FRACTION}),
    optimizer="adam",
    inner_iterations=5,
    learning_rate=(0.002, 0.001),
    lr_schedule="outer",
    weight_decay=0.0,
    reference="once",
    denoising_strength=1.0,
)

#: DiTFlow's defaults in full (docs/algorithm.md#motion-embeddings): ``ditflow`` with the reference's keys and values
#: injected into block 0 during the guided steps.
DITFLOW_FULL = DITFLOW.override(name="ditflow_full", kv_injection=(0,))

#: FlowMotion (docs/algorithm.md#flowmotion): guidance on the clean latent the velocity predicts, read without
#: gradient, so no backward through the DiT. Its own sampler: pure noise, shift 3, CFG 6 (denoising and guidance).
#: ``block`` is unused (the extractor reads no attention). ``reference="once"`` is the clean-latent variant.
FLOWMOTION = Strategy(
    name="flowmotion",
    extractor=Component("latent_prediction", {"gamma": 0.1}),
    loss=Component("latent_alignment", {"lambda_align": 20.0, "lambda_diff": 5.0}),
    scheduler=Component("every", {"guided_fraction": GUIDED_FRACTION}),
    block=CAPTURED_BLOCK,
    optimizer="adam",
    inner_iterations=3,
    learning_rate=(0.003, 0.003),
    lr_schedule="inner",
    weight_decay=0.0,
    reference="per_step_fresh",
    denoising_strength=1.0,
    strength_semantics="diffsynth",
    shift=3.0,
    cfg_scale=6.0,
)

#: FastVMT with a FlowMotion term: the windowed AMF and window losses plus the latent alignment and
#: frame-difference losses, each with its method's weight, on FastVMT's sampler and schedule.
FASTVMT_FLOWMOTION = FASTVMT.override(
    name="fastvmt_flowmotion",
    extractor=Component("windowed_amf_prediction", {**FASTVMT.extractor.options, **FLOWMOTION.extractor.options}),
    loss=Component("amf_window_alignment", {**FASTVMT.loss.options, **FLOWMOTION.loss.options}),
)

#: FastVMT whose sampling starts truncated at the same strength, 0.75 (docs/algorithm.md#presets): the full
#: schedule's last 37 of 50 steps instead of 50 steps spread below the strength, so 26 % fewer denoising forwards
#: and 7 guided steps instead of 10, over about the same noise levels; and the step cache (TeaCache at 0.2,
#: docs/algorithm.md#step-cache) on the unguided steps after the guided ones, which guidance never reads.
FASTVMT_TURBO = FASTVMT.override(name="fastvmt_turbo", strength_semantics="truncate", step_cache=0.2)

#: FastVMT's sampler without guidance: the baseline that shows what guidance adds.
NO_TRANSFER = FASTVMT.override(name="no_transfer", extractor=None, loss=None, scheduler=None)

PRESETS = (FASTVMT, DITFLOW, DITFLOW_FULL, FLOWMOTION, FASTVMT_FLOWMOTION, FASTVMT_TURBO, NO_TRANSFER)
