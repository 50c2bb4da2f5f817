"""Web sessions and CSRF: shared by every page router.

Sessions are the same bearer tokens the API uses, carried in an HttpOnly, SameSite=Strict
cookie (Secure when the request came over TLS, directly or — with
SANAD_WEB_TRUST_FORWARDED_PROTO — through a proxy); forms carry a CSRF token (double-submit
cookie) checked on every POST by the `CsrfChecked` dependency.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from sanad.api.deps import SESSION_COOKIE, Principal, get_registry
from sanad.errors import AuthenticationFailed
from sanad.registry.db import transaction
from sanad.registry.persons import display_dob
from sanad.registry.runtime import Registry
from sanad.registry.users import user_for_token
from sanad.web import i18n

templates = Jinja2Templates(
    directory=Path(__file__).parent / "templates", context_processors=[i18n.context]
)
templates.env.filters["dob"] = lambda person: display_dob(person.date_of_birth,
                                                          person.dob_precision)
CSRF_COOKIE = "sanad_csrf"


def data_uris(photos: dict[uuid.UUID, tuple[bytes, str]]) -> dict[uuid.UUID, str]:
    """Photos inlined as data: URIs. Why inline: one audited read per page instead of one
    request per image (and nothing cached by the browser under a guessable URL)."""
    return {pid: f"data:{media};base64,{base64.b64encode(data).decode()}"
            for pid, (data, media) in photos.items()}


@dataclass(frozen=True)
class WebUser:
    username: str
    roles: frozenset[str]


class CsrfRejected(Exception):
    """A form POST without the matching CSRF token: the web handler answers 400."""


def is_secure(request: Request) -> bool:
    if request.url.scheme == "https":
        return True
    registry: Registry | None = getattr(request.app.state, "registry", None)
    trust = registry is not None and registry.settings.web_trust_forwarded_proto
    return trust and request.headers.get("x-forwarded-proto", "") == "https"


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


def check_csrf(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Dependency of every form POST (declared after the role check)."""
    if not csrf_ok(request, csrf):
        raise CsrfRejected()


CsrfChecked = Depends(check_csrf)


def render(
    request: Request, name: str, context: dict[str, Any], *, user: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the CSRF token, the signed-in user and their roles."""
    token = csrf_token(request)
    roles = user.roles if user else frozenset()

    def can(*wanted: str) -> bool:
        return bool(roles & set(wanted))

    ctx = {"csrf": token, "user": user.username if user else None, "roles": roles, "can": can,
           **context}
    page = templates.TemplateResponse(request, name, ctx, status_code=status_code)
    with_csrf(request, page, token)
    return page


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


RegistryOf = Annotated[Registry, Depends(get_registry)]
