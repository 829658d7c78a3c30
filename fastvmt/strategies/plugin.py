"""Built-in strategies, extractors, losses and gradient schedulers, registered as a default plugin."""

from fastvmt.hookspecs import hookimpl


@hookimpl
def fastvmt_register_strategies(register):
    from fastvmt.strategies.presets import PRESETS

    for preset in PRESETS:
        register(preset.name, preset)


@hookimpl
def fastvmt_register_extractors(register):
    from fastvmt.strategies import extractors

    register("windowed_amf", extractors.WindowedAMFExtractor)
    register("dense_amf", extractors.DenseAMFExtractor)
    register("latent_prediction", extractors.LatentPredictionExtractor)
    register("windowed_amf_prediction", extractors.WindowedAMFPredictionExtractor)


@hookimpl
def fastvmt_register_losses(register):
    from fastvmt.strategies import losses

    register("amf_window", losses.AMFWindowLoss)
    register("masked_mse", losses.MaskedMSELoss)
    register("latent_alignment", losses.LatentAlignmentLoss)
    register("amf_window_alignment", losses.AMFWindowAlignmentLoss)


@hookimpl
def fastvmt_register_schedulers(register):
    from fastvmt.strategies import schedulers

    register("every", schedulers.EveryIteration)
    register("interval", schedulers.Interval)
    register("warmup_interval", schedulers.WarmupInterval)
    register("loss_plateau", schedulers.LossPlateau)
