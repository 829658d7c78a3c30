"""The public functional ops: AMF (dense and windowed), window positions, frame pairs and the losses.

Ops check their arguments, then run on the backend chosen by :func:`fastvmt.backends.select_backend`
(``backend=`` argument > :func:`use_backend` > ``FASTVMT_BACKEND`` > auto); no kernels live here.
"""

from fastvmt.backends.dispatch import use_backend
from fastvmt.checkmode import checks_active, checks_enabled
from fastvmt.ops.amf import (
    DEFAULT_SPAN,
    DEFAULT_TAU,
    DEFAULT_TILE,
    DEFAULT_WINDOW,
    WindowedAMF,
    full_amf,
    window_starts,
    windowed_amf,
)
from fastvmt.ops.losses import DEFAULT_ALPHA, amf_loss, masked_mse_loss, offset_weights, window_loss
from fastvmt.ops.pairs import frame_pairs

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_SPAN",
    "DEFAULT_TAU",
    "DEFAULT_TILE",
    "DEFAULT_WINDOW",
    "WindowedAMF",
    "amf_loss",
    "checks_active",
    "checks_enabled",
    "frame_pairs",
    "full_amf",
    "masked_mse_loss",
    "offset_weights",
    "use_backend",
    "window_loss",
    "window_starts",
    "windowed_amf",
]
