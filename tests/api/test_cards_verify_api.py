"""Cards through the API: issue, verify, supersede, expiry; role checks."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from fastapi.testclient import TestClient

from tests import factories


def _enrol(client: TestClient, headers: dict[str, str], ids: list[int], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    resp = client.post("/households", json=factories.household(ids, rng), headers=headers)
    assert resp.status_code == 201, resp.text
    return [m["person_id"] for m in resp.json()["members"]]


def test_issued_card_verifies_and_expires(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    (pid,) = _enrol(client, admin_headers, [100], 1)
    resp = client.post(f"/persons/{pid}/cards", headers=admin_headers)
    assert resp.status_code == 201, resp.text
    card = resp.json()
    assert card["qr"].startswith("SND1:")
    assert len(card["mrz"]) == 3 and all(len(line) == 30 for line in card["mrz"])
    assert card["card_number"] in card["mrz"][0]
    ok = client.post("/verify", json={"qr": card["qr"]}, headers=admin_headers).json()
    assert ok["valid"] is True and ok["reasons"] == []
    assert ok["claims"]["card_number"] == card["card_number"]
    assert ok["claims"]["family_name"] == "Al-Rashid"
    # No address, phone or household in the signed data.
    assert not {"phone", "province", "district", "household_id"} & set(ok["claims"])
    from datetime import datetime

    after = datetime.fromisoformat(card["expires_at"]) + timedelta(seconds=1)
    late = client.post("/verify", json={"qr": card["qr"], "at": after.isoformat()},
                       headers=admin_headers).json()
    assert late["valid"] is False and "expired" in late["reasons"]
    altered = card["qr"][:40] + ("A" if card["qr"][40] != "A" else "B") + card["qr"][41:]
    bad = client.post("/verify", json={"qr": altered}, headers=admin_headers).json()
    assert bad["valid"] is False and bad["reasons"]


def test_reissue_supersedes_the_active_card(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    (pid,) = _enrol(client, admin_headers, [110], 2)
    first = client.post(f"/persons/{pid}/cards", headers=admin_headers).json()
    second = client.post(f"/persons/{pid}/cards", headers=admin_headers).json()
    assert first["card_number"] != second["card_number"]
    cards = {c["card_number"]: c["status"]
             for c in client.get(f"/persons/{pid}", headers=admin_headers).json()["cards"]}
    assert cards == {first["card_number"]: "revoked", second["card_number"]: "active"}


def test_roles_are_enforced(client: TestClient, admin_headers: dict[str, str],
                            registry) -> None:
    from sanad.registry.db import transaction
    from sanad.registry.users import create_user

    with transaction(registry.sessions) as s:
        create_user(s, username="checkpoint", password="pw-checkpoint-1", roles=["verifier"],
                    actor="test")
    token = client.post("/auth/token", json={"username": "checkpoint",
                                             "password": "pw-checkpoint-1"}).json()
    verifier = {"Authorization": f"Bearer {token['access_token']}"}
    (pid,) = _enrol(client, admin_headers, [120], 3)
    rng = np.random.default_rng(9)
    denied = [
        client.post("/households", json=factories.household([121], rng), headers=verifier),
        client.get(f"/persons/{pid}", headers=verifier),
        client.get("/persons", headers=verifier),
        client.post(f"/persons/{pid}/cards", headers=verifier),
    ]
    for resp in denied:
        assert resp.status_code == 403, resp.request.url
        assert resp.json()["code"] == "forbidden"
    assert client.post("/verify", json={"qr": "SND1:X"}, headers=verifier).status_code == 200
    for method, url in (("post", "/households"), ("get", f"/persons/{pid}"),
                        ("post", f"/persons/{pid}/cards"), ("post", "/verify")):
        anon = client.request(method.upper(), url, json={})
        assert anon.status_code == 401, url
        assert anon.headers["content-type"].startswith("application/problem+json")


def test_login_failures_lock_the_account(client: TestClient, initialised) -> None:
    for _ in range(10):
        r = client.post("/auth/token", json={"username": "admin", "password": "wrong"})
        assert r.status_code == 401
    locked = client.post("/auth/token", json={"username": "admin", "password": initialised[1]})
    assert locked.status_code == 401 and "locked" in locked.json()["detail"]
