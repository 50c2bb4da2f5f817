"""Shared pieces of the command line: the root Typer app, output helpers, settings."""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from typing import Any

import typer
from rich.console import Console

from sanad.config import Settings
from sanad.errors import InvalidInput
from sanad.registry.runtime import Registry

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="sanad: refugee registration and smart identity cards.",
)
err = Console(stderr=True)


def group(name: str, help_text: str) -> typer.Typer:
    """A sub-command group (one per organ) registered on the root app."""
    sub = typer.Typer(no_args_is_help=True, help=help_text)
    app.add_typer(sub, name=name)
    return sub


def settings() -> Settings:
    return Settings()


def actor() -> str:
    """Audit identity of a CLI user."""
    return f"cli:{getpass.getuser()}"


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def registry() -> Registry:
    from sanad.registry.runtime import open_registry

    return open_registry(settings())


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{field} is not a UUID: {value!r}", field=field) from None
