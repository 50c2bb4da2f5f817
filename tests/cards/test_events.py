"""Card lifecycle events in the outbox (docs/interop.md): `card.issued`, `card.revoked` and
`card.ready` are written in the transactions that make the change, fan out to `card.*`
subscribers, and `card.ready` with the holder's phone queues a notification."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from sanad.notify.outbox import NOTIFY_TARGET
from sanad.notify.subscriptions import create_subscription
from sanad.registry.cards import issue_card, mark_printed, revoke_card
from sanad.registry.db import transaction
from sanad.registry.models import Person
from sanad.registry.runtime import Registry
from sanad.registry.sync_models import Delivery, OutboxEvent
from tests.cards.helpers import OFFICER, enrol, issue


def _events(registry: Registry) -> list[tuple[str, str, dict[str, Any]]]:
    with registry.sessions() as s:
        rows = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
        return [(e.event_type, e.subject_id, e.payload) for e in rows
                if e.event_type.startswith("card.")]


def _deliveries(registry: Registry, event_type: str) -> list[str]:
    with registry.sessions() as s:
        return list(s.scalars(
            select(Delivery.target).join(OutboxEvent, Delivery.event_id == OutboxEvent.id)
            .where(OutboxEvent.event_type == event_type).order_by(Delivery.id)).all())


def test_issue_print_and_revoke_emit_card_events(registry: Registry) -> None:
    with transaction(registry.sessions) as s:
        sub, _ = create_subscription(s, name="bank", url="https://bank.example/hooks",
                                     event_types=["card.*"], actor="admin")
        sub_id = sub.id
    head, child = enrol(registry, [811, 812], seed=81)

    first = issue(registry, head)
    (issued,) = _events(registry)
    assert issued[0] == "card.issued" and issued[1] == str(first.card.id)
    assert issued[2]["person_id"] == str(head) and issued[2]["issue_reason"] == "new"
    assert issued[2]["card_number"] == first.card.card_number and issued[2]["superseded"] == []
    assert _deliveries(registry, "card.issued") == [f"webhook:{sub_id}"]

    # Printed: the card is ready; the holder has a phone, so a notification is queued too.
    assert first.print_job is not None
    with transaction(registry.sessions) as s:
        mark_printed(s, job_id=first.print_job.id, officer=OFFICER)
    ready = _events(registry)[-1]
    assert ready[0] == "card.ready" and ready[1] == str(first.card.id)
    with registry.sessions() as s:
        person = s.get(Person, head)
        assert person is not None and person.phone
        assert ready[2]["phone"] == person.phone
    assert ready[2]["site"] == "test-site"  # where the household was enrolled
    assert ready[2]["date"] and ready[2]["reprint"] is False
    assert sorted(_deliveries(registry, "card.ready")) == sorted(
        [f"webhook:{sub_id}", NOTIFY_TARGET])

    # A renewal supersedes the first card: revoked, then the new one issued.
    second = issue(registry, head)
    types = [e[0] for e in _events(registry)]
    assert types == ["card.issued", "card.ready", "card.revoked", "card.issued"]
    revoked = _events(registry)[2]
    assert revoked[1] == str(first.card.id) and revoked[2]["reason"] == "superseded"
    assert _events(registry)[3][2]["superseded"] == [str(first.card.id)]

    with transaction(registry.sessions) as s:
        revoke_card(s, card_id=second.card.id, reason="lost", officer=OFFICER)
    last = _events(registry)[-1]
    assert last[0] == "card.revoked" and last[2]["reason"] == "lost"

    # A holder without a phone: card.ready reaches subscribers, nobody is texted.
    third = issue(registry, child)
    assert third.print_job is not None
    with transaction(registry.sessions) as s:
        mark_printed(s, job_id=third.print_job.id, officer=OFFICER)
    assert _events(registry)[-1][2]["phone"] is None
    assert _deliveries(registry, "card.ready").count(NOTIFY_TARGET) == 1

    # A card revoked while queued is printed (and destroyed) without a "ready" message.
    fourth = issue(registry, head)
    assert fourth.print_job is not None
    with transaction(registry.sessions) as s:
        revoke_card(s, card_id=fourth.card.id, reason="fraud", officer=OFFICER)
        mark_printed(s, job_id=fourth.print_job.id, officer=OFFICER)
    assert [e[0] for e in _events(registry)][-1] == "card.revoked"
    assert _deliveries(registry, "card.ready").count(NOTIFY_TARGET) == 1


def test_a_change_that_rolls_back_leaves_no_event(registry: Registry) -> None:
    (pid,) = enrol(registry, [813], seed=82)
    try:
        with transaction(registry.sessions) as s:
            issue_card(s, person_id=pid, officer=OFFICER, key=registry.issuer_key,
                       sealer=registry.sealer, settings=registry.settings)
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    assert _events(registry) == []
