"""The hook implementations fastvmt calls: each registers components under a name.

Imports of the components happen inside the hooks, so listing plugins stays cheap (no torch at import).
"""

import fastvmt


@fastvmt.hookimpl
def fastvmt_register_schedulers(register):
    from fastvmt_plugin_example.schedulers import CosineSpaced

    register("cosine_spaced", CosineSpaced)


@fastvmt.hookimpl
def fastvmt_register_losses(register):
    from fastvmt_plugin_example.losses import CharbonnierAMFLoss

    register("charbonnier_amf", CharbonnierAMFLoss)


@fastvmt.hookimpl
def fastvmt_register_strategies(register):
    from fastvmt import Component
    from fastvmt.strategies.presets import FASTVMT

    register(
        "fastvmt_robust",
        FASTVMT.override(
            name="fastvmt_robust",
            scheduler=Component("cosine_spaced", {"computations": 4, "guided_fraction": 0.2}),
            loss=Component("charbonnier_amf", {"epsilon": 0.1, "lambda_amf": 5.0, "lambda_win": 1.0, "alpha": 0.2}),
        ),
    )
