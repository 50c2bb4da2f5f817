"""/adjudication/cases: the adjudicator's queue, a case with candidates, scores and
biographic differences, and the decision (over `sanad.registry.adjudication`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad.api.deps import Principal, RegistryDep, require
from sanad.api.problems import problem_responses
from sanad.api.schemas import (
    CandidateViewPublic,
    CaseDetailPublic,
    CaseSummaryPublic,
    Decision,
    HeldCapturePublic,
)
from sanad.registry import adjudication, recapture
from sanad.registry.db import transaction
from sanad.registry.models import HeldCapture, Role
from sanad.registry.photos import media_type

router = APIRouter(prefix="/adjudication", tags=["adjudication"])
Adjudicator = Annotated[Principal, Depends(require(Role.ADJUDICATOR))]


def _held(session: Session, case_id: uuid.UUID) -> HeldCapturePublic | None:
    """The held capture's metadata (plain scores; the capture itself stays sealed)."""
    row = session.scalar(select(HeldCapture).where(HeldCapture.case_id == case_id))
    if row is None:
        return None
    v = row.verification
    return HeldCapturePublic(
        officer=row.officer, held_at=row.created_at, reason=str(v.get("reason", "")),
        note=str(v.get("note", "")), offered=list(v.get("offered", [])),
        why=str(v.get("why", "")), face_score=v.get("face_score"),
        finger_llr=v.get("finger_llr"), fingers_compared=int(v.get("fingers_compared") or 0),
        photo=bool(v.get("photo")),
    )


def _detail(detail: adjudication.CaseDetail, session: Session) -> CaseDetailPublic:
    case = detail.case
    return CaseDetailPublic(
        held=_held(session, case.id) if case.kind == adjudication.HELD_CAPTURE_KIND else None,
        id=case.id, person_id=case.person_id, status=case.status, kind=case.kind,
        needs_second=case.needs_second, first_decision=case.first_decision,
        first_decided_by=case.first_decided_by, decision=case.decision, reason=case.reason,
        decided_by=case.decided_by,
        candidates=[
            CandidateViewPublic(
                person_id=c.person.id if c.person else None,
                registration_number=c.person.registration_number if c.person else None,
                score=c.score, source=c.source, member_no=c.member_no,
                differences=c.differences, face_score=c.face_score,
                finger_llr=c.finger_llr, fingers_compared=c.fingers_compared,
                fused_llr=c.fused_llr, rule=c.rule, via=c.via,
            )
            for c in detail.candidates
        ],
    )


@router.get("/cases", response_model=list[CaseSummaryPublic],
            responses=problem_responses(401, 403, 422))
def cases(
    registry: RegistryDep, user: Adjudicator,
    status: Annotated[adjudication.CaseStatus | None, Query()] = adjudication.CaseStatus.OPEN,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[CaseSummaryPublic]:
    """The queue, oldest first (default: open cases)."""
    with transaction(registry.sessions) as session:
        return [
            CaseSummaryPublic.model_validate(c, from_attributes=True)
            for c in adjudication.list_cases(
                session, actor=user.username, status=status, limit=limit, offset=offset
            )
        ]


@router.get("/cases/{case_id}", response_model=CaseDetailPublic,
            responses=problem_responses(401, 403, 404))
def case(case_id: uuid.UUID, registry: RegistryDep, user: Adjudicator) -> CaseDetailPublic:
    """One case: the flagged person, every candidate, scores and differing fields."""
    with transaction(registry.sessions) as session:
        return _detail(adjudication.get_case(session, case_id, actor=user.username), session)


@router.get(
    "/cases/{case_id}/held-photo", response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}},
                     "description": "The photo of the capture a `recapture` case holds"},
               **problem_responses(401, 403, 404)},
)
def held_photo(case_id: uuid.UUID, registry: RegistryDep, user: Adjudicator) -> Response:
    """The photo of a held re-capture, to compare with `GET /persons/{id}/photo` before
    deciding (audited read; never cached)."""
    with transaction(registry.sessions) as session:
        data = recapture.held_photo(session, registry.sealer, case_id, actor=user.username)
    return Response(data, media_type=media_type(data),
                    headers={"Cache-Control": "private, no-store"})


@router.post("/cases/{case_id}/decision", response_model=CaseDetailPublic,
             responses=problem_responses(401, 403, 404, 409, 422))
def decide(
    case_id: uuid.UUID, body: Decision, registry: RegistryDep, user: Adjudicator
) -> CaseDetailPublic:
    """Decide: `same_person` links the record to the candidate; `different_person` activates
    it (overriding a score above the match threshold needs a second adjudicator). On a
    `recapture` case (a capture held because it did not verify) `same_person` accepts the
    capture onto the person — two adjudicators — and `different_person` discards it."""
    with transaction(registry.sessions) as session:
        adjudication.decide_case(
            session, case_id=case_id, verdict=adjudication.Verdict(body.verdict),
            reason=body.reason, actor=user.username, sealer=registry.sealer,
            match_threshold=registry.settings.dedup_match_threshold, link_to=body.link_to,
        )
        return _detail(adjudication.get_case(session, case_id, actor=user.username), session)
