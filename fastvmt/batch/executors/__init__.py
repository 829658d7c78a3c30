"""Executors run a batch's pending jobs: in this process (``local``) or on a Ray cluster (``ray``)."""

from fastvmt.batch.executors.base import Executor
from fastvmt.batch.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor", "RayExecutor"]


def __getattr__(name: str):
    if name == "RayExecutor":  # imported on use: ray is an optional dependency
        from fastvmt.batch.executors.ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
