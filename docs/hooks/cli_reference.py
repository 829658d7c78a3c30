"""mkdocs hook: replaces ``<!-- fastvmt-cli-reference -->`` in a page with the reference of every command.

The reference is read from the typer application itself (usage, help text, arguments and options with their
defaults), so the page cannot drift from ``fastvmt COMMAND --help``.
"""

from __future__ import annotations

import html
from collections.abc import Iterator

MARKER = "<!-- fastvmt-cli-reference -->"


def _subcommands(command, context) -> list[str]:
    """Visible subcommand names of a group (typer ships its own click: test for the method, not the class)."""
    if not hasattr(command, "list_commands"):
        return []
    return [name for name in command.list_commands(context) if not command.get_command(context, name).hidden]


def _commands(command, context) -> Iterator[tuple[object, object]]:
    """``(command, context)`` of ``command`` and of every subcommand, depth first, in help order."""
    yield command, context
    for name in _subcommands(command, context):
        sub = command.get_command(context, name)
        yield from _commands(sub, sub.context_class(sub, info_name=name, parent=context))


def _cell(text: str, *, code: bool = False) -> str:
    """One table cell: a single line, pipes escaped, and outside code ``<``/``>`` shown, not read as HTML."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if code else html.escape(text, quote=False)


def command_reference(command, context) -> str:
    """Markdown of one command: heading, usage, help, and a table of its parameters."""
    path = context.command_path
    lines = [f"## `{path}`", "", "```text", command.get_usage(context).strip(), "```", ""]
    if command.help:
        lines += [html.escape(command.help.strip(), quote=False), ""]
    records = [param.get_help_record(context) for param in command.get_params(context)]
    rows = [record for record in records if record is not None]
    if rows:
        lines += ["| argument / option | description |", "|---|---|"]
        lines += [f"| `{_cell(flags, code=True)}` | {_cell(text)} |" for flags, text in rows]
        lines.append("")
    names = _subcommands(command, context)
    if names:
        lines += ["Commands: " + ", ".join(f"`{path} {name}`" for name in names) + ".", ""]
    return "\n".join(lines)


def cli_reference() -> str:
    """The reference of ``fastvmt`` and all its commands, as Markdown."""
    import typer.main

    from fastvmt.cli import app

    root = typer.main.get_command(app)
    context = root.context_class(root, info_name="fastvmt")
    return "\n".join(command_reference(command, ctx) for command, ctx in _commands(root, context))


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
