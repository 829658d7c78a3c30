"""Listings of what is registered: ``fastvmt plugins``."""

from __future__ import annotations

import typer

from fastvmt.cli.app import app


def echo_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print rows as left-aligned columns under a header."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@app.command()
def plugins() -> None:
    """List every registered component: kind, name and the plugin that provided it."""
    from fastvmt import plugins as registry

    echo_table(("kind", "name", "plugin"), [(r.kind, r.name, r.plugin) for r in registry.registry().registrations()])
