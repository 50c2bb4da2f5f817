"""`sanad user …`: manage users."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from sanad.cli._common import actor, group, print_json, registry

user_app = group("user", "Manage users.")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[list[str], typer.Option(help="Role (repeatable).")],
) -> None:
    """Create a user with roles; prints a generated one-time password once."""
    from sanad.registry.db import transaction
    from sanad.registry.users import create_user

    password = secrets.token_urlsafe(12)
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            create_user(session, username=username, password=password, roles=role,
                        actor=actor())
    finally:
        reg.close()
    print_json({"username": username, "roles": role, "password": password})
