"""POST /verify: verify a card's QR text exactly as an offline checkpoint would."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from sanad.api.deps import Principal, RegistryDep, require
from sanad.registry.models import Role
from sanad.registry.schemas import VerifyRequest
from sanad.verify import verify

router = APIRouter(tags=["verify"])
Verifier = Annotated[Principal, Depends(require(Role.VERIFIER, Role.CARD_OFFICER))]


@router.post("/verify")
def verify_qr(body: VerifyRequest, registry: RegistryDep, _user: Verifier) -> dict[str, Any]:
    """The answer is always 200 with `valid` and stable `reasons`; an invalid card is a
    verification result, not a request error."""
    result = verify(
        body.qr, trust=registry.trust_list, at=body.at, prefixes=(registry.settings.qr_prefix,)
    )
    return result.to_json()
