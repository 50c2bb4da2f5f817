"""A sweep of the whole gallery for duplicates that slipped through (`sanad abis sweep`).

Enrolment searches each new household against everyone before it, at the thresholds of the
day. Records live for years: thresholds are re-set from a new accuracy benchmark, a field
kit's households arrive after others enrolled the same people, a face model is replaced.
A sweep searches *every active person's* face again, against the whole gallery, in batches
(so a large gallery's batches can run on the matrix-engine stage 1, docs/abis.md §8):

1. **Screen (batched).** Each batch of face records (keyset pages, like `sanad abis rebuild`)
   is searched at once; a person is *flagged* with every other person whose face scores at or
   above the face review threshold, or high enough for fingers to carry the pair there
   (`_reachable`, the rule enrolment and `recheck_person` use).
2. **Decide (per flagged person).** `recheck_person` runs the full re-check — fingers fused,
   pairs an adjudicator judged "not the same" left out while neither record changed — and
   opens a `recheck` case when its rule says so.

A pair is put to adjudicators once: a person is not re-checked when every person they were
flagged with already has a case naming them (opened by this sweep or still undecided from
before). Finger-only resemblances (faces far apart, fingers alike) are not screened here: the
screen is the face search, as the issue's design puts the face first.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sanad import audit
from sanad.abis.templates import decode_template
from sanad.biometrics.synthetic import FACE_DIM
from sanad.config import Settings
from sanad.registry.adjudication import undecided_cases
from sanad.registry.db import transaction
from sanad.registry.enrolment import (
    EnrolmentContext,
    _owners,
    _reachable,
    _thresholds,
    recheck_person,
)
from sanad.registry.gallery import FACE, Gallery, face_pages
from sanad.registry.models import BiometricRecord, Person, PersonStatus

DEFAULT_BATCH = 2048


@dataclass
class SweepReport:
    """What a sweep looked at and what it opened."""

    faces_searched: int = 0
    people_flagged: int = 0
    rechecked: int = 0
    already_pending: int = 0
    cases_opened: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "faces_searched": self.faces_searched, "people_flagged": self.people_flagged,
            "rechecked": self.rechecked, "already_pending": self.already_pending,
            "cases_opened": len(self.cases_opened), "case_ids": self.cases_opened,
            "seconds": round(self.seconds, 2),
        }


def sweep(
    sessions: sessionmaker[Session],
    gallery: Gallery,
    settings: Settings,
    *,
    ctx: EnrolmentContext,
    batch: int = DEFAULT_BATCH,
    open_cases: bool = True,
    progress: Callable[[int], None] | None = None,
) -> SweepReport:
    """Screen every active person's face against the gallery, then re-check the flagged
    people (``open_cases=False``: screen only, nothing opened). Audited as one
    ``abis.sweep`` event (it reads every active face template)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    start = time.perf_counter()
    report = SweepReport()
    flagged = _screen(sessions, gallery, settings, batch, report, progress)
    report.people_flagged = len(flagged)
    if open_cases:
        _recheck_flagged(sessions, gallery, settings, flagged, ctx, report)
    report.seconds = time.perf_counter() - start
    with transaction(sessions) as session:
        audit.record(session, actor=ctx.officer, action="abis.sweep", subject_type="gallery",
                     subject_id="face", details={k: v for k, v in report.to_json().items()
                                                 if k not in ("case_ids", "seconds")})
    return report


def count_active_faces(session: Session) -> int:
    """Face records of active people (what a sweep searches; for a progress bar)."""
    return int(session.scalar(
        select(func.count()).select_from(BiometricRecord).join(Person)
        .where(BiometricRecord.modality == FACE, Person.status == PersonStatus.ACTIVE)
    ) or 0)


def _screen(
    sessions: sessionmaker[Session], gallery: Gallery, settings: Settings, batch: int,
    report: SweepReport, progress: Callable[[int], None] | None,
) -> dict[uuid.UUID, dict[uuid.UUID, float]]:
    """Each active person → the other people their face resembles enough to re-check."""
    t = _thresholds(settings)
    flagged: dict[uuid.UUID, dict[uuid.UUID, float]] = {}
    with gallery.lock, transaction(sessions) as session:
        gallery.catch_up(session)  # the index reflects every commit before the sweep
    with sessions() as session:
        for _, page in face_pages(session, gallery.sealer, after=0, batch=batch,
                                  statuses=(PersonStatus.ACTIVE,)):
            if not page:
                continue
            probes = np.stack([decode_template(t, FACE_DIM) for _, _, t in page])
            with gallery.lock:
                # + 4: a person's own records (re-captures) take places in their top k.
                scores, ids = gallery.index.search(probes, settings.dedup_candidates + 4)
            owners = _owners(session, sorted({int(g) for g in ids.ravel() if g >= 0}))
            fingers = _finger_counts(session, {person for _, person, _ in page})
            for (_, person, _), row_scores, row_ids in zip(page, scores, ids, strict=True):
                shared = fingers.get(person, 0)
                for s, gid in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
                    other = owners.get(gid)
                    if other is None or other == person:
                        continue
                    if s >= settings.dedup_review_threshold or _reachable(s, shared, t):
                        mine = flagged.setdefault(person, {})
                        mine[other] = max(mine.get(other, -1.0), s)
            report.faces_searched += len(page)
            if progress is not None:
                progress(len(page))
    return flagged


def _finger_counts(session: Session, people: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(BiometricRecord.person_id, func.count())
        .where(BiometricRecord.person_id.in_(people),
               BiometricRecord.modality.like("finger:%"))
        .group_by(BiometricRecord.person_id)
    ).all()
    return {r[0]: int(r[1]) for r in rows}


def _recheck_flagged(
    sessions: sessionmaker[Session], gallery: Gallery, settings: Settings,
    flagged: dict[uuid.UUID, dict[uuid.UUID, float]], ctx: EnrolmentContext,
    report: SweepReport,
) -> None:
    """`recheck_person` for each flagged person, strongest resemblance first, unless every
    person they resemble already has a case about them."""
    named: set[tuple[uuid.UUID, uuid.UUID]] = set()  # (case's person, a candidate)
    with sessions() as session:
        for person in flagged:
            for case in undecided_cases(session, person):
                named.update((person, uuid.UUID(c["person_id"])) for c in case.candidates
                             if c.get("person_id"))
    order = sorted(flagged, key=lambda p: -max(flagged[p].values()))
    for person in order:
        if all((person, o) in named or (o, person) in named for o in flagged[person]):
            report.already_pending += 1
            continue
        opened = recheck_person(sessions, gallery, settings, person_id=person, ctx=ctx)
        report.rechecked += 1
        if opened is not None:
            report.cases_opened.append(str(opened.id))
            named.update((person, uuid.UUID(c["person_id"])) for c in opened.candidates
                         if c.get("person_id"))
