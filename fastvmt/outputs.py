"""Writing results safely: never clobber what a user has, never leave half-written files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["refuse_overwrite", "write_json"]


def refuse_overwrite(paths: Iterable[Path], overwrite: bool) -> None:
    """Raise ``FileExistsError`` naming every existing path, unless ``overwrite`` (call before any work)."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically: a temporary file beside ``path``, then a rename; an error or
    an interruption leaves ``path`` as it was and no temporary file."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(json.dumps(data, indent=2, default=str) + "\n")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path
