"""Aggregate exports, sharing agreements, consent, record exports, export log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from sanad.api.deps import Principal, RegistryDep, require
from sanad.exports import aggregates, sharing
from sanad.registry.db import transaction
from sanad.registry.models import Role

router = APIRouter(tags=["exports"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
AdminOrAuditor = Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR))]
Officer = Annotated[Principal, Depends(require(Role.REGISTRATION_OFFICER, Role.ADMIN))]
_MEDIA = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet",
          "jsonl": "application/x-ndjson"}


class AgreementCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipient: str = Field(min_length=1, max_length=120)
    recipient_type: Literal["un_agency", "ngo", "host_government", "authority", "other"]
    recipient_country: str = Field(pattern=r"^[A-Z]{3}$")
    purpose: str = Field(min_length=1, max_length=60)
    fields: list[str] = Field(min_length=1)
    legal_basis: str = Field(min_length=1)
    impact_assessment: str = Field(min_length=1, description="DPIA summary or reference.")
    valid_until: datetime | None = None


class AgreementPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    recipient: str
    recipient_type: str
    recipient_country: str
    purpose: str
    fields: list[str]
    legal_basis: str
    impact_assessment: str
    status: str
    created_by: str


class ConsentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: uuid.UUID
    purpose: str = Field(min_length=1, max_length=60)
    granted: bool


class RecordExport(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agreement_id: uuid.UUID
    format: Literal["csv", "jsonl"] = "csv"


@router.get("/exports/aggregates", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}})
def aggregate_export(
    registry: RegistryDep, user: AdminOrAuditor,
    by: Annotated[str, Query(description="Comma-separated: " + ", ".join(aggregates.DIMENSIONS))
                  ] = "province,sex",
    format: Annotated[Literal["csv", "parquet"], Query()] = "csv",
) -> Response:
    """Counts by dimension; cells under SANAD_EXPORT_MIN_CELL are suppressed."""
    with transaction(registry.sessions) as session:
        data = aggregates.export_aggregates(
            session, by=[d.strip() for d in by.split(",") if d.strip()], fmt=format,
            min_cell=registry.settings.export_min_cell, actor=user.username)
    return Response(data, media_type=_MEDIA[format])


@router.post("/sharing/agreements", status_code=201, response_model=AgreementPublic)
def propose(body: AgreementCreate, registry: RegistryDep, user: Admin) -> Any:
    """Record a proposed agreement; exports need approval by two different admins."""
    return sharing.audited(
        registry.sessions, actor=user.username, what=f"agreement:{body.recipient}",
        fn=lambda s: AgreementPublic.model_validate(sharing.propose_agreement(
            s, registry.settings, actor=user.username, **body.model_dump())))


@router.post("/sharing/agreements/{agreement_id}/approve", response_model=AgreementPublic)
def approve(agreement_id: uuid.UUID, registry: RegistryDep, user: Admin) -> Any:
    with transaction(registry.sessions) as session:
        return AgreementPublic.model_validate(
            sharing.approve_agreement(session, agreement_id=agreement_id,
                                      approver=user.username))


@router.get("/sharing/agreements", response_model=list[AgreementPublic])
def agreements(registry: RegistryDep, _user: AdminOrAuditor) -> Any:
    with transaction(registry.sessions) as session:
        return [AgreementPublic.model_validate(a) for a in sharing.list_agreements(session)]


@router.post("/sharing/consents", status_code=201)
def consent(body: ConsentCreate, registry: RegistryDep, user: Officer) -> dict[str, Any]:
    """Record a person's consent (or its withdrawal) for one sharing purpose. Consent is
    optional and never a condition of registration or of a card."""
    with transaction(registry.sessions) as session:
        c = sharing.record_consent(session, person_id=body.person_id, purpose=body.purpose,
                                   granted=body.granted, actor=user.username)
        return {"person_id": str(c.person_id), "purpose": c.purpose, "granted": c.granted,
                "recorded_at": c.recorded_at.isoformat()}


@router.post("/exports/records", response_class=Response,
             responses={403: {"description": "Refused: agreement, approvals or origin rule"}})
def record_export(body: RecordExport, registry: RegistryDep, user: Admin) -> Response:
    """Export the agreed fields of people who consented to the agreement's purpose."""
    data, rows = sharing.audited(
        registry.sessions, actor=user.username, what=str(body.agreement_id),
        fn=lambda s: sharing.export_records(s, registry.settings,
                                            agreement_id=body.agreement_id, fmt=body.format,
                                            actor=user.username))
    return Response(data, media_type=_MEDIA[body.format], headers={"X-Sanad-Rows": str(rows)})


@router.get("/exports/log")
def log(registry: RegistryDep, _user: AdminOrAuditor) -> list[dict[str, Any]]:
    """Every export made (aggregate and records), newest first."""
    with transaction(registry.sessions) as session:
        return sharing.export_log(session)
