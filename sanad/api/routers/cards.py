"""POST /persons/{id}/cards: issue a card (MRZ + signed QR), superseding any active card."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from sanad.api.deps import Principal, RegistryDep, require
from sanad.registry.cards import issue_card
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.schemas import CardIssued, CardPublic

router = APIRouter(tags=["cards"])
CardOfficer = Annotated[Principal, Depends(require(Role.CARD_OFFICER))]


@router.post(
    "/persons/{person_id}/cards",
    status_code=201,
    response_model=CardIssued,
    responses={404: {"description": "No such person"},
               409: {"description": "Person not in a state that allows a card"}},
)
def issue(person_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> CardIssued:
    with transaction(registry.sessions) as session:
        issued = issue_card(
            session, person_id=person_id, officer=user.username, key=registry.issuer_key,
            sealer=registry.sealer, settings=registry.settings,
        )
        public = CardPublic.model_validate(issued.card)
    return CardIssued(**public.model_dump(), mrz=issued.mrz, qr=issued.qr)
