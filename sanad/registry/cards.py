"""Card issuance: card number, TD1 MRZ and signed QR, written with its audit row in one transaction.

A new card supersedes the person's active card in the same transaction (a re-issue that leaves
the old credential valid is a known failure of ticketing systems); the signed status list that
ships this revocation to checkpoints comes with the credentials issue.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.abis.templates import decode_template, quantise_int8
from sanad.biometrics.synthetic import FACE_DIM
from sanad.config import Settings
from sanad.credentials.card import CardClaims, issue_qr
from sanad.credentials.ids import new_card_number
from sanad.credentials.keys import IssuerKey
from sanad.credentials.mrz import TD1Data, dob_field, td1_lines, transliterate
from sanad.errors import CardNotIssuable, NotFound
from sanad.registry.db import utcnow
from sanad.registry.gallery import FACE, template_aad
from sanad.registry.models import BiometricRecord, Card, Person, PersonStatus
from sanad.registry.sealing import TemplateSealer

_MRZ_SEX = {"M": "M", "F": "F", "X": "<"}


@dataclass(frozen=True)
class IssuedCard:
    card: Card
    mrz: list[str]
    qr: str


def _face_template(session: Session, person: Person, sealer: TemplateSealer) -> bytes | None:
    rec = session.scalar(
        select(BiometricRecord)
        .where(BiometricRecord.person_id == person.id, BiometricRecord.modality == FACE)
        .order_by(BiometricRecord.id.desc())
    )
    if rec is None:
        return None
    raw = sealer.open(rec.template, aad=template_aad(person.id, FACE))
    return quantise_int8(decode_template(raw, FACE_DIM))


def _unique_card_number(session: Session) -> str:
    while True:
        number = new_card_number()
        if session.scalar(select(Card.id).where(Card.card_number == number)) is None:
            return number


def issue_card(
    session: Session,
    *,
    person_id: uuid.UUID,
    officer: str,
    key: IssuerKey,
    sealer: TemplateSealer,
    settings: Settings,
) -> IssuedCard:
    """Issue a card for an active person; supersedes any active card. Caller commits."""
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    if person.status != PersonStatus.ACTIVE:
        raise CardNotIssuable(
            f"person is {person.status}: a card follows only a settled identity"
        )
    now = utcnow().replace(microsecond=0)
    expires = now + timedelta(days=settings.card_validity_days)
    number = _unique_card_number(session)
    dob = (
        str(person.date_of_birth.year) if person.dob_precision == "year"
        else person.date_of_birth.isoformat()
    )
    claims = CardClaims(
        card_id=secrets.token_bytes(16),
        card_number=number,
        issuer=settings.issuer,
        issued_at=now,
        not_before=now,
        expires_at=expires,
        given_name=person.given_name,
        family_name=person.family_name,
        given_name_ar=person.given_name_ar,
        family_name_ar=person.family_name_ar,
        date_of_birth=dob,
        dob_precision=person.dob_precision,
        sex=person.sex,
        nationality=person.nationality,
        face_template=_face_template(session, person, sealer),
    )
    qr = issue_qr(claims, key)
    mrz = td1_lines(
        TD1Data(
            document_number=number,
            issuing_state=settings.issuing_state,
            nationality=person.nationality,
            date_of_birth=dob_field(person.date_of_birth, person.dob_precision),
            sex=_MRZ_SEX[person.sex],
            date_of_expiry=expires.date(),
            surname=transliterate(person.family_name),
            given_names=transliterate(person.given_name),
        )
    )
    superseded = [
        c for c in session.scalars(
            select(Card).where(Card.person_id == person.id, Card.status == "active")
        )
    ]
    for old in superseded:
        old.status = "revoked"
        audit.record(
            session, actor=officer, action="card.revoke", subject_type="card",
            subject_id=str(old.id), details={"reason": "superseded", "person_id": str(person.id)},
        )
    card = Card(
        person_id=person.id, card_number=number, cti=claims.card_id, kid=key.kid.hex(),
        issued_at=now, expires_at=expires, status="active", qr=qr, mrz="\n".join(mrz),
        issued_by=officer,
    )
    session.add(card)
    session.flush()
    audit.record(
        session, actor=officer, action="card.issue", subject_type="card", subject_id=str(card.id),
        details={"person_id": str(person.id), "card_number": number, "kid": key.kid.hex(),
                 "superseded": [str(c.id) for c in superseded]},
    )
    return IssuedCard(card=card, mrz=mrz, qr=qr)
