"""The ``fastvmt`` command line: one module per group of commands, all on one typer app."""

from fastvmt.cli.app import app
from fastvmt.cli import backends, batch, demo, evaluate, flow, listings, quality, transfer, ui  # noqa: F401  (commands)

__all__ = ["app", "main"]


def main() -> None:
    app()
