"""Web sessions and CSRF: shared by every page router.

Sessions are the same bearer tokens the API uses, carried in an HttpOnly, SameSite=Strict
cookie; forms carry a CSRF token (double-submit cookie) checked on every POST.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from sanad.api.deps import SESSION_COOKIE
from sanad.errors import AuthenticationFailed
from sanad.registry.db import transaction
from sanad.registry.runtime import Registry
from sanad.registry.users import user_for_token

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
CSRF_COOKIE = "sanad_csrf"


@dataclass(frozen=True)
class WebUser:
    username: str
    roles: frozenset[str]


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def csrf_token(request: Request) -> str:
    """The form token for this browser (reuses the cookie's, or mints one)."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def with_csrf(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_secure(request)
    )
    return response


def csrf_ok(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie, submitted)


def current_user(request: Request, registry: Registry) -> WebUser | None:
    """The signed-in user behind the session cookie, or None (caller redirects to /login)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with transaction(registry.sessions) as session:
        try:
            user = user_for_token(session, token)
        except AuthenticationFailed:
            return None
        return WebUser(user.username, frozenset(user.roles))
