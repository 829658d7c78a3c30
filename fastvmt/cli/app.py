"""The typer application and its global options."""

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


def _version(value: Optional[bool]) -> None:
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
