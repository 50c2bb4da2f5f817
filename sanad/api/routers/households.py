"""POST /households: enrol a household with 1:N deduplication of every member."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from sanad.api.deps import Principal, RegistryDep, require
from sanad.api.problems import problem
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.models import Role
from sanad.registry.schemas import EnrolmentResult, HouseholdCreate

router = APIRouter(prefix="/households", tags=["households"])
Officer = Annotated[Principal, Depends(require(Role.REGISTRATION_OFFICER))]


@router.post(
    "",
    status_code=201,
    response_model=EnrolmentResult,
    responses={409: {"description": "A member is a duplicate of an existing identity; "
                                    "nothing was created (problem+json with `members`)."},
               422: {"description": "Validation error naming the field"}},
)
def enrol(body: HouseholdCreate, registry: RegistryDep, user: Officer) -> Any:
    """Enrol a household. `no_match`: created; `adjudicate`: created, flagged members wait for
    an adjudicator; `duplicate`: refused, nothing created."""
    result = enrol_household(
        registry.sessions, registry.gallery, registry.settings,
        data=body, ctx=EnrolmentContext(officer=user.username),
    )
    if result.outcome == "duplicate":
        resp: JSONResponse = problem(
            409, "duplicate_candidate", "Duplicate identity",
            "at least one member matches an existing identity; nothing was enrolled",
            members=[m.model_dump(mode="json") for m in result.members],
        )
        return resp
    return result
