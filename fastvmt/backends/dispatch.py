"""Choosing the AMF backend of an op call.

Precedence: the op's ``backend=`` argument > ``with fastvmt.use_backend(name)`` > environment variable
``FASTVMT_BACKEND`` > ``auto``. ``auto`` takes ``triton`` for CUDA tensors when it can run the case, else
``torch``; ``reference`` is only ever used when asked for. A backend that was asked for by name and cannot run
the case raises (no silent fallback); ``auto`` logs each rejection's reason at DEBUG.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from collections.abc import Iterator

from fastvmt import plugins
from fastvmt.backends.base import AMFBackend, Case

__all__ = ["BackendUnavailable", "backend_named", "select_backend", "use_backend"]

log = logging.getLogger(__name__)
ENV_BACKEND = "FASTVMT_BACKEND"
_active: ContextVar[str | None] = ContextVar("fastvmt_backend", default=None)


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run this case."""


@contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Run the ops inside the block on backend ``name`` (``"auto"`` restores automatic choice)."""
    if name != "auto":
        backend_named(name)  # unknown names fail here, not at the first op
    token = _active.set(name)
    try:
        yield
    finally:
        _active.reset(token)


@cache
def _instance(cls: type[AMFBackend]) -> AMFBackend:
    return cls()


def backend_named(name: str) -> AMFBackend:
    """The registered backend ``name`` (``LookupError`` listing the available ones otherwise)."""
    return _instance(plugins.get("backend", name))


def _auto_candidates(case: Case) -> list[str]:
    return (["triton"] if case.device.type == "cuda" else []) + ["torch"]


def select_backend(case: Case, requested: str | None = None) -> AMFBackend:
    """The backend to run ``case`` on, following the precedence above."""
    name = requested or _active.get() or os.environ.get(ENV_BACKEND) or "auto"
    if name != "auto":
        backend = backend_named(name)
        ok, reason = backend.supports(case)
        if not ok:
            raise BackendUnavailable(f"backend {name!r} cannot run {case.op} on {case.device}/{case.dtype}: {reason}")
        return backend
    available = plugins.names("backend")
    for candidate in _auto_candidates(case):
        if candidate not in available:
            log.debug("auto backend: %s is not registered", candidate)
            continue
        backend = backend_named(candidate)
        ok, reason = backend.supports(case)
        if ok:
            return backend
        log.debug("auto backend: %s rejected %s: %s", candidate, case.op, reason)
    raise BackendUnavailable(f"no backend can run {case.op} on {case.device}/{case.dtype}; registered: {available}")
