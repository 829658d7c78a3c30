"""Built-in strategies, extractors, losses and gradient schedulers, registered as a default plugin."""

from fastvmt.hookspecs import hookimpl


@hookimpl
def fastvmt_register_strategies(register):
    from fastvmt.strategies.presets import PRESETS

    for preset in PRESETS:
        register(preset.name, preset)


@hookimpl
def fastvmt_register_extractors(register):
    from fastvmt.strategies.extractors import DenseAMFExtractor, WindowedAMFExtractor

    register("windowed_amf", WindowedAMFExtractor)
    register("dense_amf", DenseAMFExtractor)


@hookimpl
def fastvmt_register_losses(register):
    from fastvmt.strategies.losses import AMFWindowLoss, MaskedMSELoss

    register("amf_window", AMFWindowLoss)
    register("masked_mse", MaskedMSELoss)


@hookimpl
def fastvmt_register_schedulers(register):
    from fastvmt.strategies import schedulers

    register("every", schedulers.EveryIteration)
    register("interval", schedulers.Interval)
    register("warmup_interval", schedulers.WarmupInterval)
    register("loss_plateau", schedulers.LossPlateau)
