"""Check mode: whether the AMF ops and kernels scan their inputs for NaN/Inf and out-of-range indices.

Scanning costs a pass over the inputs (and a device sync), so it runs only when asked: environment variable
``FASTVMT_CHECKS=1``, or inside ``with fastvmt.checks_enabled():`` (``checks_enabled(False)`` turns it off
inside a block).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["ENV_CHECKS", "checks_active", "checks_enabled"]

ENV_CHECKS = "FASTVMT_CHECKS"
_enabled: ContextVar[bool | None] = ContextVar("fastvmt_checks", default=None)


@contextmanager
def checks_enabled(enabled: bool = True) -> Iterator[None]:
    """Turn check mode (the NaN/Inf scans of the inputs) on or off inside the block."""
    token = _enabled.set(bool(enabled))
    try:
        yield
    finally:
        _enabled.reset(token)


def checks_active() -> bool:
    """Whether check mode is on: the innermost ``checks_enabled`` block, else ``FASTVMT_CHECKS=1``."""
    enabled = _enabled.get()
    if enabled is not None:
        return enabled
    return os.environ.get(ENV_CHECKS, "").strip().lower() in ("1", "true", "yes", "on")
