"""Cards: issue and the lifecycle (renew, lost, re-issue, surrender, revoke), the card PDF and
PNG preview, and the print queue. Every operation is one call to `sanad.registry.cards`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from sanad.api.deps import Principal, RegistryDep, require
from sanad.api.problems import problem_responses
from sanad.registry import cards as svc
from sanad.registry.db import transaction
from sanad.registry.models import Role

router = APIRouter(tags=["cards"])
CardOfficer = Annotated[Principal, Depends(require(Role.CARD_OFFICER))]


class CardIssuedOut(BaseModel):
    """A card just issued: what to print and how to find its print job."""

    id: uuid.UUID
    card_number: str
    status: str
    issued_at: datetime
    expires_at: datetime
    kid: str
    status_index: int | None
    issue_reason: str
    mrz: list[str]
    qr: str
    superseded: list[uuid.UUID] = []
    print_job_id: uuid.UUID | None = None


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Literal["lost", "surrendered", "deceased", "fraud", "superseded"]


class SurrenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=200)


class CardStateOut(BaseModel):
    id: uuid.UUID
    card_number: str
    status: str
    revocation_reason: str | None
    status_index: int | None


class PrintJobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    card_id: uuid.UUID
    state: str
    attempts: int
    reprints: int
    last_error: str | None
    requested_by: str
    requested_at: datetime
    printed_at: datetime | None
    batch: str | None
    collected_by: str | None
    collection_proof: str | None
    handed_over_by: str | None
    collected_at: datetime | None


class PrintFailedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: str = Field(min_length=1, max_length=500)


class ReprintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=200)


class CollectedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collected_by: str = Field(min_length=1, max_length=120,
                              description="Who took the card: the holder or a named proxy.")
    proof: str = Field(min_length=1, max_length=1000,
                       description="Proof of identity shown, e.g. 'fingerprint match'.")


def _issued(issued: svc.IssuedCard) -> CardIssuedOut:
    c = issued.card
    return CardIssuedOut(
        id=c.id, card_number=c.card_number, status=c.status, issued_at=c.issued_at,
        expires_at=c.expires_at, kid=c.kid, status_index=c.status_index,
        issue_reason=c.issue_reason, mrz=issued.mrz, qr=issued.qr,
        superseded=list(issued.superseded),
        print_job_id=issued.print_job.id if issued.print_job else None,
    )


def _lifecycle(operation: str, person_id: uuid.UUID, registry: RegistryDep,
               user: Principal) -> CardIssuedOut:
    fn = {"issue": svc.issue_card, "renew": svc.renew_card,
          "replace-lost": svc.replace_lost_card, "reissue": svc.reissue_card}[operation]
    with transaction(registry.sessions) as session:
        issued = fn(session, person_id=person_id, officer=user.username,
                    key=registry.issuer_key, sealer=registry.sealer, settings=registry.settings)
        return _issued(issued)


_ISSUE_ERRORS = problem_responses(401, 403, 404, 409, 422)


@router.post("/persons/{person_id}/cards", status_code=201, response_model=CardIssuedOut,
             responses=_ISSUE_ERRORS)
def issue(person_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> CardIssuedOut:
    """Issue a card; an active card is revoked (superseded) in the same transaction. 409 when
    the person is not active; 422 `qr_too_large` when the QR would exceed its budget."""
    return _lifecycle("issue", person_id, registry, user)


@router.post("/persons/{person_id}/cards/renew", status_code=201,
             response_model=CardIssuedOut, responses=_ISSUE_ERRORS)
def renew(person_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> CardIssuedOut:
    """Renew: a new card valid for the configured period; the current one is revoked."""
    return _lifecycle("renew", person_id, registry, user)


@router.post("/persons/{person_id}/cards/replace-lost", status_code=201,
             response_model=CardIssuedOut, responses=_ISSUE_ERRORS)
def replace_lost(person_id: uuid.UUID, registry: RegistryDep,
                 user: CardOfficer) -> CardIssuedOut:
    """Replace a lost card: the lost one is revoked (reason `lost`); 409 if none is active."""
    return _lifecycle("replace-lost", person_id, registry, user)


@router.post("/persons/{person_id}/cards/reissue", status_code=201,
             response_model=CardIssuedOut, responses=_ISSUE_ERRORS)
def reissue(person_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> CardIssuedOut:
    """Re-issue after the person's details were updated; the old card is revoked."""
    return _lifecycle("reissue", person_id, registry, user)


@router.post("/persons/{person_id}/surrender", response_model=list[CardStateOut],
             responses=problem_responses(401, 403, 404, 409))
def surrender(person_id: uuid.UUID, body: SurrenderIn, registry: RegistryDep,
              user: CardOfficer) -> list[CardStateOut]:
    """Voluntary return: every active card revoked (`surrendered`), the person deregistered
    (status `returned`); the record is kept."""
    with transaction(registry.sessions) as session:
        revoked = svc.surrender_card(session, person_id=person_id, officer=user.username,
                                     note=body.note)
        return [CardStateOut(id=c.id, card_number=c.card_number, status=c.status,
                             revocation_reason=c.revocation_reason,
                             status_index=c.status_index) for c in revoked]


@router.post("/cards/{card_id}/revoke", response_model=CardStateOut,
             responses=problem_responses(401, 403, 404, 409, 422))
def revoke(card_id: uuid.UUID, body: RevokeIn, registry: RegistryDep,
           user: CardOfficer) -> CardStateOut:
    """Revoke a card with a reason; checkpoints learn it from the next status list."""
    with transaction(registry.sessions) as session:
        c = svc.revoke_card(session, card_id=card_id, reason=body.reason, officer=user.username)
        return CardStateOut(id=c.id, card_number=c.card_number, status=c.status,
                            revocation_reason=c.revocation_reason, status_index=c.status_index)


@router.get("/cards/{card_id}/pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}},
                       **problem_responses(401, 403, 404)})
def card_pdf(card_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> Response:
    """The print-ready card PDF: ID-1 size, front and back."""
    with transaction(registry.sessions) as session:
        pdf = svc.card_pdf_bytes(session, card_id=card_id, actor=user.username,
                                 settings=registry.settings, sealer=registry.sealer)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="card-{card_id}.pdf"',
        "Cache-Control": "no-store"})


@router.get("/cards/{card_id}/preview.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}},
                       **problem_responses(401, 403, 404, 422)})
def card_png(
    card_id: uuid.UUID, registry: RegistryDep, user: CardOfficer,
    side: Annotated[Literal["front", "back"], Query()] = "front",
    dpi: Annotated[int, Query(ge=50, le=600)] = 150,
) -> Response:
    """A PNG preview of one side of the card, for the card desk."""
    with transaction(registry.sessions) as session:
        png = svc.card_png_bytes(session, card_id=card_id, actor=user.username,
                                 settings=registry.settings, side=side, dpi=dpi,
                                 sealer=registry.sealer)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


class ReissueDueOut(BaseModel):
    card_id: uuid.UUID
    card_number: str
    person_id: uuid.UUID
    registration_number: str
    name: str
    issued_at: datetime
    expires_at: datetime


@router.get("/cards/reissue-due", response_model=list[ReissueDueOut],
            responses=problem_responses(401, 403, 422))
def reissue_due(
    registry: RegistryDep, user: CardOfficer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[ReissueDueOut]:
    """Active cards that carry an older face than their holder's newest capture (after a
    re-capture or a first capture), oldest first: re-issue each
    (`POST /persons/{id}/cards/reissue`, reason `update`). Audited as a list read."""
    with transaction(registry.sessions) as session:
        due = svc.cards_to_reissue(session, limit=limit, offset=offset)
        svc.audit_reissue_queue(session, actor=user.username, cards=[c for c, _ in due])
        return [ReissueDueOut(card_id=c.id, card_number=c.card_number, person_id=p.id,
                              registration_number=p.registration_number,
                              name=f"{p.given_name} {p.family_name}", issued_at=c.issued_at,
                              expires_at=c.expires_at) for c, p in due]


@router.get("/print-jobs", response_model=list[PrintJobOut],
            responses=problem_responses(401, 403, 422))
def print_jobs(
    registry: RegistryDep, _user: CardOfficer,
    state: Annotated[Literal["requested", "printed", "collected", "failed", "cancelled"] | None,
                     Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[PrintJobOut]:
    """The print queue, oldest request first."""
    with transaction(registry.sessions) as session:
        return [PrintJobOut.model_validate(j)
                for j in svc.list_print_jobs(session, state=state, limit=limit)]


@router.post("/print-jobs/batch", response_class=Response,
             responses={200: {"content": {"application/pdf": {}}},
                        **problem_responses(401, 403, 409)})
def print_batch(registry: RegistryDep, user: CardOfficer,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
    """Render the queued cards into one PDF and mark their jobs printed (409 if none)."""
    with transaction(registry.sessions) as session:
        pdf, jobs = svc.print_batch(session, officer=user.username,
                                    settings=registry.settings, limit=limit,
                                    sealer=registry.sealer)
        batch = jobs[0].batch or ""
    return Response(pdf, media_type="application/pdf",
                    headers={"X-Sanad-Batch": batch, "X-Sanad-Cards": str(len(jobs))})


def _job_out(job: object) -> PrintJobOut:
    return PrintJobOut.model_validate(job)


@router.post("/print-jobs/{job_id}/printed", response_model=PrintJobOut,
             responses=problem_responses(401, 403, 404, 409))
def printed(job_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> PrintJobOut:
    """requested → printed."""
    with transaction(registry.sessions) as session:
        return _job_out(svc.mark_printed(session, job_id=job_id, officer=user.username))


@router.post("/print-jobs/{job_id}/failed", response_model=PrintJobOut,
             responses=problem_responses(401, 403, 404, 409))
def print_failed(job_id: uuid.UUID, body: PrintFailedIn, registry: RegistryDep,
                 user: CardOfficer) -> PrintJobOut:
    """A failed attempt: retried until SANAD_PRINT_MAX_ATTEMPTS, then `failed`."""
    with transaction(registry.sessions) as session:
        return _job_out(svc.mark_print_failed(
            session, job_id=job_id, officer=user.username, error=body.error,
            max_attempts=registry.settings.print_max_attempts))


@router.post("/print-jobs/{job_id}/reprint", response_model=PrintJobOut,
             responses=problem_responses(401, 403, 404, 409, 422))
def reprint(job_id: uuid.UUID, body: ReprintIn, registry: RegistryDep,
            user: CardOfficer) -> PrintJobOut:
    """Queue a printed or failed card again (reprint counter + 1)."""
    with transaction(registry.sessions) as session:
        return _job_out(svc.request_reprint(session, job_id=job_id, officer=user.username,
                                            reason=body.reason))


@router.post("/print-jobs/{job_id}/collected", response_model=PrintJobOut,
             responses=problem_responses(401, 403, 404, 409, 422))
def collected(job_id: uuid.UUID, body: CollectedIn, registry: RegistryDep,
              user: CardOfficer) -> PrintJobOut:
    """printed → collected, with who collected and the proof of identity shown."""
    with transaction(registry.sessions) as session:
        return _job_out(svc.mark_collected(session, job_id=job_id, officer=user.username,
                                           collected_by=body.collected_by, proof=body.proof))
