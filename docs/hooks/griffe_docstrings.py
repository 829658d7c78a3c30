"""griffe extension: renders the package's docstring conventions cleanly in the API reference.

- Sphinx cross-reference roles (``:class:`Backbone```, ``:func:`~fastvmt.ops.full_amf```) become code, showing
  the last dotted name for ``~`` as Sphinx does.
- Doctest lines (``>>> ...`` and their output) become ``pycon`` code blocks, without ``# doctest:`` directives
  (Markdown would read ``>>>`` as nested quotes).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
DIRECTIVE = re.compile(r"\s*# doctest:.*$")


def _plain(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _fence_doctests(text: str) -> str:
    """Wrap each run of doctest lines (a ``>>>`` line, its ``...`` continuations and output) in a fence."""
    out: list[str] = []
    in_session = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">>>"):
            if not in_session:
                out.append("```pycon")
                in_session = True
            out.append(DIRECTIVE.sub("", stripped))
        elif in_session and stripped:
            out.append(DIRECTIVE.sub("", stripped))  # continuation or expected output
        else:
            if in_session:
                out.append("```")
                in_session = False
            out.append(line)
    if in_session:
        out.append("```")
    return "\n".join(out)


class DocstringConventions(griffe.Extension):
    """Rewrites each docstring once, when its object is created."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        text = ROLE.sub(_plain, obj.docstring.value)
        if ">>>" in text:
            text = _fence_doctests(text)
        obj.docstring.value = text
