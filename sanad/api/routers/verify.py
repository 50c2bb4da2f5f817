"""POST /verify: verify a card's QR text exactly as an offline checkpoint would, with this
registry's trust list and its current status list."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from sanad.api.deps import Principal, RegistryDep, require
from sanad.api.problems import problem_responses
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.schemas import VerifyRequest
from sanad.registry.status_list import checkpoint_status
from sanad.verify import VerificationResult, verify

router = APIRouter(tags=["verify"])
Verifier = Annotated[Principal, Depends(require(Role.VERIFIER, Role.CARD_OFFICER))]


def verify_with_registry(registry: Registry, body: VerifyRequest) -> VerificationResult:
    """Verify as a checkpoint holding this registry's current trust and status list would."""
    with transaction(registry.sessions) as session:
        status = checkpoint_status(session, settings=registry.settings,
                                   key=registry.issuer_key, trust=registry.trust_list)
    return verify(
        body.qr, trust=registry.trust_list, at=body.at,
        prefixes=(registry.settings.qr_prefix,), status=status, require_status=True,
        status_max_age=timedelta(hours=registry.settings.status_max_age_hours),
    )


@router.post("/verify", responses=problem_responses(401, 403, 422))
def verify_qr(body: VerifyRequest, registry: RegistryDep, _user: Verifier) -> dict[str, Any]:
    """The answer is always 200 with `valid` and stable `reasons`; an invalid card is a
    verification result, not a request error."""
    return verify_with_registry(registry, body).to_json()
