"""The typer application and its global options."""

from __future__ import annotations

import sys
from typing import Any, Optional

import typer
from typer.core import TyperGroup

import fastvmt

try:  # typer vendors click since 0.2x; before, it used click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions


class _OneLineErrors(TyperGroup):
    """Reports the command line's own errors (an option that does not parse, a missing argument, an unknown
    option) as one ``error: ...`` line with exit code 2, like every other input error, instead of a usage box."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_exceptions.NoArgsIsHelpError as error:
            error.show()
            sys.exit(error.exit_code)
        except click_exceptions.ClickException as error:
            where = f" (see '{error.ctx.command_path} --help')" if getattr(error, "ctx", None) is not None else ""
            typer.echo(f"error: {error.format_message()}{where}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="fastvmt",
    cls=_OneLineErrors,
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
