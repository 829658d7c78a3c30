"""``fastvmt backends``: each registered AMF backend and whether it can run on this machine, with the reason."""

from __future__ import annotations

from typing import Optional

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import user_errors
from fastvmt.cli.listings import echo_table

#: Shape of the probe case, ``(F, H, W, D)``: small, with the spec's head_dim.
_PROBE_SHAPE = (2, 6, 8, 128)


@app.command()
@user_errors
def backends(
    device: Optional[str] = typer.Option(None, help="Device to check: cpu, cuda, cuda:1 [default: cuda if present]"),
    dtype: str = typer.Option("float32", help="Feature dtype to check: float32, float16, bfloat16, float64."),
) -> None:
    """List every registered AMF backend, the ops it implements and whether it can run them here, and why not."""
    import torch

    from fastvmt.backends.base import Case
    from fastvmt.backends.dispatch import backend_named
    from fastvmt.plugins import names

    from fastvmt.backbones.wan import resolve_device

    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
        raise ValueError(f"--dtype {dtype!r} is not a torch floating dtype (float32, float16, bfloat16, float64)")
    where = resolve_device(device)
    rows = []
    for name in names("backend"):
        backend = backend_named(name)
        runs, reason = _availability(backend, lambda op: Case(op, where, torch_dtype, _PROBE_SHAPE, True))
        rows.append((name, str(where), dtype, runs, ",".join(sorted(backend.ops)), reason))
    echo_table(("backend", "device", "dtype", "runs", "ops", "reason"), rows)


def _availability(backend, case_for) -> tuple[str, str]:
    """``("yes" | "partly" | "no", reason)`` over the backend's ops, ``case_for(op)`` giving each op's case."""
    refusals = {}
    for op in sorted(backend.ops):
        ok, reason = backend.supports(case_for(op))
        if not ok:
            refusals[op] = reason
    if not refusals:
        return "yes", "-"
    if len(refusals) < len(backend.ops):
        return "partly", "; ".join(f"{op}: {reason}" for op, reason in refusals.items())
    return "no", "; ".join(dict.fromkeys(refusals.values()))
