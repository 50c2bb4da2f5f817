"""Enrolment: a household and its members in one transaction, deduplicated 1:N before commit.

Order of work, all under the enrolment lock: catch the gallery up with the database, search
every member against the gallery *and* against the other members of the same submission, then
either refuse the whole submission (a `duplicate` never creates a second identity) or write
household, persons, sealed templates, adjudication cases and audit rows in one transaction.
Only after the commit are the new templates added to the in-memory index: a crash in between
leaves the database ahead of the index, which the watermark catch-up repairs at the next start.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from sanad import audit
from sanad.abis.decision import Decision, Outcome, dedup_batch
from sanad.abis.templates import TemplateError, decode_template, encode_template
from sanad.biometrics.synthetic import FACE_DIM
from sanad.config import Settings
from sanad.credentials.ids import new_registration_number
from sanad.errors import InvalidInput
from sanad.registry.db import transaction
from sanad.registry.gallery import FACE, Gallery, template_aad
from sanad.registry.models import (
    AdjudicationCase,
    BiometricRecord,
    DobPrecision,
    Enrolment,
    Household,
    Person,
    PersonStatus,
)
from sanad.registry.schemas import (
    CandidatePublic,
    EnrolmentResult,
    HouseholdCreate,
    MemberOutcome,
    PersonCreate,
)

# Arbitrary constant naming sanad's enrolment lock among PostgreSQL advisory locks.
_ENROLMENT_LOCK_KEY = 0x5A4E4144


@dataclass(frozen=True)
class EnrolmentContext:
    """Who enrols (for the audit trail)."""

    officer: str


def _probe_vectors(members: list[PersonCreate]) -> np.ndarray:
    vectors = []
    for i, member in enumerate(members):
        field = f"members.{i}.face.template"
        try:
            vector = decode_template(member.face.template_bytes(), FACE_DIM)
        except TemplateError as exc:
            raise InvalidInput(exc.message, field=field) from exc
        norm = float(np.linalg.norm(vector))
        if norm < 1e-6:
            raise InvalidInput("template is a zero vector", field=field)
        # Devices may send unnormalised embeddings; every score assumes unit vectors.
        vectors.append(vector / norm)
    return np.stack(vectors).astype(np.float32)


def _unique_number(session: Session, column: InstrumentedAttribute[str]) -> str:
    # Random 11 digits + check digit: collisions are rare but possible, so look before use.
    while True:
        number = new_registration_number()
        if session.scalar(select(column).where(column == number)) is None:
            return number


def _stored_dob(member: PersonCreate) -> date:
    if member.dob_precision == DobPrecision.YEAR:
        return date(member.date_of_birth.year, 1, 1)
    return member.date_of_birth


def _candidates(
    session: Session, decision: Decision, new_person_ids: list[uuid.UUID | None]
) -> list[CandidatePublic]:
    gallery_ids = [c.gallery_id for c in decision.candidates if c.gallery_id >= 0]
    owners: dict[int, uuid.UUID] = {}
    if gallery_ids:
        rows = session.execute(
            select(BiometricRecord.id, BiometricRecord.person_id).where(
                BiometricRecord.id.in_(gallery_ids)
            )
        ).all()
        owners = {int(r[0]): r[1] for r in rows}
    out = []
    for c in decision.candidates:
        if c.gallery_id >= 0:
            out.append(CandidatePublic(person_id=owners.get(c.gallery_id), score=c.score))
        else:
            member = -c.gallery_id - 1
            out.append(
                CandidatePublic(
                    person_id=new_person_ids[member], member_no=member + 1, score=c.score
                )
            )
    return out


def enrol_household(
    sessions: sessionmaker[Session],
    gallery: Gallery,
    settings: Settings,
    *,
    data: HouseholdCreate,
    ctx: EnrolmentContext,
) -> EnrolmentResult:
    """Deduplicate and, unless a member is a duplicate, enrol the household. Audited either way."""
    probes = _probe_vectors(data.members)
    with gallery.lock:
        new_records: list[tuple[int, np.ndarray]] = []
        with transaction(sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ENROLMENT_LOCK_KEY}
                )
            gallery.catch_up(session)
            decisions = dedup_batch(
                probes,
                gallery.index,
                k=settings.dedup_candidates,
                match_threshold=settings.dedup_match_threshold,
                review_threshold=settings.dedup_review_threshold,
            )
            outcomes = [d.outcome for d in decisions]
            if Outcome.DUPLICATE in outcomes:
                result = EnrolmentResult(
                    outcome="duplicate",
                    household_id=None,
                    registration_number=None,
                    members=[
                        MemberOutcome(
                            member_no=i + 1, person_id=None, outcome=d.outcome.value,
                            candidates=_candidates(session, d, [None] * len(decisions)),
                        )
                        for i, d in enumerate(decisions)
                    ],
                )
                audit.record(
                    session, actor=ctx.officer, action="enrolment.refused_duplicate",
                    subject_type="enrolment_attempt", subject_id=str(uuid.uuid4()),
                    details={
                        "site": data.site, "station": data.station,
                        "matches": [
                            {"member_no": m.member_no,
                             "person_ids": [
                                 str(c.person_id) for c in m.candidates if c.person_id
                             ],
                             "best_score": (
                                 round(m.candidates[0].score, 4) if m.candidates else None
                             )}
                            for m in result.members if m.outcome == "duplicate"
                        ],
                    },
                )
                return result

            overall = Outcome.ADJUDICATE if Outcome.ADJUDICATE in outcomes else Outcome.NO_MATCH
            household = Household(
                registration_number=_unique_number(session, Household.registration_number),
                province=data.province,
                district=data.district,
            )
            session.add(household)
            session.flush()
            persons: list[Person] = []
            for i, (member, decision) in enumerate(zip(data.members, decisions, strict=True)):
                person = Person(
                    household_id=household.id,
                    member_no=i + 1,
                    registration_number=_unique_number(session, Person.registration_number),
                    relationship_to_head=member.relationship_to_head,
                    given_name=member.given_name,
                    family_name=member.family_name,
                    father_name=member.father_name,
                    given_name_ar=member.given_name_ar,
                    family_name_ar=member.family_name_ar,
                    father_name_ar=member.father_name_ar,
                    date_of_birth=_stored_dob(member),
                    dob_precision=member.dob_precision.value,
                    sex=member.sex.value,
                    nationality=member.nationality,
                    province=data.province,
                    district=data.district,
                    phone=member.phone,
                    status=(
                        PersonStatus.PENDING_ADJUDICATION
                        if decision.outcome == Outcome.ADJUDICATE
                        else PersonStatus.ACTIVE
                    ),
                )
                session.add(person)
                persons.append(person)
            session.flush()
            person_ids: list[uuid.UUID | None] = [p.id for p in persons]
            records: list[tuple[BiometricRecord, np.ndarray]] = []
            for person, member, probe in zip(persons, data.members, probes, strict=True):
                rec = BiometricRecord(
                    person_id=person.id,
                    modality=FACE,
                    template=gallery.sealer.seal(
                        encode_template(probe), aad=template_aad(person.id, FACE)
                    ),
                    quality=member.face.quality,
                )
                session.add(rec)
                records.append((rec, probe))
            session.add(
                Enrolment(
                    household_id=household.id, officer=ctx.officer, site=data.site,
                    station=data.station, outcome=overall.value,
                )
            )
            session.flush()
            members_out = []
            for person, decision in zip(persons, decisions, strict=True):
                candidates = _candidates(session, decision, person_ids)
                if decision.outcome == Outcome.ADJUDICATE:
                    case = AdjudicationCase(
                        person_id=person.id,
                        candidates=[c.model_dump(mode="json") for c in candidates],
                    )
                    session.add(case)
                    session.flush()
                    audit.record(
                        session, actor=ctx.officer, action="adjudication.open",
                        subject_type="adjudication_case", subject_id=str(case.id),
                        details={"person_id": str(person.id),
                                 "best_score": round(candidates[0].score, 4)},
                    )
                audit.record(
                    session, actor=ctx.officer, action="person.create", subject_type="person",
                    subject_id=str(person.id),
                    details={"household_id": str(household.id),
                             "dedup": decision.outcome.value},
                )
                members_out.append(
                    MemberOutcome(
                        member_no=person.member_no, person_id=person.id,
                        outcome=decision.outcome.value, candidates=candidates,
                    )
                )
            audit.record(
                session, actor=ctx.officer, action="household.enrol", subject_type="household",
                subject_id=str(household.id),
                details={"members": len(persons), "outcome": overall.value,
                         "site": data.site, "station": data.station},
            )
            new_records = [(rec.id, probe) for rec, probe in records]
            result = EnrolmentResult(
                outcome=overall.value,
                household_id=household.id,
                registration_number=household.registration_number,
                members=members_out,
            )
        gallery.add_committed(new_records)
        return result
