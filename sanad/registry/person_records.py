"""Person records for the officer application: search with filters, optimistic-concurrency
updates, the full record (household, cards, status history, audit trail) and the portrait
(read from the enrolment's sealed captures).

Every read of a person's record is audited, in the caller's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from sanad import audit
from sanad.errors import InvalidInput, NotFound, PreconditionFailed, PreconditionRequired
from sanad.notify.outbox import emit
from sanad.registry.access_models import PersonPhoto, StatusChange
from sanad.registry.adjudication import undecided_cases
from sanad.registry.captures import CaptureSummary, summaries_for
from sanad.registry.cards import outdated_cards
from sanad.registry.db import utcnow
from sanad.registry.gallery import template_aad
from sanad.registry.models import (
    AdjudicationCase,
    AuditEvent,
    Household,
    Person,
)
from sanad.registry.photos import media_type, photos_of
from sanad.registry.sealing import TemplateSealer
from sanad.registry.status_changes import history

EDITABLE = ("given_name", "family_name", "father_name", "given_name_ar", "family_name_ar",
            "father_name_ar", "date_of_birth", "dob_precision", "phone")


@dataclass(frozen=True)
class PersonFilter:
    """Filters of the person search; every one is optional and they combine with AND."""

    q: str | None = None
    province: str | None = None
    district: str | None = None
    status: str | None = None
    sex: str | None = None
    household_id: uuid.UUID | None = None
    registration_number: str | None = None


def search_persons(
    session: Session, *, actor: str, filters: PersonFilter, limit: int = 50, offset: int = 0
) -> tuple[list[Person], int]:
    """A page of matching persons (newest first) and the total count; audited with the ids."""
    for name, value in filters.__dict__.items():
        if isinstance(value, str) and (len(value) > 100 or not value.isprintable()):
            raise InvalidInput("filters are at most 100 printable characters", field=name)
    query = select(Person)
    if filters.q:
        like = f"%{filters.q.strip().lower()}%"
        query = query.where(or_(
            func.lower(Person.given_name).like(like), func.lower(Person.family_name).like(like),
            Person.given_name_ar.like(like), Person.family_name_ar.like(like),
            Person.registration_number == filters.q.strip(),
        ))
    for column, value in ((Person.province, filters.province), (Person.district, filters.district),
                          (Person.status, filters.status), (Person.sex, filters.sex),
                          (Person.household_id, filters.household_id),
                          (Person.registration_number, filters.registration_number)):
        if value is not None and value != "":
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    persons = list(
        session.scalars(
            query.options(selectinload(Person.cards))
            .order_by(Person.created_at.desc(), Person.id).limit(limit).offset(offset)
        )
    )
    audit.record(
        session, actor=actor, action="person.list", subject_type="person", subject_id="*",
        details={"ids": [str(p.id) for p in persons],
                 "filters": {k: str(v) for k, v in filters.__dict__.items() if v}},
    )
    return persons, int(total)


def etag(person: Person) -> str:
    """A strong ETag naming the record and its version."""
    return f'"{person.id}.{person.version}"'


def check_if_match(person: Person, if_match: str | None) -> None:
    """Refuse an update without `If-Match` (428) or with a stale one (412)."""
    if if_match is None:
        raise PreconditionRequired("send If-Match with the ETag of your last read")
    tags = [t.strip() for t in if_match.split(",")]
    if "*" not in tags and etag(person) not in tags:
        raise PreconditionFailed(
            f"the record changed since you read it (now version {person.version}); re-read it"
        )


def update_person(
    session: Session, *, person_id: uuid.UUID, changes: dict[str, Any], if_match: str | None,
    actor: str,
) -> Person:
    """Change biographic fields; needs the current ETag. Audited with the changed field names
    (not values: the audit log keeps no more personal data than an auditor needs)."""
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    check_if_match(person, if_match)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(unknown)}", field=unknown[0])
    changed = sorted(k for k, v in changes.items() if getattr(person, k) != v)
    for key in changed:
        value = changes[key]
        if key == "date_of_birth" and isinstance(value, date):
            precision = changes.get("dob_precision", person.dob_precision)
            value = date(value.year, 1, 1) if precision == "year" else value
        setattr(person, key, value)
    if changed:
        person.version += 1
        person.updated_at = utcnow()
        emit(session, event_type="person.updated", subject_id=person.id,
             payload={"person_id": str(person.id), "version": person.version, "fields": changed})
    audit.record(
        session, actor=actor, action="person.update", subject_type="person",
        subject_id=str(person.id), details={"fields": changed, "version": person.version},
    )
    return person


@dataclass(frozen=True)
class PersonRecord:
    """Everything the person page shows."""

    person: Person
    household: Household
    members: list[Person]
    changes: list[StatusChange]
    trail: list[AuditEvent]
    captures: CaptureSummary | None  # None unless asked for (`with_captures`)
    # The active card carrying an older face than the newest capture (re-issue it), if any.
    outdated_card: uuid.UUID | None = None
    # Undecided adjudication cases on the person (e.g. a re-capture held for adjudicators).
    open_cases: list[AdjudicationCase] = field(default_factory=list)


def person_record(
    session: Session, *, person_id: uuid.UUID, actor: str, with_trail: bool,
    with_captures: bool = False,
) -> PersonRecord:
    """The full record of one person; audited as a read. `with_trail` (auditors) adds every
    audit event about the person, their household, their cards and their adjudication cases;
    `with_captures` what was captured and the biometric exceptions (`captures.READERS`)."""
    person = session.scalar(
        select(Person).where(Person.id == person_id).options(selectinload(Person.cards))
    )
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    household = session.scalar(
        select(Household).where(Household.id == person.household_id)
        .options(selectinload(Household.members))
    )
    assert household is not None  # foreign key
    audit.record(
        session, actor=actor, action="person.read", subject_type="person",
        subject_id=str(person.id),
        details={"view": "record", "trail": with_trail, "biometrics": with_captures},
    )
    trail: list[AuditEvent] = []
    if with_trail:
        cases = session.scalars(
            select(AdjudicationCase.id).where(AdjudicationCase.person_id == person.id)
        )
        subjects = [str(person.id), str(household.id), *(str(c.id) for c in person.cards),
                    *(str(c) for c in cases)]
        trail = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.subject_id.in_(subjects))
                .order_by(AuditEvent.seq)
            )
        )
    return PersonRecord(
        person=person, household=household, members=list(household.members),
        changes=history(session, household_id=household.id), trail=trail,
        captures=summaries_for(session, [person])[person.id] if with_captures else None,
        outdated_card=(c.id if (c := outdated_cards(session, [person.id]).get(person.id))
                       else None),
        open_cases=undecided_cases(session, person.id),
    )


def _legacy_portraits(
    session: Session, sealer: TemplateSealer, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[bytes, str]]:
    """Portraits a web enrolment kept in `person_photos` before the photo became part of the
    enrolment's sealed captures (2026-11-26); read-only, for registries enrolled earlier."""
    rows = session.scalars(select(PersonPhoto).where(PersonPhoto.person_id.in_(person_ids)))
    return {r.person_id: (sealer.open(r.data, aad=template_aad(r.person_id, "portrait")),
                          r.content_type) for r in rows}


def photos_for(
    session: Session, *, person_ids: list[uuid.UUID], actor: str, sealer: TemplateSealer
) -> dict[uuid.UUID, tuple[bytes, str]]:
    """Enrolment portraits (and their media types) of several persons, in one transaction:
    the photo sealed with the enrolment's captures (`registry.photos`), else a legacy
    `person_photos` row. Each photo read is audited."""
    out = {pid: (data, media_type(data))
           for pid, data in photos_of(session, sealer, person_ids).items()}
    missing = [pid for pid in person_ids if pid not in out]
    if missing:
        out.update(_legacy_portraits(session, sealer, missing))
    for pid in out:
        audit.record(session, actor=actor, action="person.photo_read", subject_type="person",
                     subject_id=str(pid))
    return out


def get_photo(
    session: Session, *, person_id: uuid.UUID, actor: str, sealer: TemplateSealer
) -> tuple[bytes, str]:
    """The portrait and its media type; audited as a read of the person's record."""
    found = photos_for(session, person_ids=[person_id], actor=actor, sealer=sealer)
    if person_id not in found:
        raise NotFound(f"no photo for person {person_id}")
    return found[person_id]
