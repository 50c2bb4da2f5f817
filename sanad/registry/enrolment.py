"""Enrolment: a household and its members in one transaction, deduplicated 1:N before commit.

Order of work, all under the enrolment lock: catch the gallery up with the database, search
every member's face against the gallery *and* against the other members of the same
submission, look up biographic candidates, then either refuse the whole submission (a
`duplicate` never creates a second identity) or write household, persons, sealed templates,
exceptions, adjudication cases and audit rows in one transaction. Only after the commit are
the new templates added to the in-memory index: a crash in between leaves the database ahead
of the index, which the watermark catch-up repairs at the next start.

Fingerprints are the second stage (docs/fusion.md, docs/fingerprints.md): a member who gave
fingers is compared, finger by finger, with each face candidate (gallery people and earlier
members of the same submission) that has fingers too, and each pair is judged on the fused
evidence (face + fingers, log-likelihood ratio) against the fused thresholds. A pair where no
finger could be compared (either side has none) keeps the face thresholds, so face-only people
are deduplicated exactly as before.

The fingerprint pre-filter (docs/fusion.md §"Fingerprint pre-filter at enrolment") adds
candidates the face search missed: each fingered member's finger descriptor is searched in the
finger index (`gallery.fingers`, top `SANAD_FINGER_PREFILTER_CANDIDATES`) and among the
earlier members of the submission; those people join the member's face candidates (with the
face cosine of a 1:1 comparison, when both have a face) before the second stage, and every
candidate records where it came from (``via``: face, finger or both).

Members without biometrics (refused, or medically impossible) take the alternative path:
biographic deduplication and a mandatory adjudication case. Members with fingers but no usable
face (the face listed in ``missing_biometrics``) are deduplicated by their fingers alone: the
pre-filter proposes candidates, the second stage compares them, the fused rule judges them
without face evidence; such a member is refused as a duplicate like anyone else, and otherwise
always gets a ``face_exception`` case (fingers alone never clear a person). In-batch candidates
are numbered by member (``-(j + 1)`` is member ``j``), so face-less members can be candidates.

An officer may also ask for adjudication instead of refusal when a member matches
(`request_adjudication`, e.g. twins).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from sanad import audit
from sanad.abis.biographic import BioRecord, name_key, similarity
from sanad.abis.decision import (
    FusedCandidate,
    FusedDecision,
    Outcome,
    Thresholds,
    decide_fused,
    search_batch,
)
from sanad.abis.finger_stage import second_stage
from sanad.abis.fusion import DEFAULT_CALIBRATION, FINGER_BOUND, fuse
from sanad.abis.templates import TemplateError, decode_template, encode_template
from sanad.biometrics.finger import FingerComparison, FingerPosition, FingerView, prepare
from sanad.biometrics.synthetic import FACE_DIM
from sanad.config import Settings
from sanad.credentials.ids import new_registration_number
from sanad.errors import InvalidInput
from sanad.notify.outbox import emit
from sanad.registry.captures import REFUSED
from sanad.registry.db import transaction
from sanad.registry.finger_gallery import PREFILTER_MODALITIES, people_fingers
from sanad.registry.fingers import (
    PreparedFingers,
    finger_modality,
    finger_records,
    prepare_records,
)
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
    FaceCapture,
    FingerCapture,
    HouseholdCreate,
    MemberOutcome,
    PersonCreate,
)
from sanad.registry.sealing import TemplateSealer

# Arbitrary constant naming sanad's enrolment lock among PostgreSQL advisory locks.
_ENROLMENT_LOCK_KEY = 0x5A4E4144
_BIOGRAPHIC_LIMIT = 20


@dataclass(frozen=True)
class EnrolmentContext:
    """Who enrols (for the audit trail)."""

    officer: str


@dataclass
class _Capture:
    """Working state of one capture (a member's, or a person's first) during deduplication."""

    probe: np.ndarray | None
    quality: float = 0.0
    fingers: dict[FingerPosition, tuple[bytes, int]] = field(default_factory=dict)
    views: dict[FingerPosition, FingerView] = field(default_factory=dict)
    decision: FusedDecision | None = None
    outcome: Outcome = Outcome.NO_MATCH
    kind: str = "biometric"
    candidates: list[CandidatePublic] | None = None
    # Pre-filter descriptor (None: no usable thumb/index finger) and where each compared
    # candidate (by id, as in the decision) came from.
    descriptor: np.ndarray | None = None
    sources: dict[int, frozenset[str]] = field(default_factory=dict)
    _prepared: PreparedFingers | None = None

    def prepared(self) -> PreparedFingers:
        """The member's fingers ready for the matcher (prepared on first need only)."""
        if self._prepared is None:
            self._prepared = {pos: prepare(view) for pos, view in self.views.items()}
        return self._prepared


@dataclass
class _Member(_Capture):
    """A member of a submitted household: the capture and what was submitted."""

    data: PersonCreate = field(kw_only=True)


def _member(data: PersonCreate, i: int) -> _Member:
    m = _Member(*_probe(data, i), data=data)
    m.fingers, m.views = parse_fingers(data.fingers)
    return m


def parse_fingers(
    fingers: list[FingerCapture],
) -> tuple[dict[FingerPosition, tuple[bytes, int]], dict[FingerPosition, FingerView]]:
    """Finger captures by position: (single-view record to seal, quality) and the view to
    match, each record decoded once."""
    stored: dict[FingerPosition, tuple[bytes, int]] = {}
    views: dict[FingerPosition, FingerView] = {}
    for f in fingers:
        view, record = f.parsed()
        pos = FingerPosition(f.position)
        stored[pos] = (record, view.quality)
        views[pos] = view
    return stored, views


def _probe(member: PersonCreate, i: int) -> tuple[np.ndarray | None, float]:
    """The member's face probe (unit vector) and capture quality."""
    return face_probe(member.face, f"members.{i}.face")


def face_probe(face: FaceCapture | None, field: str) -> tuple[np.ndarray | None, float]:
    """A face capture's probe (unit vector) and quality; ``InvalidInput`` on ``field``.photo or
    ``field``.template when the photo is rejected or the template unreadable."""
    if face is None:
        return None, 0.0
    raw = face.template_bytes()
    quality = face.quality
    if raw is None:
        # Only a photo: the server's face model makes the template and judges quality.
        from sanad.biometrics.face import default_extractor

        analysis = default_extractor().analyse(face.photo_bytes() or b"")
        if analysis.template is None:
            reasons = ", ".join(r.value for r in analysis.reasons)
            raise InvalidInput(f"face photo rejected: {reasons}", field=f"{field}.photo")
        return analysis.template.astype(np.float32), analysis.quality
    try:
        vector = decode_template(raw, FACE_DIM)
    except TemplateError as exc:
        raise InvalidInput(exc.message, field=f"{field}.template") from exc
    norm = float(np.linalg.norm(vector))
    if norm < 1e-6:
        raise InvalidInput("template is a zero vector", field=f"{field}.template")
    # Devices may send unnormalised embeddings; every score assumes unit vectors.
    return (vector / norm).astype(np.float32), 1.0 if quality is None else quality


def enrolment_lock(session: Session) -> None:
    """Serialise gallery changes across processes (PostgreSQL; SQLite writes are serial)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ENROLMENT_LOCK_KEY})


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


def _owners(session: Session, gallery_ids: list[int]) -> dict[int, uuid.UUID]:
    """Person of each face record id."""
    if not gallery_ids:
        return {}
    rows = session.execute(
        select(BiometricRecord.id, BiometricRecord.person_id).where(
            BiometricRecord.id.in_(gallery_ids)
        )
    ).all()
    return {int(r[0]): r[1] for r in rows}


def _via(sources: frozenset[str] | None) -> str:
    """``face``, ``finger`` or ``both``: which first stage proposed a candidate."""
    if sources is None or sources == {"face"}:
        return "face"
    return "both" if "face" in sources else "finger"


def _public(c: FusedCandidate, person_id: uuid.UUID | None, member_no: int | None,
            t: Thresholds, sources: frozenset[str] | None = None) -> CandidatePublic:
    fused = c.fused
    at_match = (fused.llr >= t.fused_match) if c.rule == "fused" else (
        c.face is not None and c.face >= t.face_match
    )
    return CandidatePublic(
        person_id=person_id, member_no=member_no, score=c.face if c.face is not None else 0.0,
        face_score=c.face, finger_llr=fused.finger_llr, fingers_compared=fused.fingers_compared,
        fused_llr=fused.llr, rule=c.rule, at_match_threshold=at_match, via=_via(sources),
    )


def _face_candidates(
    session: Session, decision: FusedDecision,
    new_person_ids: list[uuid.UUID | None], t: Thresholds,
    sources: dict[int, frozenset[str]] | None = None,
) -> list[CandidatePublic]:
    owners = _owners(session, [c.gallery_id for c in decision.candidates if c.gallery_id >= 0])
    src = sources or {}
    out = []
    for c in decision.candidates:
        member = c.batch_member
        if member is None:
            out.append(_public(c, owners.get(c.gallery_id), None, t, src.get(c.gallery_id)))
        else:
            out.append(_public(c, new_person_ids[member], member + 1, t,
                               src.get(c.gallery_id)))
    return out


def _merge(face: list[CandidatePublic], bio: list[CandidatePublic]) -> list[CandidatePublic]:
    seen = {c.person_id for c in face if c.person_id}
    return face + [c for c in bio if c.person_id not in seen]


def _thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        face_match=settings.dedup_match_threshold, face_review=settings.dedup_review_threshold,
        fused_match=settings.dedup_fused_match_threshold,
        fused_review=settings.dedup_fused_review_threshold,
    )


def _reachable(face: float | None, shared: int, t: Thresholds) -> bool:
    """Could a pair reach the fused review threshold with ``shared`` fingers all maximal?

    Pairs that cannot are not sent through the matcher: their fused outcome is `no_match`
    whatever the fingers say, which keeps the second stage off the obvious strangers.
    A pair without a face (``None``) has no face evidence either way.
    """
    face_llr = 0.0 if face is None else DEFAULT_CALIBRATION.face.llr(face)
    return shared > 0 and face_llr + FINGER_BOUND * shared >= t.fused_review


def _worth_matching(face: float | None, mine: Collection[FingerPosition],
                    theirs: Collection[FingerPosition], t: Thresholds) -> bool:
    return _reachable(face, len(set(mine) & set(theirs)), t)


# Each biometric member's candidates (member index → ``(id, face cosine)`` pairs). Ids are as
# in `Candidate`: a gallery record id, or ``-(j + 1)`` for member ``j`` of the same submission
# (numbered by member, so members with fingers but no face have a number too).
_Pairs = dict[int, list[tuple[int, float | None]]]


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Face cosine of two unit probes; ``None`` (no face evidence) when either is missing."""
    return None if a is None or b is None else float(a @ b)


def _face_search(members: Sequence[_Capture], gallery: Gallery, settings: Settings) -> _Pairs:
    """The face top k of every member with a face, in the gallery and among the earlier
    members with a face. Members with fingers but no face start with no candidates; members
    with neither are not searched at all."""
    searched: _Pairs = {i: [] for i, m in enumerate(members) if m.probe is not None or m.views}
    face_rows = [i for i, m in enumerate(members) if m.probe is not None]
    if not face_rows:
        return searched
    probes = np.stack([members[i].probe for i in face_rows])  # type: ignore[misc]
    found = search_batch(probes, gallery.index, k=settings.dedup_candidates)
    for i, pairs in zip(face_rows, found, strict=True):
        # `search_batch` numbers earlier members by face row: renumber them by member.
        searched[i] = [(gid if gid >= 0 else -(face_rows[-gid - 1] + 1), face)
                       for gid, face in pairs]
        members[i].sources = {gid: frozenset({"face"}) for gid, _ in searched[i]}
    return searched


def _decide(session: Session, members: Sequence[_Capture], gallery: Gallery, settings: Settings,
            request_adjudication: bool) -> set[uuid.UUID]:
    """Decisions for members with a face or fingers, and the kind of case each adjudicated
    member gets; returns the people whose stored fingers were read for the second stage (for
    the audit trail).

    A member with fingers but no face (``missing_biometrics`` lists the face) is found only by
    the fingerprint pre-filter and judged on the fused rule without face evidence; it always
    goes to an adjudicator (``face_exception``) unless the fingers make it a duplicate.
    """
    t = _thresholds(settings)
    fingers_read: set[uuid.UUID] = set()
    searched = _face_search(members, gallery, settings)
    if searched:
        _prefilter(session, members, searched, gallery, settings)
        stored = _gallery_fingers(session, gallery, settings, members, searched, t)
        for i, pairs in searched.items():
            m = members[i]
            results = _second_stage(m, members, pairs, stored, t, fingers_read)
            extra = sum(1 for src in m.sources.values() if "face" not in src)
            m.decision = decide_fused(
                ((gid, face, fuse(face, results.get(gid))) for gid, face in pairs),
                t, limit=settings.dedup_candidates + extra,
            )
            m.outcome = m.decision.outcome
    for m in members:
        if m.probe is None and not m.views:
            m.outcome, m.kind = Outcome.ADJUDICATE, "refusal"
        elif m.outcome == Outcome.DUPLICATE and request_adjudication:
            m.outcome, m.kind = Outcome.ADJUDICATE, "override"
        elif m.probe is None and m.outcome != Outcome.DUPLICATE:
            # Fingers alone never clear a person: without a face an adjudicator looks.
            m.outcome, m.kind = Outcome.ADJUDICATE, "face_exception"
    return fingers_read


def _prefilter(
    session: Session, members: Sequence[_Capture], searched: _Pairs, gallery: Gallery,
    settings: Settings,
) -> None:
    """The fingerprint pre-filter: add each fingered member's finger candidates (gallery
    people, earlier members of the submission) to its pairs in ``searched`` and mark their
    sources. Computes the members' descriptors (kept for the index after commit)."""
    fingers = gallery.fingers
    if fingers is None:
        return
    rows = list(searched)
    views = [{pos: v.as_array() for pos, v in members[i].views.items()} for i in rows]
    descriptors = fingers.descriptors(session, list(views))
    for i, d in zip(rows, descriptors, strict=True):
        members[i].descriptor = d
    k = settings.finger_prefilter_candidates
    if k <= 0 or all(d is None for d in descriptors):
        return
    hits = fingers.search(descriptors, k)
    owners = _owners(session, [g for row in hits for g, _ in row])
    face_owners = _owners(session, [g for pairs in searched.values() for g, _ in pairs if g >= 0])
    wanted: dict[int, list[tuple[uuid.UUID, int]]] = {}
    for r, i in enumerate(rows):
        m = members[i]
        by_person = {face_owners[g]: g for g, _ in searched[i] if g in face_owners}
        for entry, _ in hits[r]:
            pid = owners.get(entry)
            if pid is None:
                continue
            if pid in by_person:
                g = by_person[pid]
                m.sources[g] = m.sources[g] | {"finger"}
            elif all(pid != p for p, _ in wanted.get(i, [])):
                wanted.setdefault(i, []).append((pid, entry))
        # Earlier members of the same submission, by descriptor (as faces are, by face).
        d = descriptors[r]
        if d is not None and r > 0:
            earlier = [(float(d @ e), j) for j, e in enumerate(descriptors[:r]) if e is not None]
            for _, j in sorted(earlier, reverse=True)[:k]:
                gid = -(rows[j] + 1)
                if gid in m.sources:
                    m.sources[gid] = m.sources[gid] | {"finger"}
                else:
                    searched[i].append((gid, _cosine(m.probe, members[rows[j]].probe)))
                    m.sources[gid] = frozenset({"finger"})
    # 1:1 face comparisons only for members that have a face to compare.
    faces = _face_vectors(session, gallery, {pid for i, row in wanted.items()
                                             if members[i].probe is not None for pid, _ in row})
    for i, extra in wanted.items():
        m = members[i]
        for pid, entry in extra:
            theirs = faces.get(pid)
            if theirs and m.probe is not None:
                # The person's face record that resembles the probe most stands for them.
                probe = m.probe
                gid, face = max(((g, float(probe @ v)) for g, v in theirs),
                                key=lambda x: x[1])
                searched[i].append((gid, face))
            else:
                searched[i].append((entry, None))
                gid = entry
            m.sources[gid] = frozenset({"finger"})


def _face_vectors(
    session: Session, gallery: Gallery, person_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[int, np.ndarray]]]:
    """The face templates (record id, unit vector) of these people, for 1:1 comparison."""
    if not person_ids:
        return {}
    rows = session.execute(
        select(BiometricRecord.id, BiometricRecord.person_id, BiometricRecord.template)
        .where(BiometricRecord.person_id.in_(list(person_ids)))
        .where(BiometricRecord.modality == FACE)
        .order_by(BiometricRecord.id)
    ).all()
    opened = gallery.sealer.open_many(
        [(r.template, template_aad(r.person_id, FACE)) for r in rows],
        session=session, skip_destroyed=True,
    )
    out: dict[uuid.UUID, list[tuple[int, np.ndarray]]] = {}
    for r, raw in zip(rows, opened, strict=True):
        if raw is not None:
            out.setdefault(r.person_id, []).append((int(r.id), decode_template(raw, FACE_DIM)))
    return out


def _second_stage(
    m: _Capture, members: Sequence[_Capture], pairs: list[tuple[int, float | None]],
    stored: dict[int, tuple[uuid.UUID, PreparedFingers]], t: Thresholds,
    fingers_read: set[uuid.UUID],
) -> dict[int, FingerComparison]:
    """Finger comparisons of member ``m`` with those of its candidates worth matching."""
    if not m.views:
        return {}
    lookups: dict[int, PreparedFingers] = {}
    for gid, face in pairs:
        if gid >= 0:
            if gid not in stored:
                continue
            pid, theirs = stored[gid]
            if _worth_matching(face, m.views, theirs, t):
                lookups[gid] = theirs
                fingers_read.add(pid)
        else:
            other = members[-gid - 1]
            if _worth_matching(face, m.views, other.views, t):
                lookups[gid] = other.prepared()
    if not lookups:
        return {}
    return {r.gallery_id: r.comparison
            for r in second_stage(list(lookups), m.prepared(), lookups.get)}


def _gallery_fingers(
    session: Session, gallery: Gallery, settings: Settings, members: Sequence[_Capture],
    searched: _Pairs, t: Thresholds,
) -> dict[int, tuple[uuid.UUID, PreparedFingers]]:
    """Stored fingers of the gallery candidates some fingered member may need, by record id.

    Only candidates that `_worth_matching` lets through are opened and prepared.
    """
    # (member, face) pairs per gallery id that could matter even if every finger matched.
    want: dict[int, list[tuple[_Capture, float | None]]] = {}
    for i, pairs in searched.items():
        m = members[i]
        for gid, face in pairs:
            if gid >= 0 and _reachable(face, len(m.views), t):
                want.setdefault(gid, []).append((m, face))
    if not want:
        return {}
    owners = _owners(session, list(want))
    records = finger_records(session, owners.values())
    out: dict[int, tuple[uuid.UUID, PreparedFingers]] = {}
    for gid, pid in owners.items():
        recs = records.get(pid)
        if not recs:
            continue
        theirs = {FingerPosition(int(r.modality.split(":", 1)[1])) for r in recs}
        if any(_worth_matching(face, m.views, theirs, t) for m, face in want[gid]):
            out[gid] = (pid, prepare_records(session, gallery.sealer, recs,
                                             cache_size=settings.finger_cache_size))
    return out


@dataclass(frozen=True)
class CaptureSearch:
    """One capture's 1:N search by the enrolment rules: the outcome, the kind of case it
    opens when adjudicated, its candidates, and whose stored fingers were read (audit)."""

    outcome: Outcome
    kind: str
    candidates: list[CandidatePublic]
    fingers_read: set[uuid.UUID]


def search_capture(
    session: Session, gallery: Gallery, settings: Settings, *,
    probe: np.ndarray | None, views: dict[FingerPosition, FingerView],
) -> CaptureSearch:
    """Search one capture that is not stored yet (a person's first biometrics) against the
    whole gallery exactly as an enrolling member is searched: face top k, fingerprint
    pre-filter, fused second stage; fingers without a face always go to an adjudicator
    (``face_exception``). The caller holds the gallery lock and has caught the gallery up."""
    capture = _Capture(probe, views=dict(views))
    fingers_read = _decide(session, [capture], gallery, settings, request_adjudication=False)
    candidates = ([] if capture.decision is None else _face_candidates(
        session, capture.decision, [None], _thresholds(settings), capture.sources))
    return CaptureSearch(capture.outcome, capture.kind, candidates, fingers_read)


def enrol_household(
    sessions: sessionmaker[Session],
    gallery: Gallery,
    settings: Settings,
    *,
    data: HouseholdCreate,
    ctx: EnrolmentContext,
) -> EnrolmentResult:
    """Deduplicate and, unless a member is a duplicate, enrol the household. Audited either way."""
    members = [_member(m, i) for i, m in enumerate(data.members)]
    t = _thresholds(settings)
    with gallery.lock:
        with transaction(sessions) as session:
            enrolment_lock(session)
            gallery.catch_up(session)
            fingers_read = _decide(session, members, gallery, settings,
                                   data.request_adjudication)
            for m in members:
                m.candidates = _biographic_candidates(
                    session, m.data, settings.biographic_threshold
                )
            if any(m.outcome == Outcome.DUPLICATE for m in members):
                return _refuse(session, data, members, ctx, t, fingers_read)
            result, new_records, new_fingers = _create(session, data, members, gallery, ctx,
                                                       t, fingers_read)
        gallery.add_committed(new_records)
        if gallery.fingers is not None:
            gallery.fingers.add_committed(new_fingers)
        return result


def _refuse(
    session: Session, data: HouseholdCreate, members: list[_Member], ctx: EnrolmentContext,
    t: Thresholds, fingers_read: set[uuid.UUID],
) -> EnrolmentResult:
    nobody: list[uuid.UUID | None] = [None] * len(members)
    outs = []
    for i, m in enumerate(members):
        face = (_face_candidates(session, m.decision, nobody, t, m.sources)
                if m.decision else [])
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
            "fingers_read": sorted(str(p) for p in fingers_read),
        },
    )
    return EnrolmentResult(outcome="duplicate", household_id=None, registration_number=None,
                           members=outs)


def _create(
    session: Session, data: HouseholdCreate, members: list[_Member], gallery: Gallery,
    ctx: EnrolmentContext, t: Thresholds, fingers_read: set[uuid.UUID],
) -> tuple[EnrolmentResult, list[tuple[int, np.ndarray]], list[tuple[int, np.ndarray]]]:
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
    # Pre-filter index entries: keyed by the person's newest thumb/index finger record.
    finger_entries: list[tuple[list[BiometricRecord], np.ndarray]] = []
    for person, m in zip(persons, members, strict=True):
        face_rec, keyed = seal_captures(session, gallery.sealer, person.id, face=m.data.face,
                                        probe=m.probe, quality=m.quality, fingers=m.fingers)
        if face_rec is not None and m.probe is not None:
            records.append((face_rec, m.probe))
        if keyed and m.descriptor is not None:
            finger_entries.append((keyed, m.descriptor))
        for missing in m.data.missing_biometrics:
            session.add(BiometricException(person_id=person.id, modality=missing.modality,
                                           reason=missing.reason, note=missing.note))
        if m.data.biometrics_refused_reason:
            session.add(BiometricException(person_id=person.id, modality=REFUSED,
                                           reason="refused",
                                           note=m.data.biometrics_refused_reason))
    session.add(Enrolment(household_id=household.id, officer=ctx.officer, site=data.site,
                          station=data.station, outcome=overall.value))
    session.flush()
    members_out = []
    for person, m in zip(persons, members, strict=True):
        face = (_face_candidates(session, m.decision, person_ids, t, m.sources)
                if m.decision else [])
        candidates = _merge(face, m.candidates or [])
        if m.outcome == Outcome.ADJUDICATE:
            open_case(session, person, m.kind, candidates, ctx)
        details: dict[str, object] = {"household_id": str(household.id),
                                      "dedup": m.outcome.value}
        if m.data.face is not None and m.data.face.photo is not None:
            details["photo"] = True  # sealed with the templates (the card's portrait)
        if m.probe is None and m.views:
            details["face_exception"] = _face_reason(m.data)
        audit.record(
            session, actor=ctx.officer, action="person.create", subject_type="person",
            subject_id=str(person.id), details=details,
        )
        members_out.append(MemberOutcome(member_no=person.member_no, person_id=person.id,
                                         outcome=m.outcome.value, candidates=candidates))
    audit.record(
        session, actor=ctx.officer, action="household.enrol", subject_type="household",
        subject_id=str(household.id),
        details={"members": len(persons), "outcome": overall.value, "site": data.site,
                 "station": data.station,
                 "fingers_read": sorted(str(p) for p in fingers_read)},
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
    return (result, [(rec.id, probe) for rec, probe in records],
            [(max(r.id for r in keyed), d) for keyed, d in finger_entries])


def seal_captures(
    session: Session, sealer: TemplateSealer, person_id: uuid.UUID, *,
    face: FaceCapture | None, probe: np.ndarray | None, quality: float,
    fingers: dict[FingerPosition, tuple[bytes, int]],
) -> tuple[BiometricRecord | None, list[BiometricRecord]]:
    """Seal and add one person's captures: the face template (and the photo, when one was
    sent), each finger's single-view ISO record. Returns the face record and the finger
    records at pre-filter positions (the person's pre-filter index entry is keyed by them)."""
    face_rec = None
    if probe is not None and face is not None:
        face_rec = BiometricRecord(
            person_id=person_id, modality=FACE, quality=quality,
            template=sealer.seal(encode_template(probe), aad=template_aad(person_id, FACE)),
        )
        session.add(face_rec)
        photo = face.photo_bytes()
        if photo is not None:
            # Kept (sealed like a template) for the card and for adjudicators' side-by-side
            # view; never in the gallery (catch-up reads the `face` modality only).
            session.add(BiometricRecord(
                person_id=person_id, modality=PHOTO, quality=quality,
                template=sealer.seal(photo, aad=template_aad(person_id, PHOTO)),
            ))
    keyed: list[BiometricRecord] = []
    for pos, (record, finger_quality) in fingers.items():
        modality = finger_modality(pos)
        finger = BiometricRecord(
            person_id=person_id, modality=modality, quality=finger_quality / 100.0,
            template=sealer.seal(record, aad=template_aad(person_id, modality)),
        )
        session.add(finger)
        if modality in PREFILTER_MODALITIES:
            keyed.append(finger)
    return face_rec, keyed


def _face_reason(data: PersonCreate) -> str:
    """Why a member with fingers has no face (the schema requires the `face` exception)."""
    return next(x.reason for x in data.missing_biometrics if x.modality == "face")


def open_case(session: Session, person: Person, kind: str,
              candidates: list[CandidatePublic], ctx: EnrolmentContext) -> AdjudicationCase:
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
    return case


def audit_fingers_compared(session: Session, ctx: EnrolmentContext, person_id: uuid.UUID,
                           purpose: str, people: Collection[uuid.UUID]) -> None:
    """Stored fingers of these people were opened to compare with ``person_id``'s: say so
    (nothing when none were)."""
    if people:
        audit.record(session, actor=ctx.officer, action="biometrics.fingers_compared",
                     subject_type="person", subject_id=str(person_id),
                     details={"purpose": purpose, "with": sorted(str(p) for p in people)})


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
    has changed since; anything else judged `adjudicate` or `duplicate` by its rule opens a
    `recheck` case: with fingers on both sides the fused evidence (face + fingers), otherwise
    the face score against the face review threshold, as at enrolment.
    """
    from sanad.registry.adjudication import judged_different

    t = _thresholds(settings)
    with gallery.lock, transaction(sessions) as session:
        gallery.catch_up(session)
        person = session.get(Person, person_id)
        if person is None:
            raise InvalidInput(f"no person {person_id}", field="person_id")
        records = session.scalars(
            select(BiometricRecord).where(BiometricRecord.person_id == person_id,
                                          BiometricRecord.modality == FACE)
        ).all()
        mine = finger_records(session, [person_id]).get(person_id, [])
        positions = {FingerPosition(int(r.modality.split(":", 1)[1])) for r in mine}
        own = {rec.id for rec in records}
        probes = np.stack([
            decode_template(gallery.sealer.open(r.template, aad=template_aad(person_id, FACE)),
                            FACE_DIM) for r in records
        ]) if records else np.empty((0, FACE_DIM), np.float32)
        best: dict[int, float] = {}
        if records:
            k = settings.dedup_candidates + len(own)
            scores, ids = gallery.index.search(probes, k)
            for row_scores, row_ids in zip(scores, ids, strict=True):
                for s, gid in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
                    if gid < 0 or gid in own:
                        continue
                    best[gid] = max(best.get(gid, -1.0), s)
        # Without fingers only the face rule can fire: keep today's cheap filter.
        best = {g: s for g, s in best.items()
                if s >= settings.dedup_review_threshold or _reachable(s, len(positions), t)}
        owners = _owners(session, list(best))
        per_person: dict[uuid.UUID, float | None] = {}
        via: dict[uuid.UUID, frozenset[str]] = {}
        for gid, s in best.items():
            other = owners.get(gid)
            if other is None or other == person_id or judged_different(session, person_id, other):
                continue
            previous = per_person.get(other)
            per_person[other] = s if previous is None else max(previous, s)
            via[other] = frozenset({"face"})
        for other in _recheck_prefilter(session, gallery, settings, person_id):
            if other in via:
                via[other] = via[other] | {"finger"}
            elif not judged_different(session, person_id, other):
                faces = _face_vectors(session, gallery, [other]).get(other, [])
                face = (max(float(v @ p) for _, v in faces for p in probes)
                        if faces and len(probes) else None)
                if _reachable(face, len(positions), t):
                    per_person[other] = face
                    via[other] = frozenset({"finger"})
        if not per_person:
            return None
        people = list(per_person)
        comparisons: dict[int, FingerComparison] = {}
        theirs = finger_records(session, [p for p in people
                                          if _reachable(per_person[p], len(positions), t)])
        worth = {i: recs for i, p in enumerate(people) if (recs := theirs.get(p))
                 and _worth_matching(per_person[p], positions, {
                     FingerPosition(int(r.modality.split(":", 1)[1])) for r in recs}, t)}
        if worth:
            cache = settings.finger_cache_size
            probe = prepare_records(session, gallery.sealer, mine, cache_size=cache)
            lookups = {i: prepare_records(session, gallery.sealer, recs, cache_size=cache)
                       for i, recs in worth.items()}
            comparisons = {r.gallery_id: r.comparison
                           for r in second_stage(list(lookups), probe, lookups.get)}
        decision = decide_fused(
            ((i, per_person[p], fuse(per_person[p], comparisons.get(i)))
             for i, p in enumerate(people)), t, limit=None,
        )
        audit_fingers_compared(session, ctx, person_id, "recheck",
                               {people[i] for i in worth})
        if not decision.candidates:
            return None
        candidates = [_public(c, people[c.gallery_id], None, t, via.get(people[c.gallery_id]))
                      for c in decision.candidates]
        return open_case(session, person, "recheck", candidates, ctx)


def _recheck_prefilter(
    session: Session, gallery: Gallery, settings: Settings, person_id: uuid.UUID
) -> list[uuid.UUID]:
    """Other people the fingerprint pre-filter proposes for this enrolled person."""
    fingers = gallery.fingers
    k = settings.finger_prefilter_candidates
    if fingers is None or k <= 0:
        return []
    own = people_fingers(session, gallery.sealer, [person_id], up_to=fingers.watermark)
    if person_id not in own:
        return []
    (descriptor,) = fingers.descriptors(session, [own[person_id][1]])
    hits = fingers.search([descriptor], k + 1)[0]  # + 1: the person's own entry
    owners = _owners(session, [g for g, _ in hits])
    return list(dict.fromkeys(
        pid for g, _ in hits if (pid := owners.get(g)) is not None and pid != person_id
    ))
