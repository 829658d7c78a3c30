"""User errors become one line on stderr and exit code 2, a run that turned non-finite one line and exit code 3;
nothing else is swallowed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from fastvmt.json_input import NotJSONError, parse_json

__all__ = ["EXIT_NON_FINITE", "EXIT_USER_ERROR", "USER_ERRORS", "check_choice", "parse_overrides", "user_errors"]

F = TypeVar("F", bound=Callable[..., Any])

#: Exceptions that mean "the input is wrong", reported without a traceback.
#: (ImportError: an optional package a command needs is not installed; the message names it.)
USER_ERRORS = (ValueError, LookupError, FileNotFoundError, FileExistsError, NotADirectoryError, ImportError)
#: The exit code of bad input.
EXIT_USER_ERROR = 2
#: The exit code of a run stopped because a number turned NaN or infinite (``FloatingPointError``, e.g.
#: :class:`fastvmt.generation.finite.NonFiniteError`): the input passed every check, the computation diverged.
EXIT_NON_FINITE = 3


def user_errors(command: F) -> F:
    """Report :data:`USER_ERRORS` as ``error: ...`` with exit code 2, a non-finite run the same way with exit code
    3, and Ctrl-C as an interruption (130)."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as exc:
            message = exc.args[0] if isinstance(exc, LookupError) and exc.args else exc
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None
        except FloatingPointError as exc:
            typer.echo(f"error: {exc}; nothing was written", err=True)
            raise typer.Exit(EXIT_NON_FINITE) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: nothing was written", err=True)
            raise typer.Exit(130) from None

    return run  # type: ignore[return-value]


def parse_overrides(pairs: list[str], *, option: str = "--set", example: str = "extractor.window=11") -> dict[str, Any]:
    """``["extractor.window=11", "loss.lambda_win=0"]`` -> ``{"extractor.window": 11, "loss.lambda_win": 0}``.

    Values are read as JSON when they parse (numbers, lists as tuples, booleans), else kept as strings;
    ``option`` and ``example`` word the error for a malformed pair.
    """
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} takes KEY=VALUE (e.g. {example}), got {pair!r}")
        try:
            value = parse_json(raw, f"the value of {option} {key.strip()}")
        except NotJSONError:
            value = raw
        overrides[key.strip()] = tuple(value) if isinstance(value, list) else value
    return overrides


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    """``ValueError`` naming the choices when ``value`` is not one of them (before any work)."""
    if value not in choices:
        raise ValueError(f"{option} must be one of {', '.join(choices)}, got {value!r}")

