"""Web pages: login, logout, language, the dashboard; includes every other page router.

`install(app)` registers the web's own error pages: no session → redirect to /login, a
missing role → a 403 page, a failed CSRF check → 400. (API errors stay problem+json.)
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sanad.api.deps import (
    ALL_ROLES,
    SESSION_COOKIE,
    PageAuthRequired,
    PageForbidden,
    Principal,
    Public,
    RegistryDep,
    require_page,
)
from sanad.errors import AuthenticationFailed
from sanad.registry.dashboard import dashboard
from sanad.registry.db import transaction
from sanad.registry.persons import population_summary
from sanad.registry.users import login, logout
from sanad.web import admin, cards, cases, charts, enrol, i18n, people
from sanad.web.session import (
    CsrfRejected,
    csrf_ok,
    is_secure,
    render,
    templates,
    with_csrf,
)

router = APIRouter(include_in_schema=False)
AnyUser = Annotated[Principal, Depends(require_page(*ALL_ROLES))]


@router.get("/login", response_class=HTMLResponse, dependencies=[Public])
def login_page(request: Request) -> Response:
    return render(request, "login.html", {"error": None})


@router.post("/login", response_class=HTMLResponse, dependencies=[Public])
def login_submit(
    request: Request,
    registry: RegistryDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()],
) -> Response:
    t = i18n.translator(i18n.language(request))
    if not csrf_ok(request, csrf):
        token = secrets.token_urlsafe(24)
        page = templates.TemplateResponse(
            request, "login.html", {"csrf": token, "error": t("auth.expired")}, status_code=400,
        )
        return with_csrf(request, page, token)
    error: str | None = None
    with transaction(registry.sessions) as session:
        try:
            token, _, _ = login(session, username=username, password=password)
        except AuthenticationFailed as exc:
            error = exc.message
    if error is not None:
        return render(request, "login.html", {"error": error}, status_code=401)
    response = RedirectResponse("/", status_code=303)
    # A fresh token per login: no session fixation.
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=is_secure(request),
        max_age=12 * 3600,
    )
    return response


@router.post("/logout", dependencies=[Public])
def logout_submit(
    request: Request, registry: RegistryDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token and csrf_ok(request, csrf):
        with transaction(registry.sessions) as session:
            logout(session, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/language", dependencies=[Public])
def set_language(request: Request, lang: str = "en", next: str = "/") -> Response:
    """Remember the interface language in a cookie and go back to the page."""
    # Only a local path: never an open redirect.
    target = next if next.startswith("/") and not urlsplit(next).netloc else "/"
    target = target if not target.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    if lang in i18n.CATALOGUES:
        response.set_cookie(i18n.LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax",
                            secure=is_secure(request))
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, registry: RegistryDep, user: AnyUser) -> Response:
    """The dashboard: population by province, district, sex, age; enrolments; dedup outcomes."""
    t = i18n.translator(i18n.language(request))
    rtl = i18n.direction(i18n.language(request)) == "rtl"
    with transaction(registry.sessions) as session:
        d = dashboard(session)
        recent = population_summary(session).recent
    sexes = [(t(f"sex.{k}"), n) for k, n in d.by_sex]
    outcomes = [(t(f"outcome.{k}"), n) for k, n in d.dedup_outcomes]
    days = [(day.isoformat(), n) for day, n in d.enrolments_per_day]
    svg = {
        "province": charts.bar_chart(t("dash.by_province"), d.by_province, chart_id="ch-province",
                                     rtl=rtl),
        "district": charts.bar_chart(t("dash.by_district"), d.by_district, chart_id="ch-district",
                                     rtl=rtl),
        "sex": charts.bar_chart(t("dash.by_sex"), sexes, chart_id="ch-sex", rtl=rtl),
        "age": charts.bar_chart(t("dash.by_age"), d.by_age, chart_id="ch-age", rtl=rtl),
        "days": charts.column_chart(t("dash.per_day"), days, chart_id="ch-days", rtl=rtl),
        "dedup": charts.bar_chart(t("dash.dedup"), outcomes, chart_id="ch-dedup", rtl=rtl),
    }
    return render(request, "home.html", {"d": d, "recent": recent, "svg": svg, "sexes": sexes,
                                         "outcomes": outcomes}, user=user)


for _sub in (enrol.router, cases.router, people.router, cards.router, admin.router):
    router.include_router(_sub)


def install(app: FastAPI) -> None:
    """Register the web error pages (see the module docstring)."""

    @app.exception_handler(PageAuthRequired)
    async def _login(request: Request, _exc: PageAuthRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> Response:
        user = Principal(exc.username, frozenset())
        return render(request, "forbidden.html", {"needed": ", ".join(sorted(exc.roles))},
                      user=user, status_code=403)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _exc: CsrfRejected) -> Response:
        t = i18n.translator(i18n.language(request))
        return render(request, "error.html", {"status": 400, "message": t("auth.expired")},
                      status_code=400)
