"""The ``fastvmt`` command line."""

from __future__ import annotations

from typing import Optional

import typer

import fastvmt

app = typer.Typer(
    name="fastvmt",
    help="Training-free video motion transfer on video diffusion transformers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fastvmt {fastvmt.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Training-free video motion transfer on video diffusion transformers."""


@app.command()
def plugins() -> None:
    """List every registered component: kind, name and the plugin that provided it."""
    from fastvmt import plugins as registry

    rows = [(r.kind, r.name, r.plugin) for r in registry.registry().registrations()]
    widths = [max(len(row[i]) for row in rows + [("kind", "name", "plugin")]) for i in range(3)]
    for row in [("kind", "name", "plugin"), *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def main() -> None:
    app()
