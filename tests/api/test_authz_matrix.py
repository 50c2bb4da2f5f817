"""Authorization matrix: every route of the app × every role (and anonymous).

The routes come from `app.routes`, the expected access from each route's own declaration
(`require`, `require_page` or `public` in sanad/api/deps.py), so a new route is covered the
moment it exists, and a route that declares nothing fails here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from sanad.api.deps import Access, TokenBucket
from sanad.app import create_app
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.users import create_user, login

# Served by FastAPI/Starlette themselves, not by sanad code: documentation and static files.
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/static"}
PRINCIPALS = [None, *Role]


def _accesses(dependant: Any) -> Iterator[Access]:
    for dep in dependant.dependencies:
        access = getattr(dep.call, "sanad_access", None)
        if isinstance(access, Access):
            yield access
        yield from _accesses(dep)


def declared(route: APIRoute) -> Access:
    found = list(_accesses(route.dependant))
    assert found, f"{sorted(route.methods or ())} {route.path} declares no roles (require/public)"
    assert len({(a.roles, a.public) for a in found}) == 1, f"{route.path}: conflicting access"
    return found[0]


def _path(template: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(uuid.uuid4()) if name.endswith("_id") else "x"

    return re.sub(r"\{([^}:]+)(:[^}]+)?\}", fill, template)


def _app_routes(app: Any) -> list[tuple[str, APIRoute]]:
    """(full path, route) of every route, through included routers (FastAPI ≥ 0.160 keeps
    them as lazy `_IncludedRouter` entries; `iter_route_contexts` flattens them)."""
    routes = []
    for ctx in iter_route_contexts(app.routes):
        r = ctx.original_route
        path = str(ctx.path or getattr(r, "path", ""))
        if isinstance(r, APIRoute):
            routes.append((path, r))
        elif isinstance(r, Mount | Route):
            assert path in FRAMEWORK, f"{path} is not an APIRoute and not framework-served"
    return routes


def _denied(resp: Any, page: bool) -> bool:
    if resp.status_code in (401, 403):
        return True
    return page and resp.status_code == 303 and resp.headers.get("location") == "/login"


def test_every_route_declares_its_roles(registry: Registry) -> None:
    routes = _app_routes(create_app(registry=registry))
    assert len(routes) > 40
    for _template, route in routes:
        declared(route)


def test_authorization_matrix_has_no_unauthorised_success(registry: Registry) -> None:
    app = create_app(registry=registry)
    # The matrix sends a few hundred requests per user; rate limits are tested elsewhere.
    app.state.rate_limiter = TokenBucket(per_minute=10**9, burst=10**9)
    tokens: dict[Role, str] = {}
    with transaction(registry.sessions) as session:
        for role in Role:
            create_user(session, username=f"only-{role.value}", password="pw-" + role.value,
                        roles=[role.value], actor="test")
    def fresh_token(role: Role) -> str:
        with transaction(registry.sessions) as session:
            return login(session, username=f"only-{role.value}", password="pw-" + role.value)[0]

    for role in Role:
        tokens[role] = fresh_token(role)
    checked = 0
    unauthorised_successes: list[str] = []
    wrongly_denied: list[str] = []
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as client:
        for template, route in _app_routes(app):
            access = declared(route)
            path = _path(template)
            for method in sorted((route.methods or set()) - {"HEAD"}):
                for who in PRINCIPALS:
                    token = None
                    if who is not None:
                        token = fresh_token(who) if "logout" in path else tokens[who]
                    headers = {"Authorization": f"Bearer {token}"} if token and not access.page \
                        else {}
                    cookies = {"sanad_csrf": "matrix"}
                    if token:
                        cookies["sanad_session"] = token
                    client.cookies.clear()
                    for k, v in cookies.items():
                        client.cookies.set(k, v)
                    kwargs: dict[str, Any] = {"headers": headers}
                    if method in {"POST", "PATCH", "PUT"}:
                        if access.page or template in {"/login", "/logout"}:
                            kwargs["data"] = {"csrf": "matrix"}
                        else:
                            kwargs["json"] = {}
                    resp = client.request(method, path, **kwargs)
                    checked += 1
                    allowed = access.public or (
                        who is not None and who.value in access.roles
                    )
                    label = f"{method} {template} as {who.value if who else 'anonymous'}"
                    assert resp.status_code != 500, f"{label}: {resp.text[:200]}"
                    if not allowed and not _denied(resp, access.page):
                        unauthorised_successes.append(f"{label}: {resp.status_code}")
                    if allowed and _denied(resp, access.page):
                        wrongly_denied.append(f"{label}: {resp.status_code}")
    assert unauthorised_successes == []
    assert wrongly_denied == []
    assert checked > 40 * len(PRINCIPALS)


@pytest.mark.parametrize("roles", [[], ["admin"]])
def test_a_route_without_declared_roles_fails_the_matrix(roles: list[str]) -> None:
    """The checker itself: a route with no declaration is reported, one with one is not."""
    from fastapi import Depends, FastAPI

    from sanad.api.deps import require

    app = FastAPI()
    deps = [Depends(require(Role(r))) for r in roles]

    @app.get("/probe", dependencies=deps)
    def probe() -> dict[str, str]:
        return {}

    route = next(r for r in app.routes if isinstance(r, APIRoute))
    if roles:
        assert declared(route).roles == frozenset(roles)
    else:
        with pytest.raises(AssertionError, match="declares no roles"):
            declared(route)
