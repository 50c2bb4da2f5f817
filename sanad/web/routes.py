"""Web pages: login, logout and the home page (population counts, latest enrolments).

Sessions are the same bearer tokens the API uses, carried in an HttpOnly, SameSite=Strict
cookie; forms carry a CSRF token (double-submit cookie) checked on every POST.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sanad.api.deps import SESSION_COOKIE, RegistryDep
from sanad.errors import AuthenticationFailed
from sanad.registry.db import transaction
from sanad.registry.persons import population_summary
from sanad.registry.users import login, logout, user_for_token

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
CSRF_COOKIE = "sanad_csrf"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _csrf_token(request: Request) -> str:
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)


def _with_csrf(request: Request, response: Response, token: str) -> Response:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


def _csrf_ok(request: Request, submitted: str) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie, submitted)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    token = _csrf_token(request)
    page = templates.TemplateResponse(request, "login.html", {"csrf": token, "error": None})
    return _with_csrf(request, page, token)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    registry: RegistryDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
) -> Response:
    if not _csrf_ok(request, csrf):
        token = secrets.token_urlsafe(24)
        page = templates.TemplateResponse(
            request, "login.html", {"csrf": token, "error": "Your form expired; try again."},
            status_code=400,
        )
        return _with_csrf(request, page, token)
    error: str | None = None
    with transaction(registry.sessions) as session:
        try:
            token, _, _ = login(session, username=username, password=password)
        except AuthenticationFailed as exc:
            error = exc.message
    if error is not None:
        page = templates.TemplateResponse(
            request, "login.html", {"csrf": _csrf_token(request), "error": error},
            status_code=401,
        )
        return page
    response = RedirectResponse("/", status_code=303)
    # A fresh token per login: no session fixation.
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
        max_age=12 * 3600,
    )
    return response


@router.post("/logout")
def logout_submit(
    request: Request, registry: RegistryDep, csrf: Annotated[str, Form()]
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and _csrf_ok(request, csrf):
        with transaction(registry.sessions) as session:
            logout(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, registry: RegistryDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return RedirectResponse("/login", status_code=303)
    with transaction(registry.sessions) as session:
        try:
            user = user_for_token(session, token)
        except AuthenticationFailed:
            return RedirectResponse("/login", status_code=303)
        username = user.username
        summary = population_summary(session)
    csrf = _csrf_token(request)
    page = templates.TemplateResponse(
        request, "home.html", {"user": username, "s": summary, "csrf": csrf}
    )
    return _with_csrf(request, page, csrf)
