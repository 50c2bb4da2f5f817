"""/persons: search, read (with ETag), correct (If-Match), record deaths and reactivations,
the portrait and the audit trail. Every read of a person's record is audited."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from sanad.api.deps import IfMatch, Principal, RegistryDep, require
from sanad.api.problems import problem_responses
from sanad.api.schemas import (
    NO_CONTROL,
    AuditEventPublic,
    BiometricsPublic,
    DeathRequest,
    PersonUpdate,
    ReasonRequest,
    StatusChangePublic,
)
from sanad.registry import captures, person_records, status_changes
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext
from sanad.registry.models import Role, Sex
from sanad.registry.persons import get_person
from sanad.registry.recapture import recapture_person
from sanad.registry.schemas import BiometricsUpdate, PersonPublic, RecaptureResult

router = APIRouter(tags=["persons"])
READERS = (Role.REGISTRATION_OFFICER, Role.ADJUDICATOR, Role.CARD_OFFICER, Role.AUDITOR)
Reader = Annotated[Principal, Depends(require(*READERS))]
BiometricsReader = Annotated[Principal, Depends(require(*captures.READERS))]
Officer = Annotated[Principal, Depends(require(Role.REGISTRATION_OFFICER))]
Auditor = Annotated[Principal, Depends(require(Role.AUDITOR))]
_PERSON_EXAMPLE = {"given_name": "Mohammad", "family_name": "Al-Rashid", "status": "active"}


def _link_header(request: Request, limit: int, offset: int, total: int) -> str:
    links = []
    if offset + limit < total:
        links.append(f'<{request.url.include_query_params(offset=offset + limit)}>; rel="next"')
    if offset > 0:
        links.append(
            f'<{request.url.include_query_params(offset=max(0, offset - limit))}>; rel="prev"'
        )
    return ", ".join(links)


@router.get(
    "/persons", response_model=list[PersonPublic],
    responses={200: {"description": "A page of persons; `X-Total-Count` holds the total and "
                                    "`Link` the next/prev pages (RFC 8288)."},
               **problem_responses(401, 403, 422)},
)
def persons(
    request: Request,
    response: Response,
    registry: RegistryDep,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    q: Annotated[str | None, Query(max_length=100, pattern=NO_CONTROL,
                                   description="Name or registration number",
                                   examples=["Rashid"])] = None,
    province: Annotated[str | None, Query(max_length=80, pattern=NO_CONTROL)] = None,
    district: Annotated[str | None, Query(max_length=80, pattern=NO_CONTROL)] = None,
    status: Annotated[str | None, Query(max_length=24, pattern=NO_CONTROL,
                                        examples=["active"])] = None,
    sex: Sex | None = None,
    household_id: uuid.UUID | None = None,
) -> list[PersonPublic]:
    """Persons, newest first, filtered; paginated with `limit`/`offset`."""
    filters = person_records.PersonFilter(
        q=q, province=province, district=district, status=status,
        sex=sex.value if sex else None, household_id=household_id,
    )
    with transaction(registry.sessions) as session:
        found, total = person_records.search_persons(
            session, actor=user.username, filters=filters, limit=limit, offset=offset
        )
        out = [PersonPublic.model_validate(p) for p in found]
    response.headers["X-Total-Count"] = str(total)
    link = _link_header(request, limit, offset, total)
    if link:
        response.headers["Link"] = link
    return out


@router.get(
    "/persons/{person_id}", response_model=PersonPublic,
    responses={200: {"description": "The person; `ETag` names its version.",
                     "content": {"application/json": {"example": _PERSON_EXAMPLE}}},
               **problem_responses(401, 403, 404)},
)
def person(
    person_id: uuid.UUID, response: Response, registry: RegistryDep, user: Reader
) -> PersonPublic:
    """One person with their cards (audited read); `ETag` is what PATCH needs in If-Match."""
    with transaction(registry.sessions) as session:
        found = get_person(session, person_id, actor=user.username)
        response.headers["ETag"] = person_records.etag(found)
        return PersonPublic.model_validate(found)


@router.patch(
    "/persons/{person_id}", response_model=PersonPublic,
    responses=problem_responses(401, 403, 404, 412, 422, 428),
)
def correct_person(
    person_id: uuid.UUID, body: PersonUpdate, response: Response, registry: RegistryDep,
    user: Officer, if_match: IfMatch = None,
) -> PersonPublic:
    """Correct biographic fields. `If-Match` is required: a stale ETag gets 412, so two
    officers editing the same record never silently overwrite each other."""
    with transaction(registry.sessions) as session:
        updated = person_records.update_person(
            session, person_id=person_id, changes=body.model_dump(exclude_unset=True),
            if_match=if_match, actor=user.username,
        )
        response.headers["ETag"] = person_records.etag(updated)
        return PersonPublic.model_validate(updated)


@router.post(
    "/persons/{person_id}/death", status_code=201, response_model=StatusChangePublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def record_death(
    person_id: uuid.UUID, body: DeathRequest, registry: RegistryDep, user: Officer
) -> StatusChangePublic:
    """Record a death (reversible: POST /status-changes/{id}/revert)."""
    with transaction(registry.sessions) as session:
        change = status_changes.mark_deceased(
            session, person_id=person_id, reason=body.reason, actor=user.username,
            new_head_id=body.new_head_id,
        )
        return StatusChangePublic.model_validate(change)


@router.post(
    "/persons/{person_id}/reactivation", status_code=201, response_model=StatusChangePublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def reactivate(
    person_id: uuid.UUID, body: ReasonRequest, registry: RegistryDep, user: Officer
) -> StatusChangePublic:
    """Reactivate a person recorded as deceased."""
    with transaction(registry.sessions) as session:
        change = status_changes.reactivate(
            session, person_id=person_id, reason=body.reason, actor=user.username
        )
        return StatusChangePublic.model_validate(change)


@router.post(
    "/status-changes/{change_id}/revert", status_code=201, response_model=StatusChangePublic,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def revert(
    change_id: uuid.UUID, body: ReasonRequest, registry: RegistryDep, user: Officer
) -> StatusChangePublic:
    """Undo a status change by applying its inverse (recorded as a new change)."""
    with transaction(registry.sessions) as session:
        change = status_changes.revert_change(
            session, change_id=change_id, reason=body.reason, actor=user.username
        )
        return StatusChangePublic.model_validate(change)


@router.get(
    "/persons/{person_id}/photo",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}},
                     "description": "The enrolment portrait"},
               **problem_responses(401, 403, 404)},
)
def photo(person_id: uuid.UUID, registry: RegistryDep, user: Reader) -> Response:
    """The portrait captured at enrolment (audited read; never cached)."""
    with transaction(registry.sessions) as session:
        data, media_type = person_records.get_photo(
            session, person_id=person_id, actor=user.username, sealer=registry.sealer
        )
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, no-store"})


@router.post(
    "/persons/{person_id}/biometrics", status_code=201, response_model=RecaptureResult,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def recapture(
    person_id: uuid.UUID, body: BiometricsUpdate, registry: RegistryDep, user: Officer
) -> RecaptureResult:
    """Capture an enrolled person's face and/or fingers again (renewal, a changed face, a
    finger that could not be taken at enrolment). Stored only when it verifies against the
    enrolled biometrics by the enrolment match rule; else 409 and nothing is stored (audited
    either way). A stored capture is searched against the gallery: `case_id` names a
    `recheck` case when it resembles someone else (docs/recapture.md)."""
    return recapture_person(
        registry.sessions, registry.gallery, registry.settings, person_id=person_id,
        data=body, ctx=EnrolmentContext(officer=user.username),
    )


@router.get(
    "/persons/{person_id}/biometrics", response_model=BiometricsPublic,
    responses=problem_responses(401, 403, 404),
)
def biometrics(
    person_id: uuid.UUID, registry: RegistryDep, user: BiometricsReader
) -> BiometricsPublic:
    """What was captured for the person (face, each finger) and every recorded exception
    (a finger amputated or unreadable, a face not capturable, a refusal) with its reason:
    metadata only, never a template (audited read)."""
    with transaction(registry.sessions) as session:
        summary = captures.capture_summary(session, person_id, actor=user.username)
        return BiometricsPublic.model_validate(summary)


@router.get(
    "/persons/{person_id}/audit", response_model=list[AuditEventPublic],
    responses=problem_responses(401, 403, 404),
)
def audit_trail(
    person_id: uuid.UUID, registry: RegistryDep, user: Auditor
) -> list[AuditEventPublic]:
    """Every audit event about the person, their household and their cards (auditors)."""
    with transaction(registry.sessions) as session:
        record = person_records.person_record(
            session, person_id=person_id, actor=user.username, with_trail=True
        )
        return [AuditEventPublic.model_validate(e) for e in record.trail]
