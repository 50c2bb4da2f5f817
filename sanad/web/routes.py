"""Web pages: login, logout and the home page (population counts, latest enrolments)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sanad.api.deps import SESSION_COOKIE, RegistryDep
from sanad.errors import AuthenticationFailed
from sanad.registry.db import transaction
from sanad.registry.persons import population_summary
from sanad.registry.users import login, logout
from sanad.web.session import csrf_ok, csrf_token, current_user, is_secure, templates, with_csrf

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    token = csrf_token(request)
    page = templates.TemplateResponse(request, "login.html", {"csrf": token, "error": None})
    return with_csrf(request, page, token)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    registry: RegistryDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
) -> Response:
    if not csrf_ok(request, csrf):
        token = secrets.token_urlsafe(24)
        page = templates.TemplateResponse(
            request, "login.html", {"csrf": token, "error": "Your form expired; try again."},
            status_code=400,
        )
        return with_csrf(request, page, token)
    error: str | None = None
    with transaction(registry.sessions) as session:
        try:
            token, _, _ = login(session, username=username, password=password)
        except AuthenticationFailed as exc:
            error = exc.message
    if error is not None:
        page = templates.TemplateResponse(
            request, "login.html", {"csrf": csrf_token(request), "error": error},
            status_code=401,
        )
        return page
    response = RedirectResponse("/", status_code=303)
    # A fresh token per login: no session fixation.
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=is_secure(request),
        max_age=12 * 3600,
    )
    return response


@router.post("/logout")
def logout_submit(
    request: Request, registry: RegistryDep, csrf: Annotated[str, Form()]
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and csrf_ok(request, csrf):
        with transaction(registry.sessions) as session:
            logout(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, registry: RegistryDep) -> Response:
    user = current_user(request, registry)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    username = user.username
    with transaction(registry.sessions) as session:
        summary = population_summary(session)
    csrf = csrf_token(request)
    page = templates.TemplateResponse(
        request, "home.html", {"user": username, "s": summary, "csrf": csrf}
    )
    return with_csrf(request, page, csrf)
