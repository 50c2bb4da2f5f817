"""/households: enrol a household with 1:N deduplication of every member (idempotent with an
`Idempotency-Key`), read it, change its head, list its status changes."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from sanad.api.deps import Principal, RegistryDep, require
from sanad.api.problems import PROBLEM_JSON, problem, problem_responses
from sanad.api.schemas import HeadChange, HouseholdPublic, StatusChangePublic
from sanad.registry import idempotency, status_changes
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.models import Household, Role
from sanad.registry.persons import get_household
from sanad.registry.runtime import Registry
from sanad.registry.schemas import EnrolmentResult, HouseholdCreate

router = APIRouter(prefix="/households", tags=["households"])
Officer = Annotated[Principal, Depends(require(Role.REGISTRATION_OFFICER))]
Reader = Annotated[
    Principal,
    Depends(require(Role.REGISTRATION_OFFICER, Role.ADJUDICATOR, Role.CARD_OFFICER, Role.AUDITOR)),
]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=idempotency.MAX_KEY_LENGTH,
           description="Any unique string (a UUID): a retry with the same key and body gets "
           "the first response again instead of enrolling twice.",
           examples=["6f1c2d1e-5b7a-4e0b-9a51-1c2b3d4e5f60"]),
]


def _enrol(registry: Registry, body: HouseholdCreate, officer: str) -> JSONResponse:
    result = enrol_household(
        registry.sessions, registry.gallery, registry.settings,
        data=body, ctx=EnrolmentContext(officer=officer),
    )
    if result.outcome == "duplicate":
        return problem(
            409, "duplicate_candidate", "Duplicate identity",
            "at least one member matches an existing identity; nothing was enrolled",
            members=[m.model_dump(mode="json") for m in result.members],
        )
    return JSONResponse(result.model_dump(mode="json"), status_code=201)


@router.post(
    "",
    status_code=201,
    response_model=EnrolmentResult,
    responses={409: {"description": "A member is a duplicate of an existing identity; "
                                    "nothing was created (problem+json with `members`). Also: "
                                    "the same Idempotency-Key is still in progress."},
               **problem_responses(401, 403, 422)},
)
async def enrol(
    request: Request, body: HouseholdCreate, registry: RegistryDep, user: Officer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Enrol a household. `no_match`: created; `adjudicate`: created, flagged members wait for
    an adjudicator; `duplicate`: refused, nothing created. Replays of an `Idempotency-Key`
    carry `Idempotent-Replayed: true`."""
    if idempotency_key is None:
        return await run_in_threadpool(_enrol, registry, body, user.username)
    request_hash = idempotency.fingerprint(await request.body())
    stored = await run_in_threadpool(
        idempotency.claim, registry.sessions, principal=user.rate_key, key=idempotency_key,
        request_hash=request_hash,
        retention=timedelta(hours=registry.settings.idempotency_retention_hours),
    )
    if stored is not None:
        media = PROBLEM_JSON if stored.status_code >= 400 else "application/json"
        return Response(stored.body, status_code=stored.status_code, media_type=media,
                        headers={"Idempotent-Replayed": "true"})
    try:
        resp = await run_in_threadpool(_enrol, registry, body, user.username)
    except Exception:
        await run_in_threadpool(
            idempotency.release, registry.sessions, principal=user.rate_key, key=idempotency_key
        )
        raise
    await run_in_threadpool(
        idempotency.complete, registry.sessions, principal=user.rate_key, key=idempotency_key,
        status_code=resp.status_code, body=bytes(resp.body).decode(),
    )
    return resp


def _public(household: Household) -> HouseholdPublic:
    head = next((m.id for m in household.members if m.relationship_to_head == "head"), None)
    return HouseholdPublic(
        id=household.id, registration_number=household.registration_number,
        province=household.province, district=household.district,
        created_at=household.created_at, head_id=head,
        member_ids=[m.id for m in household.members],
    )


@router.get("/{household_id}", response_model=HouseholdPublic,
            responses=problem_responses(401, 403, 404))
def household(household_id: uuid.UUID, registry: RegistryDep, user: Reader) -> HouseholdPublic:
    """A household: registration number, place, head and members (audited read)."""
    with transaction(registry.sessions) as session:
        return _public(get_household(session, household_id, actor=user.username))


@router.post("/{household_id}/head", status_code=201, response_model=StatusChangePublic,
             responses=problem_responses(401, 403, 404, 409, 422))
def change_head(
    household_id: uuid.UUID, body: HeadChange, registry: RegistryDep, user: Officer
) -> StatusChangePublic:
    """Make another member the head (the old head becomes `other`); reversible."""
    with transaction(registry.sessions) as session:
        change = status_changes.change_head(
            session, household_id=household_id, new_head_id=body.new_head_id,
            reason=body.reason, actor=user.username,
        )
        return StatusChangePublic.model_validate(change)


@router.get("/{household_id}/status-changes", response_model=list[StatusChangePublic],
            responses=problem_responses(401, 403, 404))
def household_changes(
    household_id: uuid.UUID, registry: RegistryDep, user: Reader
) -> list[StatusChangePublic]:
    """Deaths, reactivations and head changes in the household, oldest first."""
    with transaction(registry.sessions) as session:
        get_household(session, household_id, actor=user.username)
        return [StatusChangePublic.model_validate(c)
                for c in status_changes.history(session, household_id=household_id)]
