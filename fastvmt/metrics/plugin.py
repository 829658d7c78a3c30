"""Built-in trackers of the metrics, registered as a default plugin."""

from fastvmt.hookspecs import hookimpl


@hookimpl
def fastvmt_register_trackers(register):
    from fastvmt.metrics.trackers.cotracker import CoTrackerTracker
    from fastvmt.metrics.trackers.lk import LucasKanadeTracker

    register("lk", LucasKanadeTracker)
    register("cotracker", CoTrackerTracker)
