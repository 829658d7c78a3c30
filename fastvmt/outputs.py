"""Writing results safely: nothing a user gave is written over, every file is written atomically.

Every file fastvmt writes goes through :func:`atomic_outputs`. Each target gets its own hidden temporary file
beside it, ``.NAME.<12 hex>.fastvmt-tmp.SUFFIX``, created exclusively (two writers never share one). A group of
files (a video and its sidecar) is renamed into place in order once all are written; an error or Ctrl-C removes
the temporaries and the group's files already renamed, so a group is left whole or not at all. The first write
into a folder removes the temporaries that killed runs left there (:func:`clean_stale_temporaries`).

:func:`refuse_inputs` refuses, before any work, an output that is one of the command's inputs (after resolving
symlinks and relative paths) or lies inside an input folder (an image sequence): ``--overwrite`` never applies.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "TEMPORARY_MARK",
    "OutputIsInputError",
    "atomic_outputs",
    "clean_stale_temporaries",
    "encode_png",
    "json_text",
    "refuse_inputs",
    "refuse_overwrite",
    "write_atomically",
    "write_json",
    "write_png",
]

#: What every temporary file fastvmt writes has in its name, before the target's suffix.
TEMPORARY_MARK = ".fastvmt-tmp"
#: Names of temporaries: ours, and those of earlier fastvmt versions (``.NAME.<8 hex>.tmp.mp4``,
#: ``.NAME.json.partial``).
TEMPORARY_NAMES = (
    re.compile(rf"\..+\.[0-9a-f]{{12}}{re.escape(TEMPORARY_MARK)}(\.[A-Za-z0-9]+)?"),
    re.compile(r"\..+\.[0-9a-f]{8}\.tmp\.mp4"),
    re.compile(r"\..+\.json\.partial"),
)
#: A temporary is stale when last modified this long before this process first imported fastvmt.outputs (a
#: margin for writers that started just before this process).
STALE_MARGIN_SECONDS = 60.0
_PROCESS_START = time.time()
_cleaned: set[Path] = set()
_cleaned_lock = threading.Lock()


class OutputIsInputError(ValueError):
    """An output path that is one of the command's inputs, or lies in an input folder."""


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def refuse_inputs(outputs: Iterable[str | Path], inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """Raise :class:`OutputIsInputError` if an output is an input file (same resolved path or same file) or lies
    directly in an input folder; ``inputs`` are ``(what, path)`` pairs such as ``("reference video", path)``
    (None paths are skipped). Call before any work: ``--overwrite`` does not lift this."""
    files: dict[Any, tuple[str, Path]] = {}
    folders: dict[Any, tuple[str, Path]] = {}
    for what, given in inputs:
        if given is None:
            continue
        path = Path(given)
        table = folders if path.is_dir() else files
        for key in (path.resolve(), _identity(path)):
            if key is not None:
                table[key] = (what, path)
    for output in map(Path, outputs):
        resolved = output.resolve()
        hit = files.get(resolved) or files.get(_identity(output))
        if hit is not None:
            raise OutputIsInputError(
                f"the output {output} is the {hit[0]} {hit[1]}; fastvmt never writes over its inputs (not even "
                "with --overwrite): choose another output path"
            )
        hit = folders.get(resolved.parent) or folders.get(_identity(output.parent))
        if hit is not None:
            raise OutputIsInputError(
                f"the output {output} would be written into the {hit[0]} folder {hit[1]}; fastvmt never writes "
                "into its inputs: choose another output path"
            )


def refuse_overwrite(paths: Iterable[Path], overwrite: bool) -> None:
    """Raise ``FileExistsError`` naming every existing path, unless ``overwrite`` (call before any work)."""
    existing = [str(p) for p in paths if Path(p).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")


def clean_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporaries (:data:`TEMPORARY_NAMES`) in ``folder`` last modified before this process started
    (:data:`STALE_MARGIN_SECONDS` earlier); return them. Other files, and fresh temporaries (a write in progress
    in another process), are kept."""
    removed = []
    cutoff = _PROCESS_START - STALE_MARGIN_SECONDS
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if not any(pattern.fullmatch(entry.name) for pattern in TEMPORARY_NAMES):
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _clean_once(folder: Path) -> None:
    """:func:`clean_stale_temporaries` the first time this process writes into ``folder``."""
    key = folder.resolve()
    with _cleaned_lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    clean_stale_temporaries(key)


def _new_temporary(path: Path) -> Path:
    """A new, empty, hidden file beside ``path``, created exclusively (permissions as the umask allows)."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMPORARY_MARK}{path.suffix}")
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temporary
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_outputs(paths: Sequence[str | Path], *, overwrite: bool = True) -> Iterator[list[Path]]:
    """Temporary paths for ``paths``, to write inside the block; when it ends, each is renamed onto its path in
    order, the last one last (a group's completion mark).

    An error or interruption at any point removes every temporary and the targets already renamed: the group
    is written whole or not at all (targets it replaces are then gone too). Before the first rename, existing
    targets after the first are removed, so an old last file never sits beside a new first one.

    Raises:
        FileExistsError: a target exists when the block ends and ``overwrite`` is false.
    """
    targets = [Path(p) for p in paths]
    for folder in dict.fromkeys(target.parent for target in targets):
        _clean_once(folder)
    temporaries: list[Path] = []
    renamed: list[Path] = []
    try:
        for target in targets:
            temporaries.append(_new_temporary(target))
        yield list(temporaries)
        existing = [str(target) for target in targets if target.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{', '.join(existing)} appeared while writing; pass --overwrite to replace")
        for target in targets[1:]:
            target.unlink(missing_ok=True)
        for temporary, target in zip(temporaries, targets):
            os.replace(temporary, target)
            renamed.append(target)
    except BaseException:
        for target in renamed:
            target.unlink(missing_ok=True)
        raise
    finally:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)


def write_atomically(path: str | Path, write: Callable[[Path], object], *, overwrite: bool = True) -> Path:
    """``write(temporary)``, then rename it onto ``path`` (:func:`atomic_outputs` for one file)."""
    with atomic_outputs([path], overwrite=overwrite) as (temporary,):
        write(temporary)
    return Path(path)


def json_text(data: Any) -> str:
    """``data`` as fastvmt writes JSON: indented, non-JSON values as ``str``, a final newline."""
    return json.dumps(data, indent=2, default=str) + "\n"


def write_json(path: str | Path, data: Any, *, overwrite: bool = True) -> Path:
    """Write ``data`` as JSON (:func:`json_text`) atomically."""
    return write_atomically(path, lambda temporary: temporary.write_text(json_text(data)), overwrite=overwrite)


def encode_png(path: str | Path, image: Any) -> None:
    """Write a ``(H, W, 3)`` uint8 image as a PNG into the file ``path`` as it is (a temporary of a group)."""
    import imageio.v3 as iio

    iio.imwrite(path, image, extension=".png")


def write_png(path: str | Path, image: Any, *, overwrite: bool = True) -> Path:
    """Write a ``(H, W, 3)`` uint8 image as a PNG atomically."""
    return write_atomically(path, lambda temporary: encode_png(temporary, image), overwrite=overwrite)
