"""Card services: issuance, the card lifecycle, revocation, printing and the print queue.

Everything here takes the caller's `Session` and writes its audit rows in the same transaction,
so nothing is half-done: a card exists only with its status-list index, its print job and its
audit row; a re-issue revokes the old card (and bumps the status-list version) in the very
transaction that creates the new one — a re-issue that leaves the old credential valid
offline is a known failure of ticketing systems.

Lifecycle (each step audited, each new card a new card id and number):

    issue_card            first card, or any re-issue (old active cards → revoked "superseded")
    renew_card            new 2-year card                          (old → "superseded")
    replace_lost_card     the holder lost it                       (old → "lost")
    reissue_card          details changed, or any other re-issue    (old → "superseded")
    revoke_card           one card, with a reason (REVOCATION_REASONS)
    revoke_person_cards   every active card of a person (death, fraud)
    surrender_card        voluntary return: cards revoked "surrendered", person → "returned"
                          (deregistered; the record is kept per the retention policy)

Print queue (`PrintJob`): requested → printed → collected, with `mark_print_failed` retrying
up to the configured attempts and `request_reprint` counting reprints.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from sanad import audit
from sanad.abis.templates import decode_template, quantise_int8
from sanad.biometrics.synthetic import FACE_DIM
from sanad.config import Settings
from sanad.credentials.card import CardClaims, issue_qr, td1_data
from sanad.credentials.card_pdf import CardFace, CardFonts, FpdfCardRenderer, pdf_to_png
from sanad.credentials.ids import new_card_number
from sanad.credentials.keys import IssuerKey
from sanad.credentials.mrz import td1_lines
from sanad.credentials.qr import decode_claims, decode_signed, qr_version
from sanad.errors import (
    CardNotIssuable,
    CardStateConflict,
    InvalidInput,
    NotFound,
    QrTooLarge,
    SanadError,
)
from sanad.notify.outbox import emit
from sanad.registry import status_list
from sanad.registry.card_models import PrintJob, PrintState
from sanad.registry.db import utcnow
from sanad.registry.gallery import FACE, template_aad
from sanad.registry.models import BiometricRecord, Card, Enrolment, Person, PersonStatus
from sanad.registry.sealing import TemplateSealer

__all__ = [
    "ACTIVE",
    "ISSUE_REASONS",
    "RETURNED",
    "REVOCATION_REASONS",
    "REVOKED",
    "IssuedCard",
    "active_card_id",
    "card_face",
    "card_pdf_bytes",
    "card_png_bytes",
    "get_card",
    "issue_card",
    "list_print_jobs",
    "mark_collected",
    "mark_print_failed",
    "mark_printed",
    "print_batch",
    "queued_count",
    "reissue_card",
    "renew_card",
    "replace_lost_card",
    "request_print",
    "request_reprint",
    "revoke_card",
    "revoke_person_cards",
    "surrender_card",
]

ACTIVE = "active"
REVOKED = "revoked"
RETURNED = "returned"
"""Person status after a voluntary return (deregistered; the record is kept)."""

REVOCATION_REASONS = ("lost", "surrendered", "deceased", "fraud", "superseded", "duplicate")
# Set by the system, never chosen at the desk: a renewal/re-issue (`superseded`), an adjudicator
# linking the record to an existing identity (`duplicate`).
SYSTEM_REVOCATION_REASONS = ("superseded", "duplicate")
ISSUE_REASONS = ("new", "renewal", "replacement", "update")
CARD_AUTHORITY = "Refugee Registration Authority"


@dataclass(frozen=True)
class IssuedCard:
    """A freshly issued card, its MRZ lines, QR text, and its print job."""

    card: Card
    mrz: list[str]
    qr: str
    print_job: PrintJob | None = None
    superseded: tuple[uuid.UUID, ...] = ()


def _face_capture(
    session: Session, person: Person, sealer: TemplateSealer
) -> tuple[int | None, bytes | None]:
    """The person's newest face capture for the card: its record id and int8 template."""
    rec = session.scalar(
        select(BiometricRecord)
        .where(BiometricRecord.person_id == person.id, BiometricRecord.modality == FACE)
        .order_by(BiometricRecord.id.desc())
    )
    if rec is None:
        return None, None
    try:
        raw = sealer.open(rec.template, aad=template_aad(person.id, FACE), session=session)
    except SanadError:
        # An erased (crypto-shredded) template: the card is issued without a face template
        # rather than not at all; the checkpoint then reports `face_unavailable` on a 1:1.
        return None, None
    return rec.id, quantise_int8(decode_template(raw, FACE_DIM))


def outdated_cards(session: Session, person_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Card]:
    """Each person's active card that carries an older face than their newest capture (or no
    face at all while one is now on record): it should be re-issued (reason ``update``) so
    checkpoints compare against the current face (docs/recapture.md)."""
    if not person_ids:
        return {}
    return {c.person_id: c for c in session.scalars(select(Card).where(
        Card.person_id.in_(list(person_ids)), Card.status == ACTIVE, Card.face_outdated))}


def refresh_face_outdated(session: Session, person_id: uuid.UUID) -> None:
    """Flag the person's active card(s) whose face is not their newest face capture. Called in
    the transaction that changes the newest face (a re-capture, a first capture, a held capture
    accepted, captures moved onto the person by a link), so the flag always agrees with
    `face_record_id`."""
    session.flush()
    newest = session.scalar(select(func.max(BiometricRecord.id)).where(
        BiometricRecord.person_id == person_id, BiometricRecord.modality == FACE))
    if newest is None:
        return
    session.execute(update(Card).where(
        Card.person_id == person_id, Card.status == ACTIVE,
        or_(Card.face_record_id.is_(None), Card.face_record_id != newest),
    ).values(face_outdated=True))


def cards_to_reissue(session: Session, *, limit: int = 100, offset: int = 0
                     ) -> list[tuple[Card, Person]]:
    """Every active card flagged as carrying an older face than its holder's newest capture,
    oldest issue first: the card officers' re-issue queue (reason ``update``). A read of the
    flagged cards only (partial index `ix_cards_face_outdated`)."""
    rows = session.execute(
        select(Card, Person).join(Person, Person.id == Card.person_id)
        .where(Card.status == ACTIVE, Card.face_outdated)
        .order_by(Card.issued_at, Card.id).limit(limit).offset(offset))
    return [(card, person) for card, person in rows]


def audit_reissue_queue(session: Session, *, actor: str, cards: list[Card]) -> None:
    """The re-issue queue names people: its read is audited (which cards were listed)."""
    audit.record(session, actor=actor, action="cards.reissue_due_read", subject_type="card",
                 subject_id="reissue-due",
                 details={"cards": [str(c.id) for c in cards],
                          "persons": [str(c.person_id) for c in cards]})


def _unique_card_number(session: Session) -> str:
    while True:
        number = new_card_number()
        if session.scalar(select(Card.id).where(Card.card_number == number)) is None:
            return number


def _revoke(session: Session, card: Card, *, reason: str, officer: str) -> None:
    card.status = REVOKED
    card.revocation_reason = reason
    card.revoked_at = utcnow()
    card.revoked_by = officer
    version = status_list.bump_version(session)
    audit.record(
        session, actor=officer, action="card.revoke", subject_type="card",
        subject_id=str(card.id),
        details={"reason": reason, "person_id": str(card.person_id),
                 "status_index": card.status_index, "status_version": version},
    )
    emit(session, event_type="card.revoked", subject_id=card.id, payload={
        "card_id": str(card.id), "person_id": str(card.person_id),
        "card_number": card.card_number, "reason": reason,
    })


def _active_cards(session: Session, person_id: uuid.UUID) -> list[Card]:
    return list(
        session.scalars(
            select(Card).where(Card.person_id == person_id, Card.status == ACTIVE)
            .order_by(Card.issued_at).with_for_update()
        )
    )


def issue_card(
    session: Session,
    *,
    person_id: uuid.UUID,
    officer: str,
    key: IssuerKey,
    sealer: TemplateSealer,
    settings: Settings,
    issue_reason: str = "new",
    old_card_reason: str = "superseded",
    request_printing: bool = True,
) -> IssuedCard:
    """Issue a card for an active person; any active card is revoked (`old_card_reason`).

    In one transaction (the caller commits): allocate the status index, sign the QR (refused
    with `QrTooLarge` beyond `settings.qr_max_version`), revoke superseded cards, add the print
    job, write the audit rows. `CardNotIssuable` unless the person is active.
    """
    if issue_reason not in ISSUE_REASONS:
        raise InvalidInput(f"issue_reason must be one of {', '.join(ISSUE_REASONS)}",
                           field="issue_reason")
    if old_card_reason not in REVOCATION_REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(REVOCATION_REASONS)}",
                           field="reason")
    if settings.station_mode:
        # A field kit only gives provisional receipts: a card follows central deduplication.
        raise CardNotIssuable("field stations do not issue cards; sync to the centre first")
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    if person.status != PersonStatus.ACTIVE:
        raise CardNotIssuable(
            f"person is {person.status}: a card follows only a settled, active identity"
        )
    now = utcnow().replace(microsecond=0)
    expires = now + timedelta(days=settings.card_validity_days)
    number = _unique_card_number(session)
    index = status_list.allocate_index(session)
    dob = (
        str(person.date_of_birth.year) if person.dob_precision == "year"
        else person.date_of_birth.isoformat()
    )
    face_record, face_template = _face_capture(session, person, sealer)
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
        status_index=index,
        face_template=face_template,
    )
    qr = issue_qr(claims, key)
    version = qr_version(qr)
    if version > settings.qr_max_version:
        raise QrTooLarge(
            f"the card's QR needs version {version} at level M ({len(qr)} characters), over "
            f"the budget of version {settings.qr_max_version} (SANAD_QR_MAX_VERSION)"
        )
    mrz = td1_lines(td1_data(claims, issuing_state=settings.issuing_state))
    superseded = _active_cards(session, person.id)
    for old in superseded:
        _revoke(session, old, reason=old_card_reason, officer=officer)
    card = Card(
        person_id=person.id, card_number=number, cti=claims.card_id, kid=key.kid.hex(),
        issued_at=now, expires_at=expires, status=ACTIVE, qr=qr, mrz="\n".join(mrz),
        issued_by=officer, status_index=index, issue_reason=issue_reason,
        replaces_id=superseded[-1].id if superseded else None, face_record_id=face_record,
    )
    session.add(card)
    session.flush()
    audit.record(
        session, actor=officer, action="card.issue", subject_type="card", subject_id=str(card.id),
        details={"person_id": str(person.id), "card_number": number, "kid": key.kid.hex(),
                 "status_index": index, "issue_reason": issue_reason, "qr_version": version,
                 "superseded": [str(c.id) for c in superseded]},
    )
    emit(session, event_type="card.issued", subject_id=card.id, payload={
        "card_id": str(card.id), "person_id": str(person.id), "card_number": number,
        "issue_reason": issue_reason, "expires_at": expires.isoformat(),
        "superseded": [str(c.id) for c in superseded],
    })
    job = request_print(session, card_id=card.id, officer=officer) if request_printing else None
    return IssuedCard(card=card, mrz=mrz, qr=qr, print_job=job,
                      superseded=tuple(c.id for c in superseded))


def renew_card(
    session: Session, *, person_id: uuid.UUID, officer: str, key: IssuerKey,
    sealer: TemplateSealer, settings: Settings,
) -> IssuedCard:
    """A new card with a fresh validity period; the current one is revoked as superseded."""
    return issue_card(session, person_id=person_id, officer=officer, key=key, sealer=sealer,
                      settings=settings, issue_reason="renewal", old_card_reason="superseded")


def replace_lost_card(
    session: Session, *, person_id: uuid.UUID, officer: str, key: IssuerKey,
    sealer: TemplateSealer, settings: Settings,
) -> IssuedCard:
    """A replacement for a lost card; the lost one is revoked with reason `lost`.

    `CardStateConflict` when the person has no active card to report lost.
    """
    if not _active_cards(session, person_id):
        raise CardStateConflict("the person has no active card to report lost")
    return issue_card(session, person_id=person_id, officer=officer, key=key, sealer=sealer,
                      settings=settings, issue_reason="replacement", old_card_reason="lost")


def reissue_card(
    session: Session, *, person_id: uuid.UUID, officer: str, key: IssuerKey,
    sealer: TemplateSealer, settings: Settings, reason: str = "update",
) -> IssuedCard:
    """Re-issue after the person's details changed (`reason="update"`) or for another
    `ISSUE_REASONS` reason; the old card is revoked as superseded."""
    return issue_card(session, person_id=person_id, officer=officer, key=key, sealer=sealer,
                      settings=settings, issue_reason=reason, old_card_reason="superseded")


def get_card(session: Session, *, card_id: uuid.UUID, actor: str, lock: bool = False) -> Card:
    """One card (`NotFound` otherwise); audited as a read of the card."""
    card = session.get(Card, card_id, with_for_update=lock)
    if card is None:
        raise NotFound(f"no card with id {card_id}")
    audit.record(session, actor=actor, action="card.read", subject_type="card",
                 subject_id=str(card.id), details={"person_id": str(card.person_id)})
    return card


def active_card_id(session: Session, *, person_id: uuid.UUID) -> uuid.UUID:
    """The id of the person's active card; `NotFound` / `CardStateConflict` otherwise."""
    if session.get(Person, person_id) is None:
        raise NotFound(f"no person with id {person_id}")
    card_id = session.scalar(
        select(Card.id).where(Card.person_id == person_id, Card.status == ACTIVE)
        .order_by(Card.issued_at.desc())
    )
    if card_id is None:
        raise CardStateConflict("the person has no active card")
    return card_id


def revoke_card(session: Session, *, card_id: uuid.UUID, reason: str, officer: str) -> Card:
    """Revoke one active card with a reason from `REVOCATION_REASONS`; bumps the status list.

    `CardStateConflict` if it is already revoked.
    """
    if reason not in REVOCATION_REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(REVOCATION_REASONS)}",
                           field="reason")
    card = session.get(Card, card_id, with_for_update=True)
    if card is None:
        raise NotFound(f"no card with id {card_id}")
    if card.status != ACTIVE:
        raise CardStateConflict(f"card {card.card_number} is already {card.status}")
    _revoke(session, card, reason=reason, officer=officer)
    return card


def revoke_person_cards(
    session: Session, *, person_id: uuid.UUID, reason: str, officer: str
) -> list[Card]:
    """Revoke every active card of a person (e.g. `deceased`, `fraud`); returns them."""
    if reason not in REVOCATION_REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(REVOCATION_REASONS)}",
                           field="reason")
    cards = _active_cards(session, person_id)
    for card in cards:
        _revoke(session, card, reason=reason, officer=officer)
    return cards


def surrender_card(
    session: Session, *, person_id: uuid.UUID, officer: str, note: str = ""
) -> list[Card]:
    """Voluntary return: revoke the person's cards as `surrendered` and deregister them
    (status `returned`). The record itself is kept (retention policy decides its end).

    `CardStateConflict` if the person is already returned.
    """
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    if person.status == RETURNED:
        raise CardStateConflict("the person has already returned")
    cards = _active_cards(session, person_id)
    for card in cards:
        _revoke(session, card, reason="surrendered", officer=officer)
    before = person.status
    person.status = RETURNED
    person.version += 1
    person.updated_at = utcnow()
    audit.record(
        session, actor=officer, action="person.returned", subject_type="person",
        subject_id=str(person.id),
        details={"before": before, "cards": [str(c.id) for c in cards], "note": note[:200]},
    )
    return cards


# -- rendering -----------------------------------------------------------------------------


def card_face(card: Card, *, photo: bytes | None = None) -> CardFace:
    """What is printed on `card`, read back from its own signed QR (so the print always
    matches what was signed, even if the person's record changed since)."""
    prefix = card.qr[: card.qr.index(":") + 1]  # Base45 has ":" too, but never before it
    claims = CardClaims.from_cwt(decode_claims(decode_signed(card.qr, prefixes=(prefix,))))
    lines = card.mrz.split("\n")
    return CardFace(
        claims=claims, mrz=(lines[0], lines[1], lines[2]), qr=card.qr,
        authority=CARD_AUTHORITY, photo=photo,
    )


def _photo(session: Session, card: Card, sealer: TemplateSealer | None) -> bytes | None:
    """The holder's enrolment photo when the photo store has one (else the silhouette)."""
    if sealer is None:
        return None
    from sanad.registry.photos import person_photo

    try:
        return person_photo(session, sealer, card.person_id)
    except SanadError:  # erased (crypto-shredded) or unreadable: print the silhouette
        return None


def _renderer(settings: Settings) -> FpdfCardRenderer:
    return FpdfCardRenderer(
        CardFonts(settings.card_font_latin, settings.card_font_arabic, settings.card_font_mrz)
    )


def card_pdf_bytes(
    session: Session, *, card_id: uuid.UUID, actor: str, settings: Settings,
    sealer: TemplateSealer | None = None,
) -> bytes:
    """The card's print-ready PDF (ID-1, front and back); audited as `card.render`.

    With `sealer`, the holder's enrolment photo (`sanad.registry.photos`) is printed; without
    one, or when no photo was captured, a neutral silhouette.
    """
    card = get_card(session, card_id=card_id, actor=actor)
    photo = _photo(session, card, sealer)
    pdf = _renderer(settings).render([card_face(card, photo=photo)])
    audit.record(session, actor=actor, action="card.render", subject_type="card",
                 subject_id=str(card.id), details={"format": "pdf", "photo": photo is not None})
    return pdf


def card_png_bytes(
    session: Session, *, card_id: uuid.UUID, actor: str, settings: Settings,
    side: str = "front", dpi: int = 150, sealer: TemplateSealer | None = None,
) -> bytes:
    """A PNG preview of one side (`front` or `back`) of the card, for the officer UI (with
    the holder's photo when `sealer` is given and a photo is on file)."""
    if side not in ("front", "back"):
        raise InvalidInput("side must be front or back", field="side")
    if not 50 <= dpi <= 600:
        raise InvalidInput("dpi must be between 50 and 600", field="dpi")
    card = get_card(session, card_id=card_id, actor=actor)
    photo = _photo(session, card, sealer) if side == "front" else None
    pdf = _renderer(settings).render([card_face(card, photo=photo)])
    audit.record(session, actor=actor, action="card.render", subject_type="card",
                 subject_id=str(card.id),
                 details={"format": "png", "side": side, "photo": photo is not None})
    return pdf_to_png(pdf, page=0 if side == "front" else 1, dpi=dpi)


# -- print queue ---------------------------------------------------------------------------


def _job(session: Session, job_id: uuid.UUID) -> PrintJob:
    job = session.get(PrintJob, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"no print job with id {job_id}")
    return job


def _audit_job(session: Session, job: PrintJob, action: str, actor: str,
               **details: Any) -> None:
    audit.record(session, actor=actor, action=f"print.{action}", subject_type="print_job",
                 subject_id=str(job.id),
                 details={"card_id": str(job.card_id), "state": job.state, **details})


def request_print(session: Session, *, card_id: uuid.UUID, officer: str) -> PrintJob:
    """Queue a card for printing (state `requested`). `CardStateConflict` for a revoked card
    or one that already has an open job."""
    card = session.get(Card, card_id)
    if card is None:
        raise NotFound(f"no card with id {card_id}")
    if card.status != ACTIVE:
        raise CardStateConflict(f"card {card.card_number} is {card.status}: not printed")
    open_job = session.scalar(
        select(PrintJob.id).where(PrintJob.card_id == card_id,
                                  PrintJob.state == PrintState.REQUESTED)
    )
    if open_job is not None:
        raise CardStateConflict(f"card {card.card_number} is already queued for printing")
    job = PrintJob(card_id=card_id, state=PrintState.REQUESTED, attempts=0, reprints=0,
                   requested_by=officer, requested_at=utcnow())
    session.add(job)
    session.flush()
    _audit_job(session, job, "request", officer)
    return job


def mark_printed(
    session: Session, *, job_id: uuid.UUID, officer: str, batch: str | None = None,
    pdf_sha256: str | None = None,
) -> PrintJob:
    """requested → printed (one more attempt counted)."""
    job = _job(session, job_id)
    if job.state != PrintState.REQUESTED:
        raise CardStateConflict(f"print job is {job.state}, not requested")
    job.attempts += 1
    job.state = PrintState.PRINTED
    job.printed_by = officer
    job.printed_at = utcnow()
    job.batch = batch
    job.pdf_sha256 = pdf_sha256
    job.last_error = None
    _audit_job(session, job, "printed", officer, batch=batch)
    _ready(session, job)
    return job


def _ready(session: Session, job: PrintJob) -> None:
    """`card.ready`: the card can be collected. With the holder's phone, the site where their
    household was enrolled (where cards are handed over) and the date, so the notification
    sender can tell them (`sanad.notify.senders`); subscribers get the same event. Not for a
    card revoked while it was queued: it is destroyed, never handed over."""
    card = session.get(Card, job.card_id)
    person = session.get(Person, card.person_id) if card is not None else None
    if card is None or person is None or card.status != ACTIVE:
        return
    site = session.scalar(
        select(Enrolment.site).where(Enrolment.household_id == person.household_id)
        .order_by(Enrolment.enrolled_at.desc()).limit(1)
    )
    ready_at = job.printed_at or utcnow()
    emit(session, event_type="card.ready", subject_id=card.id, payload={
        "card_id": str(card.id), "person_id": str(person.id), "card_number": card.card_number,
        "print_job_id": str(job.id), "reprint": job.reprints > 0,
        "phone": person.phone, "site": site or "the registration office",
        "date": ready_at.date().isoformat(),
    })


def mark_print_failed(
    session: Session, *, job_id: uuid.UUID, officer: str, error: str, max_attempts: int
) -> PrintJob:
    """A failed attempt: the job stays `requested` for a retry, or becomes `failed` once
    `max_attempts` attempts have failed."""
    job = _job(session, job_id)
    if job.state != PrintState.REQUESTED:
        raise CardStateConflict(f"print job is {job.state}, not requested")
    job.attempts += 1
    job.last_error = error[:500]
    if job.attempts >= max_attempts:
        job.state = PrintState.FAILED
    _audit_job(session, job, "failed", officer, attempts=job.attempts, error=error[:200])
    return job


def request_reprint(
    session: Session, *, job_id: uuid.UUID, officer: str, reason: str
) -> PrintJob:
    """Print the same card again (damaged print, failed job): back to `requested`, with the
    reprint counter incremented. A collected card is never reprinted (re-issue it instead:
    a second physical copy of one card id would be a second valid card)."""
    job = _job(session, job_id)
    if job.state not in (PrintState.PRINTED, PrintState.FAILED):
        raise CardStateConflict(f"print job is {job.state}: only printed or failed jobs "
                                "are reprinted")
    card = session.get(Card, job.card_id)
    if card is None or card.status != ACTIVE:
        raise CardStateConflict("the card is no longer active: re-issue instead")
    if len(reason.strip()) < 3:
        raise InvalidInput("a reprint needs a reason", field="reason")
    job.state = PrintState.REQUESTED
    job.reprints += 1
    job.attempts = 0
    _audit_job(session, job, "reprint", officer, reprints=job.reprints, reason=reason[:200])
    return job


def mark_collected(
    session: Session, *, job_id: uuid.UUID, officer: str, collected_by: str, proof: str
) -> PrintJob:
    """printed → collected: who took the card (holder or named proxy) and the proof shown
    (e.g. "fingerprint match", "registration slip 123"); `officer` handed it over."""
    job = _job(session, job_id)
    if job.state != PrintState.PRINTED:
        raise CardStateConflict(f"print job is {job.state}, not printed")
    if not collected_by.strip():
        raise InvalidInput("name who collected the card", field="collected_by")
    if not proof.strip():
        raise InvalidInput("record the proof of identity shown", field="proof")
    card = session.get(Card, job.card_id)
    if card is None or card.status != ACTIVE:
        raise CardStateConflict("the card was revoked after printing: destroy it")
    job.state = PrintState.COLLECTED
    job.collected_by = collected_by.strip()[:120]
    job.collection_proof = proof.strip()[:1000]
    job.handed_over_by = officer
    job.collected_at = utcnow()
    _audit_job(session, job, "collected", officer, collected_by=job.collected_by)
    return job


def queued_count(session: Session) -> int:
    """How many print jobs wait in state `requested`."""
    return int(session.scalar(
        select(func.count()).select_from(PrintJob).where(PrintJob.state == PrintState.REQUESTED)
    ) or 0)


def list_print_jobs(
    session: Session, *, state: str | None = None, limit: int = 100
) -> list[PrintJob]:
    """Print jobs, oldest request first, optionally of one state."""
    if state is not None and state not in {s.value for s in PrintState}:
        raise InvalidInput(f"unknown print state {state!r}", field="state")
    query = select(PrintJob).order_by(PrintJob.requested_at, PrintJob.id).limit(limit)
    if state is not None:
        query = query.where(PrintJob.state == state)
    return list(session.scalars(query))


def print_batch(
    session: Session,
    *,
    officer: str,
    settings: Settings,
    limit: int = 100,
    job_ids: Sequence[uuid.UUID] | None = None,
    progress: Callable[[int], None] | None = None,
    sealer: TemplateSealer | None = None,
) -> tuple[bytes, list[PrintJob]]:
    """Render queued cards into one PDF (two pages per card) and mark their jobs printed.

    Jobs whose card was revoked meanwhile are cancelled, never printed. Returns the PDF and
    the jobs printed; `CardStateConflict` when nothing is queued.
    """
    query = (
        select(PrintJob).where(PrintJob.state == PrintState.REQUESTED)
        .order_by(PrintJob.requested_at, PrintJob.id).limit(limit).with_for_update()
    )
    if job_ids is not None:
        query = query.where(PrintJob.id.in_(list(job_ids)))
    jobs = list(session.scalars(query))
    printable: list[tuple[PrintJob, Card]] = []
    for job in jobs:
        card = session.get(Card, job.card_id)
        if card is None or card.status != ACTIVE:
            job.state = PrintState.CANCELLED
            _audit_job(session, job, "cancelled", officer, why="card not active")
            continue
        printable.append((job, card))
    if not printable:
        raise CardStateConflict("no active cards are queued for printing")
    faces = [card_face(c, photo=_photo(session, c, sealer)) for _, c in printable]
    pdf = _renderer(settings).render(faces, progress=progress)
    digest = hashlib.sha256(pdf).hexdigest()
    batch = utcnow().strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
    printed = [
        mark_printed(session, job_id=job.id, officer=officer, batch=batch, pdf_sha256=digest)
        for job, _ in printable
    ]
    return pdf, printed
