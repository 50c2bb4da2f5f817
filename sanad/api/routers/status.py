"""What checkpoints download: the signed status list and the signed trust bundle.

Both are public, like a certificate revocation list: they are signed (a checkpoint checks
them itself), and they hold no personal data — the list is bits by index, the bundle keys.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from sanad.api.deps import Public, RegistryDep
from sanad.api.problems import problem_responses
from sanad.registry.db import transaction
from sanad.registry.status_list import current_status_list, trust_bundle

router = APIRouter(tags=["status"])

COSE_MEDIA_TYPE = "application/cose; cose-type=\"cose-sign1\""


@router.get("/status-list", response_class=Response, dependencies=[Public],
            responses={200: {"content": {"application/cose": {}}}, **problem_responses(503)})
def status_list(registry: RegistryDep) -> Response:
    """The current signed status list (COSE_Sign1, one bit per card; docs/credentials.md)."""
    with transaction(registry.sessions) as session:
        data = current_status_list(
            session, key=registry.issuer_key, issuer=registry.settings.issuer,
            resign_after=timedelta(hours=registry.settings.status_resign_hours),
        )
    return Response(data, media_type=COSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@router.get("/trust-bundle", response_class=Response, dependencies=[Public],
            responses={200: {"content": {"application/json": {}}},
                       **problem_responses(500, 503)})
def bundle(registry: RegistryDep) -> Response:
    """The root-signed trust bundle: root and signer certificates, JWKS, status list."""
    with transaction(registry.sessions) as session:
        data, _ = trust_bundle(session, settings=registry.settings, key=registry.issuer_key)
    return Response(data, media_type="application/json", headers={"Cache-Control": "no-cache"})
