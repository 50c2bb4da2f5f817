"""/auth: exchange a username and password for a bearer token; who am I; log out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.security import HTTPAuthorizationCredentials

from sanad.api.deps import ALL_ROLES, Principal, Public, RegistryDep, _bearer, require
from sanad.api.problems import problem_responses
from sanad.errors import AuthenticationFailed
from sanad.registry.db import transaction
from sanad.registry.schemas import TokenPublic, TokenRequest
from sanad.registry.users import login, logout

router = APIRouter(prefix="/auth", tags=["auth"])
AnyUser = Annotated[Principal, Depends(require(*ALL_ROLES))]


@router.post(
    "/token", response_model=TokenPublic, dependencies=[Public],
    responses=problem_responses(401, 422),
)
def token(body: TokenRequest, registry: RegistryDep) -> TokenPublic:
    """Log in; the token lasts 12 hours. Failed attempts are audited and lock the account
    after 10 in a row (an admin unlocks it with a reason: POST /users/{id}/unlock)."""
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


@router.get("/me", responses=problem_responses(401, 403))
def me(user: AnyUser) -> dict[str, object]:
    """The caller's name and roles (a user or an API key)."""
    return {"username": user.username, "roles": sorted(user.roles)}


@router.post("/logout", status_code=204, responses=problem_responses(401, 403))
def end_session(
    registry: RegistryDep, _user: AnyUser,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """Revoke the bearer token used for this request."""
    if creds is not None:
        with transaction(registry.sessions) as session:
            logout(session, creds.credentials)
    return Response(status_code=204)
