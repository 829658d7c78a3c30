"""Listings of what is registered or loadable: ``fastvmt plugins``, ``fastvmt strategies``, ``fastvmt backbones``."""

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


@app.command()
def strategies() -> None:
    """List the registered strategies and what each is made of."""
    from fastvmt import plugins as registry

    def describe(component) -> str:
        if component is None:
            return "-"
        options = ",".join(f"{k}={v}" for k, v in component.options.items())
        return f"{component.name}({options})"

    rows = []
    for name in registry.names("strategy"):
        s = registry.get("strategy", name)
        rows.append((name, describe(s.extractor), describe(s.loss), describe(s.scheduler),
                     str(s.inner_iterations if s.guided else "-"), str(s.denoising_strength)))
    echo_table(("strategy", "extractor", "loss", "scheduler", "inner", "strength"), rows)


@app.command()
def backbones() -> None:
    """List the Wan model families the wan backbone loads: releases, whether runs take --image, and the files each
    checkpoint directory needs (as released)."""
    from fastvmt.backbones.families import FAMILIES

    rows = [(f.name, f.title, ", ".join(f.releases), "yes" if f.takes_image else "no", "; ".join(f.files()))
            for f in FAMILIES.values()]
    echo_table(("family", "title", "releases", "--image", "files"), rows)
