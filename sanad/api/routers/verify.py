"""POST /verify: verify a card's QR text exactly as an offline checkpoint would, with this
registry's trust list and its current status list.

The hot path of the API (docs/benchmarks-api.md): an `async` endpoint that touches no
database when its caches are warm — the API key (`ApiKeyCache`), the parsed status list
(`StatusCache`) and the audit event (queued, written in batches by `VerificationAuditLog`).
The signature check itself runs on the event loop: it is CPU-bound and short (well under a
millisecond), so a thread-pool hop would only add to it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sanad.api.deps import (
    Principal,
    RegistryDep,
    audit_verification,
    current_status,
    require,
)
from sanad.api.problems import problem_responses
from sanad.credentials.status import StatusList
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.schemas import VerifyRequest
from sanad.registry.verification_audit import event_for
from sanad.verify import FaceProbe, VerificationResult, verify

router = APIRouter(tags=["verify"])
_RESULT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["valid", "reasons", "claims", "kid"],
    "properties": {
        "valid": {"type": "boolean"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "claims": {"type": ["object", "null"]},
        "kid": {"type": ["string", "null"]},
        "status": {"type": "object"},
        "face_score": {"type": "number"},
    },
}
Verifier = Annotated[Principal, Depends(require(Role.VERIFIER, Role.CARD_OFFICER))]


def verify_with_registry(
    registry: Registry, qr: str, *, status: StatusList, at: datetime | None = None,
    face: FaceProbe | None = None,
) -> VerificationResult:
    """Verify as a checkpoint holding this registry's trust list and `status` would (the
    API and the web checkpoint page both call this)."""
    return verify(
        qr, trust=registry.trust_list, at=at,
        prefixes=(registry.settings.qr_prefix,), status=status, require_status=True,
        status_max_age=timedelta(hours=registry.settings.status_max_age_hours), face=face,
    )


@router.post("/verify", response_class=JSONResponse,
             responses={200: {"content": {"application/json": {"schema": _RESULT_SCHEMA}}},
                        **problem_responses(401, 403, 422)})
async def verify_qr(
    body: VerifyRequest, request: Request, registry: RegistryDep, user: Verifier
) -> JSONResponse:
    """The answer is always 200 with `valid` and stable `reasons`; an invalid card is a
    verification result, not a request error. Every call is audited (`card.verify`: caller,
    card, verdict and reasons; never the QR text)."""
    status = await current_status(request, registry)
    result = verify_with_registry(registry, body.qr, status=status, at=body.at)
    await audit_verification(request, event_for(result, actor=user.username, channel="api"))
    # A plain JSON dict: returned as a response directly, not re-encoded by FastAPI.
    return JSONResponse(result.to_json())
