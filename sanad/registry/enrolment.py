"""Enrolment: a household and its members in one transaction, deduplicated 1:N before commit.

Order of work, all under the enrolment lock: catch the gallery up with the database, search
every member's face against the gallery *and* against the other members of the same
submission, look up biographic candidates, then either refuse the whole submission (a
`duplicate` never creates a second identity) or write household, persons, sealed templates,
exceptions, adjudication cases and audit rows in one transaction. Only after the commit are
the new templates added to the in-memory index: a crash in between leaves the database ahead
of the index, which the watermark catch-up repairs at the next start.

Members without biometrics (refused, or medically impossible) take the alternative path:
biographic deduplication and a mandatory adjudication case. An officer may also ask for
adjudication instead of refusal when a member matches (`request_adjudication`, e.g. twins).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from sanad import audit
from sanad.abis.biographic import BioRecord, name_key, similarity
from sanad.abis.decision import Decision, Outcome, dedup_batch
from sanad.abis.templates import TemplateError, decode_template, encode_template
from sanad.biometrics.synthetic import FACE_DIM
from sanad.config import Settings
from sanad.credentials.ids import new_registration_number
from sanad.errors import InvalidInput
from sanad.notify.outbox import emit
from sanad.registry.db import transaction
from sanad.registry.gallery import FACE, PHOTO, Gallery, template_aad
from sanad.registry.models import (
    AdjudicationCase,
    BiometricException,
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
_BIOGRAPHIC_LIMIT = 20


@dataclass(frozen=True)
class EnrolmentContext:
    """Who enrols (for the audit trail)."""

    officer: str


@dataclass
class _Member:
    """Working state of one member during deduplication."""

    data: PersonCreate
    probe: np.ndarray | None
    quality: float = 0.0
    face: Decision | None = None
    outcome: Outcome = Outcome.NO_MATCH
    kind: str = "biometric"
    candidates: list[CandidatePublic] | None = None


def _probe(member: PersonCreate, i: int) -> tuple[np.ndarray | None, float]:
    """The member's face probe (unit vector) and capture quality."""
    face = member.face
    if face is None:
        return None, 0.0
    raw = face.template_bytes()
    quality = face.quality
    if raw is None:
        # Only a photo: the server's face model makes the template and judges quality.
        from sanad.biometrics.face import default_extractor

        field = f"members.{i}.face.photo"
        analysis = default_extractor().analyse(face.photo_bytes() or b"")
        if analysis.template is None:
            reasons = ", ".join(r.value for r in analysis.reasons)
            raise InvalidInput(f"face photo rejected: {reasons}", field=field)
        return analysis.template.astype(np.float32), analysis.quality
    field = f"members.{i}.face.template"
    try:
        vector = decode_template(raw, FACE_DIM)
    except TemplateError as exc:
        raise InvalidInput(exc.message, field=field) from exc
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise InvalidInput("template is a zero vector", field=field)
    # Devices may send unnormalised embeddings; every score assumes unit vectors.
    return (vector / norm).astype(np.float32), 1.0 if quality is None else quality


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


def _bio(p: PersonCreate | Person) -> BioRecord:
    dob = _stored_dob(p) if isinstance(p, PersonCreate) else p.date_of_birth
    precision = p.dob_precision
    return BioRecord(
        given_name=p.given_name, family_name=p.family_name, father_name=p.father_name,
        given_name_ar=p.given_name_ar, family_name_ar=p.family_name_ar, date_of_birth=dob,
        dob_precision=precision.value if isinstance(precision, DobPrecision) else precision,
        sex=p.sex.value if not isinstance(p, Person) else p.sex,
    )


def _biographic_candidates(
    session: Session, member: PersonCreate, threshold: float
) -> list[CandidatePublic]:
    """Registered people with the same name skeleton, compatible birth date and sex."""
    rows = session.scalars(
        select(Person)
        .where(Person.name_key == name_key(member.given_name, member.family_name))
        .where(Person.sex == member.sex.value)
        .where(Person.status != PersonStatus.LINKED)
        .limit(_BIOGRAPHIC_LIMIT)
    ).all()
    probe = _bio(member)
    scored = [(similarity(probe, _bio(p)), p.id) for p in rows]
    return [
        CandidatePublic(person_id=pid, score=score, source="biographic")
        for score, pid in sorted(scored, key=lambda x: -x[0]) if score >= threshold
    ]


def _face_candidates(
    session: Session, decision: Decision, face_rows: list[int],
    new_person_ids: list[uuid.UUID | None],
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
            member = face_rows[-c.gallery_id - 1]
            out.append(CandidatePublic(
                person_id=new_person_ids[member], member_no=member + 1, score=c.score
            ))
    return out


def _merge(face: list[CandidatePublic], bio: list[CandidatePublic]) -> list[CandidatePublic]:
    seen = {c.person_id for c in face if c.person_id}
    return face + [c for c in bio if c.person_id not in seen]


def _decide(members: list[_Member], gallery: Gallery, settings: Settings,
            request_adjudication: bool) -> list[int]:
    """Face decisions for members with a probe; returns the member index of each probe row."""
    face_rows = [i for i, m in enumerate(members) if m.probe is not None]
    if face_rows:
        decisions = dedup_batch(
            np.stack([members[i].probe for i in face_rows]),  # type: ignore[misc]
            gallery.index,
            k=settings.dedup_candidates,
            match_threshold=settings.dedup_match_threshold,
            review_threshold=settings.dedup_review_threshold,
        )
        for i, d in zip(face_rows, decisions, strict=True):
            members[i].face = d
            members[i].outcome = d.outcome
    for m in members:
        if m.probe is None:
            m.outcome, m.kind = Outcome.ADJUDICATE, "refusal"
        elif m.outcome == Outcome.DUPLICATE and request_adjudication:
            m.outcome, m.kind = Outcome.ADJUDICATE, "override"
    return face_rows


def enrol_household(
    sessions: sessionmaker[Session],
    gallery: Gallery,
    settings: Settings,
    *,
    data: HouseholdCreate,
    ctx: EnrolmentContext,
) -> EnrolmentResult:
    """Deduplicate and, unless a member is a duplicate, enrol the household. Audited either way."""
    members = [_Member(m, *_probe(m, i)) for i, m in enumerate(data.members)]
    with gallery.lock:
        with transaction(sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ENROLMENT_LOCK_KEY}
                )
            gallery.catch_up(session)
            face_rows = _decide(members, gallery, settings, data.request_adjudication)
            for m in members:
                m.candidates = _biographic_candidates(
                    session, m.data, settings.biographic_threshold
                )
            if any(m.outcome == Outcome.DUPLICATE for m in members):
                return _refuse(session, data, members, face_rows, ctx)
            result, new_records = _create(session, data, members, face_rows, gallery, ctx)
        gallery.add_committed(new_records)
        return result


def _refuse(
    session: Session, data: HouseholdCreate, members: list[_Member], face_rows: list[int],
    ctx: EnrolmentContext,
) -> EnrolmentResult:
    nobody: list[uuid.UUID | None] = [None] * len(members)
    outs = []
    for i, m in enumerate(members):
        face = _face_candidates(session, m.face, face_rows, nobody) if m.face else []
        outs.append(MemberOutcome(member_no=i + 1, person_id=None, outcome=m.outcome.value,
                                  candidates=_merge(face, m.candidates or [])))
    audit.record(
        session, actor=ctx.officer, action="enrolment.refused_duplicate",
        subject_type="enrolment_attempt", subject_id=str(uuid.uuid4()),
        details={
            "site": data.site, "station": data.station,
            "matches": [
                {"member_no": o.member_no,
                 "person_ids": [str(c.person_id) for c in o.candidates
                                if c.person_id and c.source == "face"],
                 "best_score": round(o.candidates[0].score, 4) if o.candidates else None}
                for o in outs if o.outcome == "duplicate"
            ],
        },
    )
    return EnrolmentResult(outcome="duplicate", household_id=None, registration_number=None,
                           members=outs)


def _create(
    session: Session, data: HouseholdCreate, members: list[_Member], face_rows: list[int],
    gallery: Gallery, ctx: EnrolmentContext,
) -> tuple[EnrolmentResult, list[tuple[int, np.ndarray]]]:
    outcomes = [m.outcome for m in members]
    overall = Outcome.ADJUDICATE if Outcome.ADJUDICATE in outcomes else Outcome.NO_MATCH
    household = Household(
        registration_number=_unique_number(session, Household.registration_number),
        province=data.province, district=data.district,
    )
    session.add(household)
    session.flush()
    persons: list[Person] = []
    for i, m in enumerate(members):
        d = m.data
        person = Person(
            household_id=household.id, member_no=i + 1,
            registration_number=_unique_number(session, Person.registration_number),
            relationship_to_head=d.relationship_to_head, given_name=d.given_name,
            family_name=d.family_name, father_name=d.father_name,
            given_name_ar=d.given_name_ar, family_name_ar=d.family_name_ar,
            father_name_ar=d.father_name_ar, date_of_birth=_stored_dob(d),
            dob_precision=d.dob_precision.value, sex=d.sex.value, nationality=d.nationality,
            province=data.province, district=data.district, phone=d.phone,
            name_key=name_key(d.given_name, d.family_name),
            biometrics_refused_reason=d.biometrics_refused_reason,
            status=(PersonStatus.PENDING_ADJUDICATION if m.outcome == Outcome.ADJUDICATE
                    else PersonStatus.ACTIVE),
        )
        session.add(person)
        persons.append(person)
    session.flush()
    person_ids: list[uuid.UUID | None] = [p.id for p in persons]
    records: list[tuple[BiometricRecord, np.ndarray]] = []
    for person, m in zip(persons, members, strict=True):
        if m.probe is not None and m.data.face is not None:
            rec = BiometricRecord(
                person_id=person.id, modality=FACE,
                template=gallery.sealer.seal(
                    encode_template(m.probe), aad=template_aad(person.id, FACE)
                ),
                quality=m.quality,
            )
            session.add(rec)
            records.append((rec, m.probe))
            photo = m.data.face.photo_bytes()
            if photo is not None:
                # Kept (sealed like a template) for the card and for adjudicators' side-by-side
                # view; never in the gallery (catch-up reads the `face` modality only).
                session.add(BiometricRecord(
                    person_id=person.id, modality=PHOTO, quality=m.quality,
                    template=gallery.sealer.seal(photo, aad=template_aad(person.id, PHOTO)),
                ))
        for missing in m.data.missing_biometrics:
            session.add(BiometricException(person_id=person.id, modality=missing.modality,
                                           reason=missing.reason, note=missing.note))
        if m.data.biometrics_refused_reason:
            session.add(BiometricException(person_id=person.id, modality="all",
                                           reason="refused",
                                           note=m.data.biometrics_refused_reason))
    session.add(Enrolment(household_id=household.id, officer=ctx.officer, site=data.site,
                          station=data.station, outcome=overall.value))
    session.flush()
    members_out = []
    for person, m in zip(persons, members, strict=True):
        face = _face_candidates(session, m.face, face_rows, person_ids) if m.face else []
        candidates = _merge(face, m.candidates or [])
        if m.outcome == Outcome.ADJUDICATE:
            _open_case(session, person, m.kind, candidates, ctx)
        audit.record(
            session, actor=ctx.officer, action="person.create", subject_type="person",
            subject_id=str(person.id),
            details={"household_id": str(household.id), "dedup": m.outcome.value},
        )
        members_out.append(MemberOutcome(member_no=person.member_no, person_id=person.id,
                                         outcome=m.outcome.value, candidates=candidates))
    audit.record(
        session, actor=ctx.officer, action="household.enrol", subject_type="household",
        subject_id=str(household.id),
        details={"members": len(persons), "outcome": overall.value, "site": data.site,
                 "station": data.station},
    )
    result = EnrolmentResult(outcome=overall.value, household_id=household.id,
                             registration_number=household.registration_number,
                             members=members_out)
    emit(session, event_type="household.enrolled", subject_id=household.id, payload={
        "household_id": str(household.id),
        "registration_number": household.registration_number,
        "outcome": overall.value,
        "members": [{"person_id": str(m.person_id), "outcome": m.outcome} for m in members_out],
    })
    return result, [(rec.id, probe) for rec, probe in records]


def _open_case(session: Session, person: Person, kind: str,
               candidates: list[CandidatePublic], ctx: EnrolmentContext) -> None:
    case = AdjudicationCase(person_id=person.id, kind=kind,
                            candidates=[c.model_dump(mode="json") for c in candidates])
    session.add(case)
    session.flush()
    audit.record(
        session, actor=ctx.officer, action="adjudication.open",
        subject_type="adjudication_case", subject_id=str(case.id),
        details={"person_id": str(person.id), "kind": kind,
                 "best_score": round(candidates[0].score, 4) if candidates else None},
    )


def recheck_person(
    sessions: sessionmaker[Session],
    gallery: Gallery,
    settings: Settings,
    *,
    person_id: uuid.UUID,
    ctx: EnrolmentContext,
) -> AdjudicationCase | None:
    """Search an enrolled person's face again (e.g. after a new capture or a periodic sweep).

    Candidates an adjudicator already judged "not the same" are left out while neither record
    has changed since; anything else at or above the review threshold opens a `recheck` case.
    """
    from sanad.registry.adjudication import judged_different

    with gallery.lock, transaction(sessions) as session:
        gallery.catch_up(session)
        person = session.get(Person, person_id)
        if person is None:
            raise InvalidInput(f"no person {person_id}", field="person_id")
        records = session.scalars(
            select(BiometricRecord).where(BiometricRecord.person_id == person_id,
                                          BiometricRecord.modality == FACE)
        ).all()
        if not records:
            return None
        own = {rec.id for rec in records}
        probes = np.stack([
            decode_template(gallery.sealer.open(r.template, aad=template_aad(person_id, FACE)),
                            FACE_DIM) for r in records
        ])
        k = settings.dedup_candidates + len(own)
        scores, ids = gallery.index.search(probes, k)
        best: dict[int, float] = {}
        for row_scores, row_ids in zip(scores, ids, strict=True):
            for s, gid in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
                if gid < 0 or gid in own or s < settings.dedup_review_threshold:
                    continue
                best[gid] = max(best.get(gid, -1.0), s)
        if not best:
            return None
        owners = dict(session.execute(
            select(BiometricRecord.id, BiometricRecord.person_id)
            .where(BiometricRecord.id.in_(list(best)))
        ).all())
        per_person: dict[uuid.UUID, float] = {}
        for gid, s in best.items():
            other = owners.get(gid)
            if other is None or other == person_id or judged_different(session, person_id, other):
                continue
            per_person[other] = max(per_person.get(other, -1.0), s)
        if not per_person:
            return None
        candidates = [CandidatePublic(person_id=pid, score=s)
                      for pid, s in sorted(per_person.items(), key=lambda x: -x[1])]
        _open_case(session, person, "recheck", candidates, ctx)
        return session.scalars(
            select(AdjudicationCase).where(AdjudicationCase.person_id == person_id)
            .order_by(AdjudicationCase.created_at.desc())
        ).first()
