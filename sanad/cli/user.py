"""`sanad user …`: manage users, lockouts and API keys (the same services as the admin pages
and `/users`, `/api-keys`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sanad.cli._common import actor, group, parse_uuid, print_json, registry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sanad.registry.models import User

user_app = group("user", "Manage users, lockouts and API keys.")


def _by_name(session: Session, username: str) -> User:
    from sanad.errors import NotFound
    from sanad.registry.users import list_users

    for user in list_users(session):
        if user.username == username:
            return user
    raise NotFound(f"no user named {username!r}")


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[list[str], typer.Option(help="Role (repeatable).")],
) -> None:
    """Create a user with roles; prints a generated one-time password once."""
    from sanad.registry.db import transaction
    from sanad.registry.users import create_user, new_password

    password = new_password()
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            create_user(session, username=username, password=password, roles=role,
                        actor=actor())
    finally:
        reg.close()
    print_json({"username": username, "roles": role, "password": password})


@user_app.command("list")
def user_list() -> None:
    """List users with roles, active flag and lockout state (one JSON object per line)."""
    from sanad.registry.db import transaction
    from sanad.registry.users import is_locked, list_users

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            for u in list_users(session):
                print_json({"username": u.username, "roles": u.roles, "active": u.active,
                            "locked": is_locked(u), "failed_logins": u.failed_logins})
    finally:
        reg.close()


@user_app.command("unlock")
def user_unlock(
    username: str,
    reason: Annotated[str, typer.Option(help="Why the account is unlocked (audited).")],
) -> None:
    """Lift a lockout after repeated failed logins; the reason goes to the audit log."""
    from sanad.registry.db import transaction
    from sanad.registry.users import unlock_user

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            user = _by_name(session, username)
            unlock_user(session, user_id=user.id, actor=actor(), reason=reason)
    finally:
        reg.close()
    print_json({"username": username, "unlocked": True})


@user_app.command("key-create")
def key_create(
    name: str,
    role: Annotated[list[str], typer.Option(help="Role (repeatable).")],
    rate_per_minute: Annotated[
        int | None, typer.Option(min=1, help="Own rate limit (default: the setting).")
    ] = None,
) -> None:
    """Create a role-scoped API key for another system; prints the secret once."""
    from sanad.registry.db import transaction
    from sanad.registry.users import create_api_key

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            secret, key = create_api_key(session, name=name, roles=role, actor=actor(),
                                         rate_per_minute=rate_per_minute)
            key_id = str(key.id)
    finally:
        reg.close()
    print_json({"id": key_id, "name": name, "roles": role, "key": secret})


@user_app.command("key-revoke")
def key_revoke(key_id: str) -> None:
    """Revoke an API key at once."""
    from sanad.registry.db import transaction
    from sanad.registry.users import revoke_api_key

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            revoke_api_key(session, key_id=parse_uuid(key_id, "key_id"), actor=actor())
    finally:
        reg.close()
    print_json({"id": key_id, "revoked": True})
