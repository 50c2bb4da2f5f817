"""POST /auth/token: exchange a username and password for a bearer token."""

from __future__ import annotations

from fastapi import APIRouter

from sanad.api.deps import RegistryDep
from sanad.errors import AuthenticationFailed
from sanad.registry.db import transaction
from sanad.registry.schemas import TokenPublic, TokenRequest
from sanad.registry.users import login

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/token", response_model=TokenPublic, responses={401: {"description": "Wrong credentials"}}
)
def token(body: TokenRequest, registry: RegistryDep) -> TokenPublic:
    """Log in; the token lasts 12 hours. Failed attempts are audited and lock the account."""
    # Failed logins must be counted even though the request fails, so commit first, raise after.
    failure: AuthenticationFailed | None = None
    with transaction(registry.sessions) as session:
        try:
            tok, user, expires = login(session, username=body.username, password=body.password)
            roles = list(user.roles)
        except AuthenticationFailed as exc:
            failure = exc
    if failure is not None:
        raise failure
    return TokenPublic(access_token=tok, expires_at=expires, roles=roles)
