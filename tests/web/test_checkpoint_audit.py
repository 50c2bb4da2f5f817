"""Verifications on the checkpoint page reach the central audit log (`card.verify`, channel
`checkpoint`): who, when, which card, the verdict and its reasons — no QR text, no photo."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import select

from sanad import audit
from sanad.registry.db import transaction
from sanad.registry.models import AuditEvent, Card
from sanad.registry.runtime import Registry
from sanad.registry.users import create_user
from tests import factories

PASSWORD = "pw-checkpoint-audit-1"


def _card(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    payload = factories.household([950], np.random.default_rng(950))
    pid = client.post("/households", json=payload, headers=headers).json()["members"][0][
        "person_id"]
    card = client.post(f"/persons/{pid}/cards", headers=headers)
    assert card.status_code == 201, card.text
    return dict(card.json())


def test_checkpoint_page_verifications_are_audited(
    client: TestClient, admin_headers: dict[str, str], registry: Registry
) -> None:
    card = _card(client, admin_headers)
    with transaction(registry.sessions) as s:
        create_user(s, username="gate-officer", password=PASSWORD, roles=["verifier"],
                    actor="test")
    client.cookies.clear()
    client.get("/login")
    signed_in = client.post("/login", data={"username": "gate-officer", "password": PASSWORD,
                                            "csrf": client.cookies["sanad_csrf"]},
                            follow_redirects=False)
    assert signed_in.status_code == 303
    csrf = client.cookies["sanad_csrf"]
    ok = client.post("/checkpoint/verify", data={"qr": card["qr"], "csrf": csrf})
    assert ok.status_code == 200 and card["card_number"] in ok.text
    bad = client.post("/checkpoint/verify", data={"qr": "SND1:not-a-card", "csrf": csrf})
    assert bad.status_code == 200
    # A form without the CSRF token verifies nothing and audits nothing.
    assert client.post("/checkpoint/verify", data={"qr": card["qr"]}).status_code == 400
    client.app.state.verification_log.flush()  # type: ignore[attr-defined]
    with registry.sessions() as s:
        events = s.scalars(select(AuditEvent).where(AuditEvent.action == "card.verify")
                           .order_by(AuditEvent.seq)).all()
        card_id = s.scalar(select(Card.id).where(Card.card_number == card["card_number"]))
        assert audit.verify_chain(s).ok
    assert [e.details["channel"] for e in events] == ["checkpoint", "checkpoint"]
    assert all(e.actor == "gate-officer" for e in events)
    good, unreadable = events
    assert (good.subject_type, good.subject_id) == ("card", str(card_id))
    assert good.details["valid"] is True and good.details["card_number"] == card["card_number"]
    assert "checked_at" in good.details
    assert unreadable.details["valid"] is False
    assert unreadable.details["reasons"] and unreadable.subject_id == "unreadable"
    assert "not-a-card" not in repr(unreadable.details)
    assert card["qr"][5:60] not in repr(good.details)
