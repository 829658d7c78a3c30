"""AMF backends (reference, torch, triton) and the dispatch between them."""

from fastvmt.backends.base import AMFBackend, Case
from fastvmt.backends.dispatch import BackendUnavailable, backend_named, select_backend, use_backend

__all__ = ["AMFBackend", "BackendUnavailable", "Case", "backend_named", "select_backend", "use_backend"]
