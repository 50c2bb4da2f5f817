"""Users, password login (argon2) and bearer tokens (stored hashed, expiring)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.errors import AuthenticationFailed, InvalidInput
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
    unknown = [r for r in roles if r not in {x.value for x in Role}]
    if unknown:
        raise InvalidInput(f"unknown role(s): {', '.join(unknown)}", field="roles")
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
