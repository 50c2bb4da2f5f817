"""GET /persons, GET /persons/{id}: read persons (every read audited)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from sanad.api.deps import Principal, RegistryDep, require
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.persons import get_person, list_persons
from sanad.registry.schemas import PersonPublic

router = APIRouter(prefix="/persons", tags=["persons"])
Reader = Annotated[
    Principal,
    Depends(require(Role.REGISTRATION_OFFICER, Role.ADJUDICATOR, Role.CARD_OFFICER, Role.AUDITOR)),
]


@router.get("", response_model=list[PersonPublic])
def persons(
    registry: RegistryDep,
    user: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PersonPublic]:
    with transaction(registry.sessions) as session:
        return [
            PersonPublic.model_validate(p)
            for p in list_persons(session, actor=user.username, limit=limit, offset=offset)
        ]


@router.get(
    "/{person_id}", response_model=PersonPublic, responses={404: {"description": "No such person"}}
)
def person(person_id: uuid.UUID, registry: RegistryDep, user: Reader) -> PersonPublic:
    with transaction(registry.sessions) as session:
        return PersonPublic.model_validate(get_person(session, person_id, actor=user.username))
