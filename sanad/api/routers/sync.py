"""Field-kit sync: packet upload, station registry and revocation, conflicts, station status."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from sanad.api.deps import Principal, RegistryDep, require
from sanad.errors import InvalidInput
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.sync import centre, station
from sanad.sync.keys import load_or_create_central_key

router = APIRouter(prefix="/sync", tags=["sync"])
Officer = Annotated[Principal, Depends(require(Role.REGISTRATION_OFFICER, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
AdminOrAuditor = Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR))]
Adjudicator = Annotated[Principal, Depends(require(Role.ADJUDICATOR, Role.ADMIN))]


class PacketUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    packets: list[str] = Field(min_length=1, max_length=500,
                               description="Base64 of each COSE envelope.")


class PacketResults(BaseModel):
    results: list[dict[str, Any]]


class StationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    station_id: str = Field(min_length=1, max_length=80)
    site: str = Field(min_length=1, max_length=80)
    public_key: str = Field(description="Base64url of the raw Ed25519 public key.")
    kid: str | None = Field(default=None, description="Optional check: must match the key.")


class StationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    station_id: str
    site: str
    kid: str
    status: str


class ConflictResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Literal["apply", "discard"]


def _centre_only(registry: RegistryDep) -> None:
    if registry.settings.station_mode:
        raise InvalidInput("a field-kit station does not accept packets", field="station_mode")


@router.get("/central-key")
def central_key(registry: RegistryDep, _user: Officer) -> dict[str, str]:
    """The centre's public packet-encryption key (JWK) for `sanad kit init --central-key`."""
    _centre_only(registry)
    key, _ = load_or_create_central_key(registry.settings.keys_dir)
    return key.public.to_json()


@router.post("/packets", response_model=PacketResults,
             responses={422: {"description": "Malformed upload (not base64)"}})
def upload(body: PacketUpload, registry: RegistryDep, user: Officer) -> PacketResults:
    """Import station packets idempotently; one result per packet, in order (status
    `imported`, `adjudicate`, `duplicate`, `applied`, `conflict`, `rejected`, `in_progress`)."""
    _centre_only(registry)
    envelopes = []
    for i, text in enumerate(body.packets):
        try:
            envelopes.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise InvalidInput("not base64", field=f"packets.{i}") from None
    results = centre.receive_packets(registry, envelopes, actor=user.username)
    return PacketResults(results=results)


@router.post("/stations", status_code=201, response_model=StationPublic)
def register(body: StationCreate, registry: RegistryDep, user: Admin) -> StationPublic:
    """Register a station's signing key (from its `station-registration.json`)."""
    with transaction(registry.sessions) as session:
        st = centre.register_station(session, station_id=body.station_id, site=body.site,
                                     public_key_b64=body.public_key, kid=body.kid,
                                     actor=user.username)
        return StationPublic.model_validate(st)


@router.get("/stations", response_model=list[StationPublic])
def stations(registry: RegistryDep, _user: AdminOrAuditor) -> list[StationPublic]:
    with transaction(registry.sessions) as session:
        return [StationPublic.model_validate(s) for s in centre.list_stations(session)]


@router.post("/stations/{station_id}/revoke", response_model=StationPublic)
def revoke(station_id: str, registry: RegistryDep, user: Admin) -> StationPublic:
    """Revoke a station's key: its packets are rejected from now on."""
    with transaction(registry.sessions) as session:
        return StationPublic.model_validate(
            centre.revoke_station(session, station_id=station_id, actor=user.username))


@router.get("/conflicts")
def conflicts(registry: RegistryDep, _user: Adjudicator) -> list[dict[str, Any]]:
    """Open conflicts: station corrections of records changed centrally meanwhile."""
    with transaction(registry.sessions) as session:
        return [
            {"id": str(c.id), "person_id": str(c.person_id), "station_id": c.station_id,
             "packet_id": str(c.packet_id), "base_version": c.base_version,
             "central_version": c.central_version, "changes": c.changes,
             "created_at": c.created_at.isoformat()}
            for c in centre.list_conflicts(session)
        ]


@router.post("/conflicts/{conflict_id}/resolve")
def resolve(conflict_id: uuid.UUID, body: ConflictResolve, registry: RegistryDep,
            user: Adjudicator) -> dict[str, str]:
    with transaction(registry.sessions) as session:
        c = centre.resolve_conflict(session, conflict_id=conflict_id,
                                    resolution=body.resolution, actor=user.username)
        return {"id": str(c.id), "status": c.status, "resolution": c.resolution or ""}


@router.get("/station/status")
def station_status(registry: RegistryDep, _user: Officer) -> dict[str, Any]:
    """(Station mode) queue size, last error, last sync, revoked flag."""
    with transaction(registry.sessions) as session:
        station.queue_new_households(session, registry.settings, registry.sealer)
        return station.kit_status(session, registry.settings)


@router.get("/station/households/{household_id}/receipt")
def receipt(household_id: uuid.UUID, registry: RegistryDep, user: Officer) -> dict[str, Any]:
    """(Station mode) the provisional receipt of a locally enrolled household."""
    with transaction(registry.sessions) as session:
        station.queue_new_households(session, registry.settings, registry.sealer)
        return station.provisional_receipt(session, household_id=household_id,
                                           actor=user.username)
