"""Record exports to partners, only under an approved sharing agreement and per-purpose consent.

Rules, each enforced here (the single place every front end goes through):

* an agreement records recipient, recipient type and country, purpose, the fields shared, the
  legal basis and the data-protection impact assessment;
* it becomes `approved` only with approvals from two *different* admins;
* agreements with the authorities of a configured country of origin are refused (at proposal
  and again at export) unless the operator has explicitly set the override;
* an export contains only people whose latest consent for the agreement's purpose is granted;
  consent is asked and recorded separately from enrolment and never gates a card;
* every export is logged (`export_log`, with the person ids shared) and audited.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sanad import audit
from sanad.config import Settings
from sanad.errors import Conflict, InvalidInput, NotFound, SharingRefused
from sanad.registry.db import transaction, utcnow
from sanad.registry.models import Person
from sanad.registry.sync_models import AgreementApproval, Consent, ExportRecord, SharingAgreement

EXPORTABLE_FIELDS = (
    "registration_number", "given_name", "family_name", "father_name", "given_name_ar",
    "family_name_ar", "father_name_ar", "date_of_birth", "sex", "nationality", "province",
    "district", "phone", "status",
)
RECIPIENT_TYPES = ("un_agency", "ngo", "host_government", "authority", "other")
REQUIRED_APPROVALS = 2
T = TypeVar("T")


def _origin_refused(settings: Settings, recipient_type: str, country: str) -> bool:
    origins = {c.upper() for c in settings.export_countries_of_origin}
    return (recipient_type == "authority" and country.upper() in origins
            and not settings.export_allow_origin_authorities)


def propose_agreement(
    session: Session, settings: Settings, *, recipient: str, recipient_type: str,
    recipient_country: str, purpose: str, fields: list[str], legal_basis: str,
    impact_assessment: str, actor: str, valid_until: datetime | None = None,
) -> SharingAgreement:
    """Record a proposed agreement (needs two admin approvals before any export)."""
    if recipient_type not in RECIPIENT_TYPES:
        raise InvalidInput(f"recipient_type is one of {', '.join(RECIPIENT_TYPES)}",
                           field="recipient_type")
    bad = [f for f in fields if f not in EXPORTABLE_FIELDS]
    if not fields or bad:
        raise InvalidInput(f"fields are a subset of {', '.join(EXPORTABLE_FIELDS)}",
                           field="fields")
    for name, value in (("legal_basis", legal_basis), ("impact_assessment", impact_assessment),
                        ("purpose", purpose), ("recipient", recipient)):
        if not value.strip():
            raise InvalidInput(f"{name} is required", field=name)
    if _origin_refused(settings, recipient_type, recipient_country):
        raise SharingRefused(
            f"sharing with the authorities of {recipient_country} (a country of origin) is "
            "refused")
    agreement = SharingAgreement(
        recipient=recipient, recipient_type=recipient_type,
        recipient_country=recipient_country.upper(), purpose=purpose, fields=list(fields),
        legal_basis=legal_basis, impact_assessment=impact_assessment, created_by=actor,
        valid_until=valid_until,
    )
    session.add(agreement)
    session.flush()
    audit.record(session, actor=actor, action="sharing.propose",
                 subject_type="sharing_agreement", subject_id=str(agreement.id),
                 details={"recipient": recipient, "purpose": purpose, "fields": fields})
    return agreement


def approve_agreement(session: Session, *, agreement_id: uuid.UUID, approver: str
                      ) -> SharingAgreement:
    """One admin's approval; the second *different* admin's approval activates it."""
    agreement = session.get(SharingAgreement, agreement_id, with_for_update=True)
    if agreement is None:
        raise NotFound(f"no sharing agreement {agreement_id}")
    if agreement.status == "approved":
        raise Conflict("agreement is already approved")
    approvers = set(session.scalars(select(AgreementApproval.approver)
                                    .where(AgreementApproval.agreement_id == agreement_id)))
    if approver in approvers:
        raise Conflict("the same admin cannot approve twice; a second admin must approve")
    session.add(AgreementApproval(agreement_id=agreement_id, approver=approver))
    approvers.add(approver)
    if len(approvers) >= REQUIRED_APPROVALS:
        agreement.status = "approved"
    audit.record(session, actor=approver, action="sharing.approve",
                 subject_type="sharing_agreement", subject_id=str(agreement_id),
                 details={"approvals": len(approvers), "status": agreement.status})
    return agreement


def list_agreements(session: Session) -> list[SharingAgreement]:
    return list(session.scalars(select(SharingAgreement).order_by(SharingAgreement.created_at)))


def record_consent(session: Session, *, person_id: uuid.UUID, purpose: str, granted: bool,
                   actor: str) -> Consent:
    """Record (or withdraw) a person's consent to sharing for one purpose (append-only)."""
    if session.get(Person, person_id) is None:
        raise NotFound(f"no person {person_id}")
    if not purpose.strip() or len(purpose) > 60:
        raise InvalidInput("purpose is 1-60 characters", field="purpose")
    consent = Consent(person_id=person_id, purpose=purpose, granted=granted, recorded_by=actor)
    session.add(consent)
    session.flush()
    audit.record(session, actor=actor, action="consent.grant" if granted else "consent.withdraw",
                 subject_type="person", subject_id=str(person_id), details={"purpose": purpose})
    return consent


def consented_person_ids(session: Session, purpose: str) -> list[uuid.UUID]:
    """People whose *latest* consent for `purpose` is granted (a withdrawal wins)."""
    latest: dict[uuid.UUID, bool] = {}
    for person_id, granted in session.execute(
        select(Consent.person_id, Consent.granted).where(Consent.purpose == purpose)
        .order_by(Consent.id)):
        latest[person_id] = granted
    return [pid for pid, granted in latest.items() if granted]


def _plain(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def export_records(
    session: Session, settings: Settings, *, agreement_id: uuid.UUID, fmt: str, actor: str
) -> tuple[bytes, int]:
    """The agreed fields of consenting people, as CSV or JSON Lines; (content, row count)."""
    agreement = session.get(SharingAgreement, agreement_id)
    if agreement is None:
        raise NotFound(f"no sharing agreement {agreement_id}")
    if agreement.status != "approved":
        raise SharingRefused("agreement is not approved by two admins")
    if agreement.valid_until is not None and agreement.valid_until < utcnow():
        raise SharingRefused("agreement has expired")
    if _origin_refused(settings, agreement.recipient_type, agreement.recipient_country):
        raise SharingRefused("recipient is an authority of a country of origin")
    if fmt not in {"csv", "jsonl"}:
        raise InvalidInput("format is csv or jsonl", field="format")
    ids = consented_person_ids(session, agreement.purpose)
    columns = list(agreement.fields)
    persons: list[Person] = []
    for start in range(0, len(ids), 1000):
        persons.extend(session.scalars(select(Person).where(Person.id.in_(ids[start:start + 1000]))
                                       .order_by(Person.registration_number)))
    rows = [{c: _plain(getattr(p, c)) for c in columns} for p in persons]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        data = buf.getvalue().encode()
    else:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    digest = hashlib.sha256(data).hexdigest()
    record = ExportRecord(
        kind="records", agreement_id=agreement_id, actor=actor, rows=len(rows), sha256=digest,
        details={"recipient": agreement.recipient, "purpose": agreement.purpose,
                 "fields": columns, "format": fmt, "person_ids": [str(p.id) for p in persons]},
    )
    session.add(record)
    session.flush()
    audit.record(session, actor=actor, action="export.records", subject_type="export",
                 subject_id=str(record.id),
                 details={"agreement_id": str(agreement_id), "rows": len(rows),
                          "sha256": digest})
    return data, len(rows)


def audited(sessions: sessionmaker[Session], *, actor: str, what: str,
            fn: Callable[[Session], T]) -> T:
    """Run `fn` in a transaction; a `SharingRefused` is audited in its own transaction (so
    the refusal is on record even though `fn`'s work rolls back), then re-raised."""
    try:
        with transaction(sessions) as session:
            return fn(session)
    except SharingRefused as exc:
        with transaction(sessions) as session:
            audit.record(session, actor=actor, action="export.refused",
                         subject_type="sharing", subject_id=what[:64],
                         details={"reason": exc.message})
        raise


def export_log(session: Session, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(select(ExportRecord).order_by(ExportRecord.created_at.desc())
                           .limit(limit))
    return [{"id": str(r.id), "kind": r.kind, "actor": r.actor, "rows": r.rows,
             "sha256": r.sha256,
             "agreement_id": str(r.agreement_id) if r.agreement_id else None,
             "created_at": r.created_at.isoformat()} for r in rows]
