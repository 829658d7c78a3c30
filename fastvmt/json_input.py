"""JSON that users, sidecars and checkpoints hand to fastvmt, read with bounded size and nesting.

Every such file (batch manifests, run sidecars, checkpoint configs and shard indexes, captions, ``--set`` values)
goes through :func:`read_json_text` / :func:`parse_json`, so a huge, binary, special or deeply nested file is one
``ValueError`` that names it, never an out-of-memory, a hang or a ``RecursionError`` traceback. (Writing JSON:
:func:`fastvmt.outputs.json_text`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["MAX_JSON_BYTES", "NotJSONError", "parse_json", "read_json", "read_json_text"]

#: The largest JSON file fastvmt reads: a manifest of 100k jobs is about 20 MiB, a sharded checkpoint's index
#: about 100 KiB, a sidecar a few KiB.
MAX_JSON_BYTES = 64 << 20


class NotJSONError(ValueError):
    """Text that is not JSON at all (a syntax error), as opposed to JSON too large or too deeply nested to read."""


def read_json_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path`` (``what`` names it in errors: e.g. "manifest"), reading at most
    :data:`MAX_JSON_BYTES` + 1 bytes, so a special file (``/dev/zero``, a FIFO) cannot fill memory.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a regular file, too large, or not UTF-8.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} is not a regular file")
    with path.open("rb") as file:
        data = file.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"{what} {str(path)!r} is larger than {MAX_JSON_BYTES >> 20} MiB, the most fastvmt reads "
                         "as JSON")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def parse_json(text: str, what: str) -> Any:
    """The value ``text`` holds; :class:`NotJSONError` naming ``what`` and the place when it is not JSON,
    ``ValueError`` when it is nested too deeply for Python's parser (``RecursionError``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        place = f"line {exc.lineno}, column {exc.colno}" if "\n" in text.rstrip("\n") else f"column {exc.colno}"
        raise NotJSONError(f"{what}: not valid JSON ({exc.msg} at {place})") from None
    except RecursionError:
        raise ValueError(f"{what}: JSON nested too deeply to read") from None


def read_json(path: str | Path, what: str) -> Any:
    """:func:`parse_json` of :func:`read_json_text`: the value in the JSON file ``path``."""
    return parse_json(read_json_text(path, what), f"{what} {str(path)!r}")
