"""Point trackers for the motion-fidelity metric: the ``Tracker`` extension point and the built-ins."""

from fastvmt.metrics.trackers.base import Tracker, Tracks

__all__ = ["Tracker", "Tracks"]
