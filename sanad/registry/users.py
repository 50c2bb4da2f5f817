"""Users, password login (argon2), bearer tokens (stored hashed, expiring), lockout and
role-scoped API keys for other systems."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.errors import AuthenticationFailed, InvalidInput, NotFound
from sanad.registry.access_models import ApiKey
from sanad.registry.db import utcnow
from sanad.registry.models import ApiToken, Role, User

_hasher = PasswordHasher()
TOKEN_LIFETIME = timedelta(hours=12)
MAX_FAILED_LOGINS = 10


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session, *, username: str, password: str, roles: list[str], actor: str
) -> User:
    """Create a user with the given roles (each must be a known `Role`)."""
    _check_roles(roles)
    if not username or len(username) > 80 or not username.isprintable() or username != \
            username.strip():
        raise InvalidInput("a username is 1 to 80 printable characters", field="username")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise InvalidInput(f"user {username!r} exists already", field="username")
    user = User(username=username, password_hash=_hasher.hash(password), roles=roles)
    session.add(user)
    session.flush()
    audit.record(
        session, actor=actor, action="user.create", subject_type="user",
        subject_id=str(user.id), details={"username": username, "roles": roles},
    )
    return user


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0


def login(session: Session, *, username: str, password: str) -> tuple[str, User, datetime]:
    """Check the password and mint a bearer token; the account locks after repeated failures."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        _hasher.hash(password)  # same cost whether or not the user exists
        raise AuthenticationFailed("wrong username or password")
    if user.failed_logins >= MAX_FAILED_LOGINS:
        raise AuthenticationFailed("account locked after repeated failed logins; ask an admin")
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError) as exc:
        user.failed_logins += 1
        audit.record(
            session, actor=username, action="user.login_failed", subject_type="user",
            subject_id=str(user.id),
        )
        raise AuthenticationFailed("wrong username or password") from exc
    user.failed_logins = 0
    token = secrets.token_urlsafe(32)
    expires = utcnow() + TOKEN_LIFETIME
    session.add(ApiToken(token_hash=_token_hash(token), user_id=user.id, expires_at=expires))
    audit.record(
        session, actor=username, action="user.login", subject_type="user", subject_id=str(user.id)
    )
    return token, user, expires


def user_for_token(session: Session, token: str) -> User:
    """The active user behind a bearer token, or `AuthenticationFailed`."""
    row = session.get(ApiToken, _token_hash(token))
    if row is None or row.expires_at <= utcnow():
        raise AuthenticationFailed("invalid or expired token")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise AuthenticationFailed("invalid or expired token")
    return user


def logout(session: Session, token: str) -> None:
    row = session.get(ApiToken, _token_hash(token))
    if row is not None:
        session.delete(row)


def _check_roles(roles: list[str]) -> None:
    unknown = [r for r in roles if r not in {x.value for x in Role}]
    if unknown:
        raise InvalidInput(f"unknown role(s): {', '.join(unknown)}", field="roles")
    if not roles:
        raise InvalidInput("at least one role is needed", field="roles")


def list_users(session: Session) -> list[User]:
    """Every user, by username."""
    return list(session.scalars(select(User).order_by(User.username)))


def get_user(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}")
    return user


def is_locked(user: User) -> bool:
    return user.failed_logins >= MAX_FAILED_LOGINS


def update_user(
    session: Session, *, user_id: uuid.UUID, actor: str, roles: list[str] | None = None,
    active: bool | None = None,
) -> User:
    """Change a user's roles and/or active flag; deactivating also ends their sessions."""
    user = get_user(session, user_id)
    changes: dict[str, object] = {}
    if roles is not None:
        _check_roles(roles)
        changes["roles"] = {"from": list(user.roles), "to": roles}
        user.roles = list(roles)
    if active is not None and active != user.active:
        changes["active"] = {"from": user.active, "to": active}
        user.active = active
        if not active:
            session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    audit.record(
        session, actor=actor, action="user.update", subject_type="user",
        subject_id=str(user.id), details=changes,
    )
    return user


def unlock_user(session: Session, *, user_id: uuid.UUID, actor: str, reason: str) -> User:
    """Lift a lockout after repeated failed logins; an admin must say why (audited)."""
    reason = reason.strip()
    if len(reason) < 3:
        raise InvalidInput("say why the account is unlocked", field="reason")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in reason) or len(reason) > 1000:
        raise InvalidInput("the reason holds control characters or is too long", field="reason")
    user = get_user(session, user_id)
    before = user.failed_logins
    user.failed_logins = 0
    audit.record(
        session, actor=actor, action="user.unlock", subject_type="user",
        subject_id=str(user.id), details={"reason": reason, "failed_logins": before},
    )
    return user


def reset_password(session: Session, *, user_id: uuid.UUID, actor: str) -> str:
    """Set a new one-time password (returned once), end the user's sessions and unlock."""
    user = get_user(session, user_id)
    password = secrets.token_urlsafe(12)
    user.password_hash = _hasher.hash(password)
    user.failed_logins = 0
    session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    audit.record(
        session, actor=actor, action="user.reset_password", subject_type="user",
        subject_id=str(user.id),
    )
    return password


# --- API keys for other systems -------------------------------------------------------------

API_KEY_PREFIX = "sk_"


def create_api_key(
    session: Session, *, name: str, roles: list[str], actor: str,
    rate_per_minute: int | None = None,
) -> tuple[str, ApiKey]:
    """Mint a role-scoped API key; the secret is returned once and stored only hashed."""
    _check_roles(roles)
    name = name.strip()
    if not name or len(name) > 80 or not name.isprintable():
        raise InvalidInput("a key needs a printable name of at most 80 characters",
                           field="name")
    if session.scalar(select(ApiKey).where(ApiKey.name == name)) is not None:
        raise InvalidInput(f"an API key named {name!r} exists already", field="name")
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name, prefix=prefix, key_hash=_token_hash(secret), roles=list(roles),
        rate_per_minute=rate_per_minute, created_by=actor,
    )
    session.add(key)
    session.flush()
    audit.record(
        session, actor=actor, action="api_key.create", subject_type="api_key",
        subject_id=str(key.id), details={"name": name, "roles": roles, "prefix": prefix},
    )
    return secret, key


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


def revoke_api_key(session: Session, *, key_id: uuid.UUID, actor: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(
            session, actor=actor, action="api_key.revoke", subject_type="api_key",
            subject_id=str(key.id), details={"name": key.name},
        )
    return key


def api_key_for_secret(session: Session, secret: str) -> ApiKey:
    """The live key behind `secret`, or `AuthenticationFailed`."""
    body = secret[len(API_KEY_PREFIX):]
    prefix, _, _ = body.partition("_")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if (
        key is None or key.revoked_at is not None
        or not hmac.compare_digest(key.key_hash, _token_hash(secret))
    ):
        raise AuthenticationFailed("invalid or revoked API key")
    return key


def new_password() -> str:
    """A one-time password for a new or reset account."""
    return secrets.token_urlsafe(12)
