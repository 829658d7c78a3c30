"""The ``fastvmt`` command line: one module per group of commands, all on one typer app."""

from fastvmt.cli.app import app
from fastvmt.cli import listings  # noqa: F401  (registers commands)
from fastvmt.cli import backends  # noqa: F401
from fastvmt.cli import evaluate  # noqa: F401  (eval, bench cost)

__all__ = ["app", "main"]


def main() -> None:
    app()
