"""/users and /api-keys: user administration and role-scoped keys for systems (admin only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from sanad.api.deps import Principal, RegistryDep, require
from sanad.api.problems import problem_responses
from sanad.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    UnlockRequest,
    UserCreate,
    UserCreated,
    UserPublic,
    UserUpdate,
)
from sanad.registry import users as service
from sanad.registry.db import transaction
from sanad.registry.models import Role, User

router = APIRouter(tags=["users"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def _public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id, username=user.username, roles=list(user.roles), active=user.active,
        failed_logins=user.failed_logins, locked=service.is_locked(user),
        created_at=user.created_at,
    )


@router.get("/users", response_model=list[UserPublic], responses=problem_responses(401, 403))
def list_users(registry: RegistryDep, _admin: Admin) -> list[UserPublic]:
    """Every user with roles, active flag and lockout state."""
    with transaction(registry.sessions) as session:
        return [_public(u) for u in service.list_users(session)]


@router.post("/users", status_code=201, response_model=UserCreated,
             responses=problem_responses(401, 403, 422))
def create_user(body: UserCreate, registry: RegistryDep, admin: Admin) -> UserCreated:
    """Create a user; the response carries a one-time password (shown once)."""
    password = service.new_password()
    with transaction(registry.sessions) as session:
        user = service.create_user(
            session, username=body.username, password=password,
            roles=[r.value for r in body.roles], actor=admin.username,
        )
        return UserCreated(**_public(user).model_dump(), password=password)


@router.patch("/users/{user_id}", response_model=UserPublic,
              responses=problem_responses(401, 403, 404, 422))
def update_user(
    user_id: uuid.UUID, body: UserUpdate, registry: RegistryDep, admin: Admin
) -> UserPublic:
    """Change roles or deactivate (ends the user's sessions)."""
    with transaction(registry.sessions) as session:
        user = service.update_user(
            session, user_id=user_id, actor=admin.username,
            roles=[r.value for r in body.roles] if body.roles is not None else None,
            active=body.active,
        )
        return _public(user)


@router.post("/users/{user_id}/unlock", response_model=UserPublic,
             responses=problem_responses(401, 403, 404, 422))
def unlock_user(
    user_id: uuid.UUID, body: UnlockRequest, registry: RegistryDep, admin: Admin
) -> UserPublic:
    """Lift a lockout after repeated failed logins; the reason is audited."""
    with transaction(registry.sessions) as session:
        return _public(service.unlock_user(session, user_id=user_id, actor=admin.username,
                                           reason=body.reason))


@router.post("/users/{user_id}/password-reset", response_model=UserCreated,
             responses=problem_responses(401, 403, 404))
def reset_password(user_id: uuid.UUID, registry: RegistryDep, admin: Admin) -> UserCreated:
    """Issue a new one-time password; ends the user's sessions and unlocks the account."""
    with transaction(registry.sessions) as session:
        password = service.reset_password(session, user_id=user_id, actor=admin.username)
        user = service.get_user(session, user_id)
        return UserCreated(**_public(user).model_dump(), password=password)


@router.get("/api-keys", response_model=list[ApiKeyPublic], responses=problem_responses(401, 403))
def list_keys(registry: RegistryDep, _admin: Admin) -> list[ApiKeyPublic]:
    """Every API key (never the secret)."""
    with transaction(registry.sessions) as session:
        return [ApiKeyPublic.model_validate(k) for k in service.list_api_keys(session)]


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated,
             responses=problem_responses(401, 403, 422))
def create_key(body: ApiKeyCreate, registry: RegistryDep, admin: Admin) -> ApiKeyCreated:
    """Mint a role-scoped key for another system; the secret is in this response only."""
    with transaction(registry.sessions) as session:
        secret, key = service.create_api_key(
            session, name=body.name, roles=[r.value for r in body.roles], actor=admin.username,
            rate_per_minute=body.rate_per_minute,
        )
        return ApiKeyCreated(**ApiKeyPublic.model_validate(key).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyPublic,
               responses=problem_responses(401, 403, 404))
def revoke_key(key_id: uuid.UUID, registry: RegistryDep, admin: Admin) -> ApiKeyPublic:
    """Revoke a key at once (idempotent)."""
    with transaction(registry.sessions) as session:
        return ApiKeyPublic.model_validate(
            service.revoke_api_key(session, key_id=key_id, actor=admin.username)
        )
