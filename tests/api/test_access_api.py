"""Users, lockout and audited unlock, API keys scoped to roles, per-key rate limits."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad.api.deps import TokenBucket
from sanad.registry.models import AuditEvent
from sanad.registry.runtime import Registry
from sanad.registry.users import MAX_FAILED_LOGINS


def _user(client: TestClient, admin: dict[str, str], name: str, *roles: str) -> dict[str, Any]:
    resp = client.post("/users", json={"username": name, "roles": list(roles)}, headers=admin)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _login(client: TestClient, name: str, password: str) -> dict[str, str]:
    resp = client.post("/auth/token", json={"username": name, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def test_admin_creates_a_user_who_gets_exactly_their_roles(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = _user(client, admin_headers, "amina", "auditor")
    assert created["roles"] == ["auditor"] and created["locked"] is False
    headers = _login(client, "amina", created["password"])
    assert client.get("/auth/me", headers=headers).json() == {
        "username": "amina", "roles": ["auditor"]}
    assert client.get("/users", headers=headers).status_code == 403
    listed = client.get("/users", headers=admin_headers).json()
    assert {u["username"] for u in listed} == {"admin", "amina"}
    dup = client.post("/users", json={"username": "amina", "roles": ["auditor"]},
                      headers=admin_headers)
    assert dup.status_code == 422 and dup.json()["errors"][0]["field"] == "username"


def test_lockout_then_admin_unlock_with_an_audited_reason(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    created = _user(client, admin_headers, "bilal", "verifier")
    for _ in range(MAX_FAILED_LOGINS):
        bad = client.post("/auth/token", json={"username": "bilal", "password": "nope"})
        assert bad.status_code == 401
    locked = client.post("/auth/token", json={"username": "bilal",
                                               "password": created["password"]})
    assert locked.status_code == 401 and "locked" in locked.json()["detail"]
    row = next(u for u in client.get("/users", headers=admin_headers).json()
               if u["username"] == "bilal")
    assert row["locked"] is True
    no_reason = client.post(f"/users/{row['id']}/unlock", json={"reason": ""},
                            headers=admin_headers)
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    ok = client.post(f"/users/{row['id']}/unlock",
                     json={"reason": "called the officer, confirmed identity"},
                     headers=admin_headers)
    assert ok.status_code == 200 and ok.json()["locked"] is False
    _login(client, "bilal", created["password"])
    with registry.sessions() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "user.unlock"))
    assert event is not None and event.details["reason"].startswith("called the officer")
    assert event.details["failed_logins"] == MAX_FAILED_LOGINS


def test_deactivating_a_user_ends_their_sessions(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    created = _user(client, admin_headers, "chadi", "auditor")
    headers = _login(client, "chadi", created["password"])
    assert client.get("/auth/me", headers=headers).status_code == 200
    resp = client.patch(f"/users/{created['id']}", json={"active": False}, headers=admin_headers)
    assert resp.status_code == 200 and resp.json()["active"] is False
    assert client.get("/auth/me", headers=headers).status_code == 401


def test_api_key_is_scoped_to_its_roles_and_revocable(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    resp = client.post("/api-keys", json={"name": "checkpoint-7", "roles": ["verifier"]},
                       headers=admin_headers)
    assert resp.status_code == 201, resp.text
    key = resp.json()
    assert key["key"].startswith("sk_" + key["prefix"])
    as_key = {"X-API-Key": key["key"]}
    assert client.get("/auth/me", headers=as_key).json() == {
        "username": "key:checkpoint-7", "roles": ["verifier"]}
    bearer = {"Authorization": f"Bearer {key['key']}"}
    assert client.get("/auth/me", headers=bearer).status_code == 200
    assert client.get("/persons", headers=as_key).status_code == 403
    assert client.post("/verify", json={"qr": "SND1:XYZ"}, headers=as_key).status_code == 200
    listed = client.get("/api-keys", headers=admin_headers).json()
    assert [k["name"] for k in listed] == ["checkpoint-7"] and "key" not in listed[0]
    assert client.delete(f"/api-keys/{key['id']}", headers=admin_headers).status_code == 200
    assert client.get("/auth/me", headers=as_key).status_code == 401
    forged = {"X-API-Key": key["key"][:-2] + "xx"}
    assert client.get("/auth/me", headers=forged).status_code == 401


def test_rate_limit_per_key_answers_429_with_retry_after(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    client.app.state.rate_limiter = TokenBucket(per_minute=60, burst=3)  # type: ignore[attr-defined]
    slow = client.post("/api-keys", json={"name": "slow", "roles": ["verifier"]},
                       headers=admin_headers).json()
    other = client.post("/api-keys", json={"name": "other", "roles": ["verifier"]},
                        headers=admin_headers).json()
    codes = [client.get("/auth/me", headers={"X-API-Key": slow["key"]}).status_code
             for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
    limited = client.get("/auth/me", headers={"X-API-Key": slow["key"]})
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # Another key has its own bucket.
    assert client.get("/auth/me", headers={"X-API-Key": other["key"]}).status_code == 200


def test_logout_revokes_the_token(client: TestClient, admin_headers: dict[str, str]) -> None:
    created = _user(client, admin_headers, "dina", "auditor")
    headers = _login(client, "dina", created["password"])
    assert client.post("/auth/logout", headers=headers).status_code == 204
    assert client.get("/auth/me", headers=headers).status_code == 401
