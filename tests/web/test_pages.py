"""Web pages without a browser: i18n catalogue completeness, `dir="auto"` on every text field,
CSRF on every form POST, user administration (lockout + audited unlock), status changes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.api.deps import Access
from sanad.app import create_app
from sanad.registry.models import AuditEvent
from sanad.registry.runtime import Registry
from sanad.registry.users import MAX_FAILED_LOGINS
from sanad.web import i18n
from sanad.web.session import check_csrf
from tests import factories
from tests.web.conftest import web_login

TEMPLATES = Path(__file__).resolve().parents[2] / "sanad" / "web" / "templates"
MINE = [p for p in TEMPLATES.glob("*.html") if p.name != "checkpoint.html"]


def test_every_key_used_by_a_template_exists_in_every_language() -> None:
    used: set[str] = set()
    for path in MINE:
        text = path.read_text()
        used |= set(re.findall(r"""_\(\s*["']([a-z_]+\.[A-Za-z_.]+)["']\s*\)""", text))
        # Keys built from a prefix and a value: "outcome." ~ r.outcome and the like.
        for prefix in re.findall(r"""_\(\s*["']([a-z_]+\.)["']\s*~""", text):
            used |= {k for k in i18n.EN if k.startswith(prefix)}
    assert len(used) > 60
    for lang, catalogue in i18n.CATALOGUES.items():
        missing = sorted(used - set(catalogue))
        assert missing == [], f"{lang} lacks {missing}"
    assert set(i18n.UR) == set(i18n.EN)


def test_every_text_field_has_dir_auto() -> None:
    checked = 0
    for path in MINE:
        for tag in re.findall(r"<(?:input|textarea)\b[^>]*>", path.read_text(), re.S):
            kind = re.search(r'type="([a-z]+)"', tag)
            if kind and kind.group(1) in {"hidden", "checkbox", "radio", "file", "date",
                                          "password", "{{"}:
                continue
            checked += 1
            assert 'dir="auto"' in tag, f"{path.name}: {tag}"
    # Member fields go through one macro, which carries dir="auto" for every text input.
    assert 'dir="auto"' in (TEMPLATES / "_member_fields.html").read_text()
    assert checked >= 10


def test_every_page_form_post_checks_csrf(registry: Registry) -> None:
    app = create_app(registry=registry)
    posts = 0
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute) or "POST" not in (route.methods or set()):
            continue
        accesses = [getattr(d.call, "sanad_access", None) for d in route.dependant.dependencies]
        if not any(isinstance(a, Access) and a.page for a in accesses):
            continue
        posts += 1
        calls = [d.call for d in route.dependant.dependencies]
        assert check_csrf in calls, f"{ctx.path} accepts a form POST without a CSRF check"
    assert posts >= 8


def test_a_form_post_without_the_csrf_token_changes_nothing(
    client: TestClient, initialised: tuple[object, str], registry: Registry
) -> None:
    web_login(client, "admin", initialised[1])
    forged = client.post("/admin/users", data={"username": "mallory", "roles": "admin",
                                               "csrf": "forged"})
    assert forged.status_code == 400
    with registry.sessions() as s:
        assert s.scalar(select(AuditEvent).where(AuditEvent.action == "user.create")
                        .where(AuditEvent.details["username"].as_string() == "mallory")) is None
    page = client.get("/admin/users")
    assert "mallory" not in page.text


def test_admin_pages_create_unlock_and_audit(
    client: TestClient, initialised: tuple[object, str], registry: Registry
) -> None:
    web_login(client, "admin", initialised[1])
    csrf = client.cookies["sanad_csrf"]
    created = client.post("/admin/users", data={"username": "farah", "roles": ["auditor"],
                                                "csrf": csrf})
    assert created.status_code == 201
    password = re.search(r'<code id="secret-value">([^<]+)</code>', created.text)
    assert password is not None
    other = TestClient(client.app)
    for _ in range(MAX_FAILED_LOGINS):
        other.get("/login")
        other.post("/login", data={"username": "farah", "password": "bad",
                                   "csrf": other.cookies["sanad_csrf"]})
    page = client.get("/admin/users")
    row = re.search(r'<tr id="user-farah">(.*?)</tr>', page.text, re.S)
    assert row is not None and "Unlock" in row.group(1)
    user_id = re.search(r'action="/admin/users/([0-9a-f-]+)"', row.group(1))
    assert user_id is not None
    no_reason = client.post(f"/admin/users/{user_id.group(1)}",
                            data={"action": "unlock", "reason": "", "csrf": csrf})
    assert no_reason.status_code == 422
    ok = client.post(f"/admin/users/{user_id.group(1)}",
                     data={"action": "unlock", "reason": "verified by phone", "csrf": csrf},
                     follow_redirects=False)
    assert ok.status_code == 303
    web_login(other, "farah", password.group(1))
    with registry.sessions() as s:
        reasons = s.scalars(select(AuditEvent.details).where(AuditEvent.action == "user.unlock"))
        assert [d["reason"] for d in reasons] == ["verified by phone"]


def test_status_change_page_records_and_reverts_a_death(
    client: TestClient, initialised: tuple[object, str], admin_headers: dict[str, str]
) -> None:
    body = client.post("/households", json=factories.household([60, 61],
                       np.random.default_rng(1)), headers=admin_headers).json()
    head, child = (m["person_id"] for m in body["members"])
    web_login(client, "admin", initialised[1])
    csrf = client.cookies["sanad_csrf"]
    refused = client.post(f"/people/{head}/status",
                          data={"action": "deceased", "reason": "report", "csrf": csrf})
    assert refused.status_code == 422 and "new head" in refused.text
    done = client.post(f"/people/{head}/status",
                       data={"action": "deceased", "reason": "report", "new_head_id": child,
                             "csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    page = client.get(f"/people/{head}")
    assert "deceased" in page.text and "Reactivate" in page.text
    change = re.search(r'<tr data-kind="deceased">.*?name="change_id" value="([0-9a-f-]+)"',
                       page.text, re.S)
    assert change is not None
    client.post(f"/people/{head}/status",
                data={"action": "revert", "change_id": change.group(1),
                      "reason": "mistaken report", "csrf": csrf})
    person = client.get(f"/persons/{head}", headers=admin_headers).json()
    assert person["status"] == "active"


@pytest.mark.parametrize("lang,direction", [("en", "ltr"), ("ur", "rtl")])
def test_language_sets_direction(
    client: TestClient, initialised: tuple[object, str], lang: str, direction: str
) -> None:
    web_login(client, "admin", initialised[1])
    resp = client.get("/language", params={"lang": lang, "next": "/people"},
                      follow_redirects=False)
    assert resp.headers["location"] == "/people"
    page = client.get("/people")
    assert f'<html lang="{lang}" dir="{direction}">' in page.text
    evil = client.get("/language", params={"lang": lang, "next": "//evil.example"},
                      follow_redirects=False)
    assert evil.headers["location"] == "/"


def test_estimated_birth_year_is_shown_with_a_tilde(
    client: TestClient, initialised: tuple[object, str], admin_headers: dict[str, str]
) -> None:
    payload = factories.household([70], np.random.default_rng(2))
    payload["members"][0].update(date_of_birth="1985-06-15", dob_precision="estimated")
    pid = client.post("/households", json=payload,
                      headers=admin_headers).json()["members"][0]["person_id"]
    web_login(client, "admin", initialised[1])
    page = client.get(f"/people/{pid}").text
    assert "~1985" in page and "1985-06-15" not in page


@pytest.mark.parametrize("trust", [False, True])
def test_session_cookie_is_secure_behind_a_tls_proxy_only_when_trusted(
    client: TestClient, initialised: tuple[object, str], registry: Registry, trust: bool
) -> None:
    registry.settings.web_trust_forwarded_proto = trust
    client.get("/login")
    resp = client.post("/login", data={"username": "admin", "password": initialised[1],
                                       "csrf": client.cookies["sanad_csrf"]},
                       headers={"X-Forwarded-Proto": "https"}, follow_redirects=False)
    cookie = next(h for h in resp.headers.get_list("set-cookie")
                  if h.startswith("sanad_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert ("Secure" in cookie) is trust
