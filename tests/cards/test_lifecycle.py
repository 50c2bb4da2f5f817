"""Card lifecycle on SQLite and PostgreSQL: issue, re-issue, renew, lost, surrender, revoke —
each revocation reaching checkpoints through the signed status list, each step audited."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from sqlalchemy import func, select

from sanad.credentials.status import parse_status_list
from sanad.errors import CardNotIssuable, CardStateConflict, InvalidInput, NotFound, QrTooLarge
from sanad.registry import cards as svc
from sanad.registry.card_models import PrintJob
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.models import AuditEvent, Card, Person
from sanad.registry.runtime import Registry
from sanad.registry.schemas import HouseholdCreate
from sanad.registry.status_list import current_status_list
from sanad.verify import verify
from sanad.verify.face import probe_from_image
from tests import factories
from tests.cards.helpers import OFFICER, enrol, issue


def _status(registry: Registry) -> bytes:
    with transaction(registry.sessions) as s:
        return current_status_list(s, key=registry.issuer_key, issuer=registry.settings.issuer,
                                   resign_after=timedelta(hours=1))


def _check(registry: Registry, qr: str) -> tuple[str, ...]:
    status = parse_status_list(_status(registry), trust=registry.trust_list)
    return verify(qr, trust=registry.trust_list, status=status, require_status=True).reasons


def _actions(registry: Registry, subject: str) -> list[str]:
    with registry.sessions() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.subject_id == subject)
                              .order_by(AuditEvent.seq)))


def test_issue_gives_index_print_job_and_audit(registry: Registry) -> None:
    (pid,) = enrol(registry, [501], 1)
    issued = issue(registry, pid)
    card = issued.card
    assert card.status_index is not None and card.issue_reason == "new"
    assert issued.print_job is not None and issued.print_job.state == "requested"
    assert _actions(registry, str(card.id)) == ["card.issue"]
    assert _check(registry, issued.qr) == ()
    second = issue(registry, enrol(registry, [502], 2)[0])
    assert second.card.status_index == card.status_index + 1


def test_reissue_revokes_old_card_offline_in_the_same_transaction(registry: Registry) -> None:
    (pid,) = enrol(registry, [511], 3)
    first = issue(registry, pid)
    with transaction(registry.sessions) as s:
        second = svc.reissue_card(s, person_id=pid, officer=OFFICER, key=registry.issuer_key,
                                  sealer=registry.sealer, settings=registry.settings)
    assert second.card.cti != first.card.cti and second.card.card_number != first.card.card_number
    assert second.superseded == (first.card.id,)
    assert second.card.replaces_id == first.card.id and second.card.issue_reason == "update"
    assert _check(registry, first.qr) == ("revoked",)
    assert _check(registry, second.qr) == ()
    with registry.sessions() as s:
        old = s.get(Card, first.card.id)
        assert old is not None and old.revocation_reason == "superseded"
    assert _actions(registry, str(first.card.id)) == ["card.issue", "card.revoke"]


def test_renew_and_lost_replacement(registry: Registry) -> None:
    (pid,) = enrol(registry, [521], 4)
    first = issue(registry, pid)
    kwargs = dict(person_id=pid, officer=OFFICER, key=registry.issuer_key,
                  sealer=registry.sealer, settings=registry.settings)
    with transaction(registry.sessions) as s:
        renewed = svc.renew_card(s, **kwargs)  # type: ignore[arg-type]
    assert renewed.card.issue_reason == "renewal"
    assert renewed.card.expires_at - renewed.card.issued_at == timedelta(days=730)
    with transaction(registry.sessions) as s:
        replaced = svc.replace_lost_card(s, **kwargs)  # type: ignore[arg-type]
    assert replaced.card.issue_reason == "replacement"
    with registry.sessions() as s:
        reasons = {c.id: c.revocation_reason for c in s.scalars(select(Card))}
    assert reasons == {first.card.id: "superseded", renewed.card.id: "lost",
                       replaced.card.id: None}
    for qr in (first.qr, renewed.qr):
        assert _check(registry, qr) == ("revoked",)
    # Nothing to report lost once every card is revoked.
    with transaction(registry.sessions) as s:
        svc.revoke_card(s, card_id=replaced.card.id, reason="fraud", officer=OFFICER)
    with pytest.raises(CardStateConflict), transaction(registry.sessions) as s:
        svc.replace_lost_card(s, **kwargs)  # type: ignore[arg-type]


def test_surrender_deregisters_and_keeps_the_record(registry: Registry) -> None:
    (pid,) = enrol(registry, [531], 5)
    issued = issue(registry, pid)
    with transaction(registry.sessions) as s:
        revoked = svc.surrender_card(s, person_id=pid, officer=OFFICER, note="voluntary return")
    assert [c.id for c in revoked] == [issued.card.id]
    with registry.sessions() as s:
        person = s.get(Person, pid)
        assert person is not None and person.status == svc.RETURNED
    assert _check(registry, issued.qr) == ("revoked",)
    assert "person.returned" in _actions(registry, str(pid))
    with pytest.raises(CardNotIssuable):
        issue(registry, pid)
    with pytest.raises(CardStateConflict), transaction(registry.sessions) as s:
        svc.surrender_card(s, person_id=pid, officer=OFFICER)


def test_revoke_reasons_and_errors(registry: Registry) -> None:
    (pid,) = enrol(registry, [541], 6)
    issued = issue(registry, pid)
    with pytest.raises(InvalidInput) as exc, transaction(registry.sessions) as s:
        svc.revoke_card(s, card_id=issued.card.id, reason="bored", officer=OFFICER)
    assert exc.value.field == "reason"
    with transaction(registry.sessions) as s:
        svc.revoke_card(s, card_id=issued.card.id, reason="deceased", officer=OFFICER)
    with pytest.raises(CardStateConflict), transaction(registry.sessions) as s:
        svc.revoke_card(s, card_id=issued.card.id, reason="deceased", officer=OFFICER)
    with pytest.raises(NotFound), transaction(registry.sessions) as s:
        svc.revoke_card(s, card_id=uuid.uuid4(), reason="lost", officer=OFFICER)


def test_qr_budget_is_enforced_and_nothing_is_half_issued(registry: Registry) -> None:
    (pid,) = enrol(registry, [551], 7)
    registry.settings.qr_max_version = 10
    try:
        with pytest.raises(QrTooLarge) as exc:
            issue(registry, pid)
    finally:
        registry.settings.qr_max_version = 25
    needed = re.search(r"needs version (\d+) at level M", exc.value.message)
    assert needed is not None and int(needed.group(1)) > 10
    assert "budget of version 10" in exc.value.message
    with registry.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 0
        assert s.scalar(select(func.count()).select_from(PrintJob)) == 0
        assert s.scalar(select(func.count()).where(AuditEvent.action == "card.issue")) == 0
    # The index was not consumed either: the next card gets index 0.
    assert issue(registry, pid).card.status_index == 0


def test_status_list_is_cached_until_it_changes(registry: Registry) -> None:
    (pid,) = enrol(registry, [561], 8)
    issued = issue(registry, pid)
    first = _status(registry)
    assert _status(registry) == first  # same version, fresh: the cached bytes
    with transaction(registry.sessions) as s:
        svc.revoke_card(s, card_id=issued.card.id, reason="lost", officer=OFFICER)
    second = _status(registry)
    old = parse_status_list(first, trust=registry.trust_list)
    new = parse_status_list(second, trust=registry.trust_list)
    assert new.version == old.version + 1
    assert issued.card.status_index is not None
    assert old.is_revoked(issued.card.status_index) is False
    assert new.is_revoked(issued.card.status_index) is True


def test_photo_on_file_is_printed_and_its_face_checks_at_the_checkpoint(
    registry: Registry,
) -> None:
    """End to end with the real face model: enrol from a photo, issue, print the photo, and
    verify the card's int8 template against other photos."""
    faces = Path(__file__).parents[1] / "data" / "faces"
    photo = base64.b64encode((faces / "obama.jpg").read_bytes()).decode()
    payload = factories.household([571], np.random.default_rng(9))
    payload["members"][0]["face"] = {"photo": photo}
    result = enrol_household(registry.sessions, registry.gallery, registry.settings,
                             data=HouseholdCreate.model_validate(payload),
                             ctx=EnrolmentContext(officer="reg-1"))
    pid = result.members[0].person_id
    assert pid is not None
    issued = issue(registry, pid)
    with transaction(registry.sessions) as s:
        with_photo = svc.card_pdf_bytes(s, card_id=issued.card.id, actor=OFFICER,
                                        settings=registry.settings, sealer=registry.sealer)
        without = svc.card_pdf_bytes(s, card_id=issued.card.id, actor=OFFICER,
                                     settings=registry.settings)

    def front_text(pdf: bytes) -> str:
        return str(pdfium.PdfDocument(pdf)[0].get_textpage().get_text_range())

    assert "no photo on file" not in front_text(with_photo)
    assert "no photo on file" in front_text(without)

    same = probe_from_image((faces / "obama2.jpg").read_bytes(),
                            threshold=registry.settings.verify_face_threshold)
    other = probe_from_image((faces / "biden.jpg").read_bytes(),
                             threshold=registry.settings.verify_face_threshold)
    assert verify(issued.qr, trust=registry.trust_list, face=same).valid
    assert verify(issued.qr, trust=registry.trust_list, face=other).reasons == ("face_mismatch",)
