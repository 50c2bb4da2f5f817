"""Annotated dependencies: the registry, the current user, and role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sanad.errors import AuthenticationFailed, Forbidden
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.users import user_for_token

SESSION_COOKIE = "sanad_session"
_bearer = HTTPBearer(auto_error=False)


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


class Principal:
    """The authenticated caller: a username and its roles."""

    def __init__(self, username: str, roles: frozenset[str]) -> None:
        self.username = username
        self.roles = roles


def get_principal(
    registry: RegistryDep,
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = creds.credentials if creds is not None else None
    if token is None and request.method in {"GET", "HEAD"}:
        # The web UI's session cookie works for safe API reads; writes need a bearer token
        # (so a cross-site form can never write through the cookie).
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthenticationFailed("bearer token required (POST /auth/token)")
    with transaction(registry.sessions) as session:
        user = user_for_token(session, token)
        return Principal(user.username, frozenset(user.roles))


CurrentUser = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits callers holding at least one of `roles`."""
    allowed = frozenset(r.value for r in roles)

    def check(principal: CurrentUser) -> Principal:
        if not principal.roles & allowed:
            raise Forbidden(f"this action needs one of the roles: {', '.join(sorted(allowed))}")
        return principal

    check.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the authz-matrix test
    return check
