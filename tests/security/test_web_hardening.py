"""Web hardening: security headers, CSRF, session fixation, lockout, SQL injection."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sanad.api.deps import SESSION_COOKIE
from sanad.app import create_app
from sanad.registry.models import AuditEvent, Person
from sanad.registry.users import MAX_FAILED_LOGINS
from sanad.web.session import CSRF_COOKIE
from tests import factories

INJECTIONS = [
    "' OR '1'='1",
    "1 OR 1=1",
    "'; DROP TABLE persons; --",
    "1' UNION SELECT username, password_hash FROM users --",
    "%' OR 1=1 --",
    "\") OR (\"1\"=\"1",
]


def _login_form(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "login form carries a CSRF token"
    return match.group(1)


def test_security_headers_on_pages_api_errors_and_static(client: TestClient) -> None:
    for path in ("/login", "/persons", "/no-such-page", "/static/sanad.css"):
        resp = client.get(path)
        h = resp.headers
        assert h["x-content-type-options"] == "nosniff", path
        assert h["x-frame-options"] == "DENY", path
        assert h["referrer-policy"] == "no-referrer", path
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path
        assert "unsafe-inline" not in csp, path
        assert "strict-transport-security" not in h, path  # plain HTTP: no HSTS
    assert client.get("/login").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/sanad.css").headers.get("cache-control", "")


def test_hsts_only_over_tls(registry) -> None:
    with TestClient(create_app(registry=registry), base_url="https://testserver") as tls:
        assert tls.get("/login").headers["strict-transport-security"].startswith("max-age=")


def test_login_form_rejects_a_missing_or_forged_csrf_token(client, initialised) -> None:
    _, password = initialised
    _login_form(client)
    for forged in ("", "forged-token"):
        resp = client.post("/login", data={"username": "admin", "password": password,
                                           "csrf": forged}, follow_redirects=False)
        # An empty field fails form validation (422) before the CSRF check (400): both refuse.
        assert resp.status_code == (422 if not forged else 400)
        assert SESSION_COOKIE not in resp.cookies


def test_cookie_session_cannot_write_through_the_api(client, initialised) -> None:
    _, password = initialised
    csrf = _login_form(client)
    resp = client.post("/login", data={"username": "admin", "password": password,
                                       "csrf": csrf}, follow_redirects=False)
    assert resp.status_code == 303
    # A cross-site form would carry the cookie, never a bearer token: writes need the token.
    rng = np.random.default_rng(1)
    write = client.post("/households", json=factories.household([1], rng))
    assert write.status_code == 401


def test_session_token_changes_at_login(client, initialised, registry) -> None:
    _, password = initialised
    planted = "attacker-chosen-session-value"
    client.cookies.set(SESSION_COOKIE, planted)
    assert client.get("/", follow_redirects=False).status_code in (302, 303)  # not signed in
    tokens = []
    for _ in range(2):
        csrf = client.cookies.get(CSRF_COOKIE) or _login_form(client)
        resp = client.post("/login", data={"username": "admin", "password": password,
                                           "csrf": csrf}, follow_redirects=False)
        assert resp.status_code == 303
        tokens.append(resp.cookies[SESSION_COOKIE])
    assert planted not in tokens and tokens[0] != tokens[1]
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


@pytest.mark.slow
@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # API lockout: tests/api too
def test_repeated_failures_lock_the_account(client, initialised, registry) -> None:
    _, password = initialised
    for _ in range(MAX_FAILED_LOGINS):
        bad = client.post("/auth/token", json={"username": "admin", "password": "wrong!"})
        assert bad.status_code == 401
    locked = client.post("/auth/token", json={"username": "admin", "password": password})
    assert locked.status_code == 401 and "locked" in locked.json()["detail"]
    csrf = _login_form(client)
    page = client.post("/login", data={"username": "admin", "password": password, "csrf": csrf},
                       follow_redirects=False)
    assert page.status_code == 401 and SESSION_COOKIE not in page.cookies
    with registry.sessions() as session:
        failures = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "user.login_failed"))
    assert failures == MAX_FAILED_LOGINS


def _parameterised_operations(app) -> list[tuple[str, str, list[dict[str, Any]]]]:
    ops = []
    for path, item in app.openapi()["paths"].items():
        for method, op in item.items():
            params = [p for p in op.get("parameters", []) if p["in"] in {"path", "query"}]
            if params and method in {"get", "post", "put", "patch", "delete"}:
                ops.append((method, path, params))
    return ops


@pytest.mark.parametrize("settings", ["sqlite", "postgres"], indirect=True)
def test_sql_injection_in_every_path_and_query_parameter(client, admin_headers, registry) -> None:
    rng = np.random.default_rng(5)
    enrolled = client.post("/households", json=factories.household([7, 8], rng),
                           headers=admin_headers)
    assert enrolled.status_code == 201, enrolled.text
    secrets_in_db = {"Al-Rashid", "Mohammad", "argon2"}
    ops = _parameterised_operations(client.app)
    assert ops, "the API has parameterised operations"
    tried = 0
    for method, path, params in ops:
        for param in params:
            for payload in INJECTIONS:
                url = path
                query: dict[str, str] = {}
                for p in params:
                    if p["in"] == "path":
                        url = url.replace("{" + p["name"] + "}", payload if p is param else "x")
                if param["in"] == "query":
                    query[param["name"]] = payload
                resp = client.request(method.upper(), url, params=query, headers=admin_headers)
                tried += 1
                assert resp.status_code < 500, (method, url, query, resp.text[:300])
                if resp.status_code < 400:
                    # Accepted as a harmless literal: it must not have matched anything.
                    for secret in secrets_in_db:
                        assert secret not in resp.text, (method, url, query)
                else:
                    assert resp.status_code in range(400, 500)
    assert tried >= len(INJECTIONS) * len(ops)
    with registry.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Person)) == 2
