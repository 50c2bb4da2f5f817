"""POST /verify without a transaction per request: the API-key and status-list caches keep
every security property (revocations through this process take effect at once), and every
verification reaches the hash-chained audit log (`card.verify`), batched or not."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad import audit
from sanad.app import create_app
from sanad.config import Settings
from sanad.registry.access_models import ApiKey
from sanad.registry.db import transaction
from sanad.registry.models import AuditEvent, Card
from sanad.registry.runtime import Registry, open_registry
from sanad.registry.users import create_api_key, revoke_api_key
from tests import factories


def _card(client: TestClient, headers: dict[str, str],
          identity: int) -> tuple[str, dict[str, str]]:
    payload = factories.household([identity], np.random.default_rng(identity))
    resp = client.post("/households", json=payload, headers=headers)
    assert resp.status_code == 201, resp.text
    pid = resp.json()["members"][0]["person_id"]
    card = client.post(f"/persons/{pid}/cards", headers=headers)
    assert card.status_code == 201, card.text
    return pid, dict(card.json())


def _verifier_key(registry: Registry) -> dict[str, str]:
    with transaction(registry.sessions) as s:
        secret, _ = create_api_key(s, name="gate-1", roles=["verifier"], actor="test")
    return {"X-API-Key": secret}


def _verify_events(registry: Registry) -> list[AuditEvent]:
    with registry.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "card.verify")
                              .order_by(AuditEvent.seq)))


def test_every_verification_is_audited_without_the_qr_or_biometrics(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    pid, card = _card(client, admin_headers, 300)
    key = _verifier_key(registry)
    ok = client.post("/verify", json={"qr": card["qr"]}, headers=key)
    assert ok.status_code == 200 and ok.json()["valid"] is True
    forged = card["qr"][:40] + ("A" if card["qr"][40] != "A" else "B") + card["qr"][41:]
    bad = client.post("/verify", json={"qr": forged}, headers=key).json()
    assert bad["valid"] is False
    # Batched by default: nothing is lost, and flushing lands both in the chain, in order.
    client.app.state.verification_log.flush()  # type: ignore[attr-defined]
    events = _verify_events(registry)
    assert len(events) == 2
    good, forged_ev = events
    with registry.sessions() as s:
        card_row = s.scalar(select(Card).where(Card.card_number == card["card_number"]))
        assert card_row is not None
        assert audit.verify_chain(s).ok
    assert good.actor == "key:gate-1"
    assert (good.subject_type, good.subject_id) == ("card", str(card_row.id))
    assert good.details["valid"] is True and good.details["reasons"] == []
    assert good.details["card_number"] == card["card_number"]
    assert good.details["channel"] == "api"
    assert forged_ev.subject_type == "credential"
    assert forged_ev.details["valid"] is False and forged_ev.details["reasons"] == bad["reasons"]
    # The auditor sees the genuine one on the holder's trail (the forged code names no card).
    trail = client.get(f"/persons/{pid}/audit", headers=admin_headers).json()
    assert [e["action"] for e in trail].count("card.verify") == 1
    for ev in events:
        text = repr(ev.details)
        assert card["qr"] not in text and card["qr"][5:60] not in text
        assert "face_template" not in text and "given_name" not in text


def test_unbatched_audit_is_written_before_the_answer(
    initialised: tuple[Settings, str],
) -> None:
    settings = initialised[0].model_copy(update={"verify_audit_batch_seconds": 0.0})
    registry = open_registry(settings)
    try:
        with TestClient(create_app(registry=registry)) as client:
            token = client.post("/auth/token", json={"username": "admin",
                                                     "password": initialised[1]}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            _, card = _card(client, headers, 310)
            assert client.post("/verify", json={"qr": card["qr"]},
                               headers=headers).json()["valid"]
            # No flush, no shutdown: the event is already committed.
            (event,) = _verify_events(registry)
            assert event.actor == "admin" and event.details["valid"] is True
            assert client.app.state.verification_log.pending() == 0  # type: ignore[attr-defined]
    finally:
        registry.close()


def test_shutdown_writes_the_queued_events(
    initialised: tuple[Settings, str],
) -> None:
    settings = initialised[0].model_copy(update={"verify_audit_batch_seconds": 3600.0})
    registry = open_registry(settings)
    try:
        with TestClient(create_app(registry=registry)) as client:
            token = client.post("/auth/token", json={"username": "admin",
                                                     "password": initialised[1]}).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            _, card = _card(client, headers, 320)
            for _ in range(3):
                client.post("/verify", json={"qr": card["qr"]}, headers=headers)
            assert client.app.state.verification_log.pending() == 3  # type: ignore[attr-defined]
            assert _verify_events(registry) == []
        # Leaving the client runs the app's shutdown.
        assert len(_verify_events(registry)) == 3
    finally:
        registry.close()


def test_revocation_through_this_process_is_seen_at_once(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    pid, first = _card(client, admin_headers, 330)
    key = _verifier_key(registry)
    assert client.post("/verify", json={"qr": first["qr"]}, headers=key).json()["valid"]
    assert client.app.state.status_cache.get() is not None  # type: ignore[attr-defined]
    # Re-issuing supersedes (revokes) the first card: the cached list must not answer.
    assert client.post(f"/persons/{pid}/cards", headers=admin_headers).status_code == 201
    again = client.post("/verify", json={"qr": first["qr"]}, headers=key).json()
    assert again["valid"] is False and "revoked" in again["reasons"]


def test_revoked_api_key_is_refused_at_once_despite_the_cache(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    _, card = _card(client, admin_headers, 340)
    created = client.post("/api-keys", json={"name": "gate-2", "roles": ["verifier"]},
                          headers=admin_headers).json()
    key = {"X-API-Key": created["key"]}
    assert client.post("/verify", json={"qr": card["qr"]}, headers=key).status_code == 200
    assert client.post("/verify", json={"qr": card["qr"]}, headers=key).status_code == 200
    assert client.delete(f"/api-keys/{created['id']}", headers=admin_headers).status_code == 200
    refused = client.post("/verify", json={"qr": card["qr"]}, headers=key)
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_without_the_key_cache_a_revocation_elsewhere_is_immediate(
    initialised: tuple[Settings, str],
) -> None:
    """A key revoked by another process (here: a second registry, like the CLI) is refused
    at once with `api_key_cache_seconds = 0` (otherwise within that many seconds)."""
    settings = initialised[0].model_copy(update={"api_key_cache_seconds": 0.0})
    registry = open_registry(settings)
    other = open_registry(settings)
    try:
        with TestClient(create_app(registry=registry)) as client:
            key = _verifier_key(registry)
            assert client.post("/verify", json={"qr": "SND1:x"}, headers=key).status_code == 200
            with transaction(other.sessions) as s:
                row = s.scalar(select(ApiKey).where(ApiKey.name == "gate-1"))
                assert row is not None
                revoke_api_key(s, key_id=row.id, actor="cli")
            assert client.post("/verify", json={"qr": "SND1:x"}, headers=key).status_code == 401
    finally:
        other.close()
        registry.close()


def test_wrong_roles_and_bad_input_still_refused(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    with transaction(registry.sessions) as s:
        secret, _ = create_api_key(s, name="sms", roles=["registration_officer"], actor="t")
    for _ in range(2):  # the second call answers from the key cache: same verdict
        assert client.post("/verify", json={"qr": "SND1:x"},
                           headers={"X-API-Key": secret}).status_code == 403
    key = _verifier_key(registry)
    resp = client.post("/verify", json={"qr": 5}, headers=key)
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "qr"
    assert client.post("/verify", json={"qr": "SND1:x"},
                       headers={"X-API-Key": "sk_nope_nope"}).status_code == 401
    # Security headers on the fast path too.
    ok = client.post("/verify", json={"qr": "SND1:x"}, headers=key)
    assert ok.headers["x-content-type-options"] == "nosniff"
    assert ok.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("batch", [0, 2])
def test_record_many_extends_the_same_chain(registry: Registry, batch: int) -> None:
    with transaction(registry.sessions) as s:
        audit.record(s, actor="a", action="x.one", subject_type="t", subject_id="1")
        last = audit.record_many(s, [
            audit.Entry(actor="b", action="x.many", subject_type="t", subject_id=str(i),
                        details={"i": i}) for i in range(batch)
        ])
        audit.record(s, actor="c", action="x.two", subject_type="t", subject_id="2")
    with registry.sessions() as s:
        report = audit.verify_chain(s)
        assert report.ok and report.events >= batch + 2
        if batch:
            assert last == report.events - 1
        rows = s.scalars(select(AuditEvent).where(AuditEvent.action == "x.many")
                         .order_by(AuditEvent.seq)).all()
        assert [r.details["i"] for r in rows] == list(range(batch))
