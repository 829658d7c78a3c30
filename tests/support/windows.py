"""Comparing window corners computed by different code paths."""


#: How close (in tokens) a float64 coarse centre must be to a rounding boundary for summation order to matter.
ROUNDING_MARGIN = 1e-9


def assert_window_starts_agree(actual, expected, centres, margin=ROUNDING_MARGIN):
    """Corners ``(N, P, 2)`` equal, except where the coarse centre lies within ``margin`` of a half token.

    There the summation order of the coarse pass (backend, CPU) may round either way, so the corners may
    differ by one token; anywhere else a difference is a bug.
    """
    near_half = ((centres - centres.floor()) - 0.5).abs() < margin
    differ = actual != expected
    assert not (differ & ~near_half).any(), f"window corners differ away from a rounding boundary: {differ.sum()}"
    assert ((actual - expected).abs() <= 1).all(), "window corners differ by more than one token"
