"""The field-kit station: identity, the durable packet outbox, receipts, status.

A station is an ordinary sanad registry (own SANAD_HOME, own SQLite, own template key, own
gallery holding only what *this* station enrolled) run with SANAD_STATION_MODE=1. Enrolment
goes through the same service, UI and API as at the centre; its result is *provisional*.

Queueing is derived from the database rather than hooked into enrolment: `queue_new_households`
finds local households that have neither a queued packet nor a receipt and seals one packet
each. The outbox is therefore durable by construction (a crash between enrolment and queueing
only delays the packet) and works for every way of enrolling (web, API, demo).

Packets are sealed immediately (signed by the station, encrypted to the centre), so the queue at
rest is readable only by the centre. A packet leaves the queue only when the centre returns a
receipt (see `apply_results`); it is then deleted, and only a small receipt without personal
data is kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session, selectinload

from sanad import audit
from sanad.config import Settings
from sanad.errors import InvalidInput, NotFound, NotInitialised, StationRevoked
from sanad.registry.db import utcnow
from sanad.registry.dbkey import database_key_path, encrypt_database
from sanad.registry.fingers import captures_json
from sanad.registry.gallery import FACE, template_aad
from sanad.registry.models import BiometricRecord, Enrolment, Household
from sanad.registry.sealing import TemplateSealer
from sanad.registry.sync_models import QueuedPacket, SyncReceipt, SyncState
from sanad.sync.envelope import PACKET_VERSION, seal
from sanad.sync.keys import (
    CentralPublicKey,
    load_station_key,
    new_station_key,
    public_key_b64,
    station_kid,
)

KIT_DIR = "kit"
KIT_FILE = "kit.json"
STATION_KEY_FILE = "station.pem"
REGISTRATION_FILE = "station-registration.json"

# Receipt statuses after which the centre holds the packet: it leaves the queue.
FINAL_STATUSES = frozenset({"imported", "adjudicate", "duplicate", "conflict", "applied"})
UPDATABLE_FIELDS = frozenset({
    "given_name", "family_name", "father_name", "given_name_ar", "family_name_ar",
    "father_name_ar", "phone",
})


@dataclass(frozen=True)
class KitIdentity:
    """Who this station is and where its packets go (`$SANAD_HOME/kit/kit.json`)."""

    station_id: str
    site: str
    kid: str
    central: CentralPublicKey

    def to_json(self) -> dict[str, Any]:
        return {"station_id": self.station_id, "site": self.site, "kid": self.kid,
                "central_key": self.central.to_json()}


def kit_dir(settings: Settings) -> Path:
    return settings.home / KIT_DIR


def init_kit(
    settings: Settings, *, station_id: str, site: str, central: CentralPublicKey
) -> dict[str, Any]:
    """Create the station identity and key (the registry itself is made by `init_registry`).

    Returns the registration document an admin gives to `sanad kit register` at the centre.
    """
    directory = kit_dir(settings)
    if (directory / KIT_FILE).exists():
        raise InvalidInput(f"{directory} already holds a station identity", field="home")
    if not station_id or len(station_id) > 80 or not site or len(site) > 80:
        raise InvalidInput("station id and site are 1-80 characters", field="station_id")
    # The kit's SQLite is encrypted before anything is enrolled on it (see sanad.registry.dbkey).
    encrypt_database(settings)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = new_station_key(settings.keys_dir / STATION_KEY_FILE)
    identity = KitIdentity(station_id=station_id, site=site,
                           kid=station_kid(key.public_key()), central=central)
    (directory / KIT_FILE).write_text(json.dumps(identity.to_json(), indent=2) + "\n")
    registration = {"station_id": station_id, "site": site, "kid": identity.kid,
                    "public_key": public_key_b64(key.public_key())}
    (directory / REGISTRATION_FILE).write_text(json.dumps(registration, indent=2) + "\n")
    return registration


def load_identity(settings: Settings) -> KitIdentity:
    """This station's identity; refuses unless the home is a kit run in station mode."""
    path = kit_dir(settings) / KIT_FILE
    if not path.exists():
        raise NotInitialised(f"{settings.home} is not a field kit: run `sanad kit init`")
    if not settings.station_mode:
        raise NotInitialised("this home is a field kit: set SANAD_STATION_MODE=1")
    doc = json.loads(path.read_text())
    return KitIdentity(station_id=doc["station_id"], site=doc["site"], kid=doc["kid"],
                       central=CentralPublicKey.from_json(doc["central_key"]))


def _state(session: Session, key: str) -> str | None:
    row = session.get(SyncState, key)
    return row.value if row else None


def set_state(session: Session, key: str, value: str) -> None:
    row = session.get(SyncState, key)
    if row is None:
        session.add(SyncState(key=key, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()


def _packet(identity: KitIdentity, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "v": PACKET_VERSION, "packet_id": str(uuid.uuid4()), "kind": kind,
        "station_id": identity.station_id, "created_at": utcnow().isoformat(), "body": body,
    }


def _enqueue(
    session: Session, settings: Settings, identity: KitIdentity, packet: dict[str, Any],
    *, local_household_id: uuid.UUID | None,
) -> QueuedPacket:
    if _state(session, "revoked") == "1":
        raise StationRevoked("the centre revoked this station's key; no new packets")
    key = load_station_key(settings.keys_dir / STATION_KEY_FILE)
    envelope = seal(packet, station_key=key, central=identity.central)
    row = QueuedPacket(
        packet_id=uuid.UUID(packet["packet_id"]), kind=packet["kind"],
        local_household_id=local_household_id, envelope=envelope,
        digest=hashlib.sha256(envelope).hexdigest(), created_at=utcnow(),
    )
    session.add(row)
    return row


def _household_body(
    session: Session, household: Household, sealer: TemplateSealer
) -> dict[str, Any]:
    enrolment = session.scalar(
        select(Enrolment).where(Enrolment.household_id == household.id)
        .order_by(Enrolment.enrolled_at)
    )
    members = []
    for person in household.members:
        rec = session.scalar(
            select(BiometricRecord).where(
                BiometricRecord.person_id == person.id, BiometricRecord.modality == FACE
            )
        )
        # No face record: biometrics refused (the reason goes along) or a face exception with
        # fingers (`captures_json` carries the exception); the centre takes the same path.
        face: dict[str, Any] = {}
        if rec is not None:
            template = sealer.open(rec.template, aad=template_aad(person.id, FACE))
            face["face"] = {"template": base64.b64encode(template).decode(),
                            "quality": rec.quality}
        elif person.biometrics_refused_reason:
            face["biometrics_refused_reason"] = person.biometrics_refused_reason
        members.append({
            "given_name": person.given_name, "family_name": person.family_name,
            "father_name": person.father_name, "given_name_ar": person.given_name_ar,
            "family_name_ar": person.family_name_ar, "father_name_ar": person.father_name_ar,
            "date_of_birth": person.date_of_birth.isoformat(),
            "dob_precision": person.dob_precision, "sex": person.sex,
            "nationality": person.nationality,
            "relationship_to_head": person.relationship_to_head, "phone": person.phone,
            **face,
            **captures_json(session, sealer, person.id),  # fingers, missing_biometrics
        })
    return {
        "local_household_id": str(household.id),
        "local_registration_number": household.registration_number,
        "enrolled_by": enrolment.officer if enrolment else "unknown",
        "enrolled_at": (enrolment.enrolled_at if enrolment else household.created_at).isoformat(),
        "household": {"province": household.province, "district": household.district,
                      "members": members},
    }


def queue_new_households(
    session: Session, settings: Settings, sealer: TemplateSealer, *, limit: int = 10_000
) -> int:
    """Seal one packet per local household not yet queued nor receipted; returns how many.

    A revoked station queues nothing more (its packets would be refused); what it enrolled
    stays visible as `not_yet_queued` in `kit_status`.
    """
    identity = load_identity(settings)
    if _state(session, "revoked") == "1":
        return 0
    queued = select(QueuedPacket.local_household_id).where(
        QueuedPacket.local_household_id.is_not(None))
    receipted = select(SyncReceipt.local_household_id).where(
        SyncReceipt.local_household_id.is_not(None))
    households = session.scalars(
        select(Household)
        .where(Household.id.not_in(queued), Household.id.not_in(receipted))
        .order_by(Household.created_at).limit(limit)
        .options(selectinload(Household.members))
    ).all()
    for household in households:
        body = _household_body(session, household, sealer)
        row = _enqueue(session, settings, identity, _packet(identity, "household", body),
                       local_household_id=household.id)
        audit.record(session, actor=f"station:{identity.station_id}", action="sync.queue",
                     subject_type="household", subject_id=str(household.id),
                     details={"packet_id": str(row.packet_id)})
    session.flush()
    return len(households)


def queue_person_update(
    session: Session, settings: Settings, *, person_id: uuid.UUID, base_version: int,
    changes: dict[str, str | None], actor: str,
) -> uuid.UUID:
    """Queue a correction of a central person record made against `base_version`."""
    identity = load_identity(settings)
    unknown = set(changes) - UPDATABLE_FIELDS
    if unknown or not changes:
        raise InvalidInput(
            f"updatable fields: {', '.join(sorted(UPDATABLE_FIELDS))}", field="changes"
        )
    body = {"person_id": str(person_id), "base_version": base_version, "changes": changes,
            "made_by": actor}
    row = _enqueue(session, settings, identity, _packet(identity, "person_update", body),
                   local_household_id=None)
    audit.record(session, actor=actor, action="sync.queue_update", subject_type="person",
                 subject_id=str(person_id),
                 details={"packet_id": str(row.packet_id), "fields": sorted(changes)})
    return row.packet_id


def pending_packets(session: Session, *, limit: int) -> list[QueuedPacket]:
    return list(session.scalars(
        select(QueuedPacket).order_by(QueuedPacket.created_at).limit(limit)
    ))


def apply_results(session: Session, results: list[dict[str, Any]]) -> dict[str, int]:
    """Record the centre's per-packet answers: receipted packets are purged from the queue."""
    counts = {"receipted": 0, "rejected": 0, "pending": 0}
    by_digest = {r.get("digest"): r for r in results}
    for digest, result in by_digest.items():
        row = session.scalar(select(QueuedPacket).where(QueuedPacket.digest == digest))
        if row is None:
            continue  # already purged by an earlier, interrupted run
        status = str(result.get("status"))
        row.attempts += 1
        row.last_attempt_at = utcnow()
        if status in FINAL_STATUSES:
            session.merge(SyncReceipt(
                packet_id=row.packet_id, kind=row.kind,
                local_household_id=row.local_household_id, status=status,
                result={k: v for k, v in result.items() if k != "digest"},
                received_at=utcnow(),
            ))
            session.execute(delete(QueuedPacket).where(QueuedPacket.packet_id == row.packet_id))
            counts["receipted"] += 1
        elif status == "rejected":
            row.last_error = f"{result.get('code')}: {result.get('detail')}"
            counts["rejected"] += 1
            if result.get("code") == "station_revoked":
                set_state(session, "revoked", "1")
        else:
            row.last_error = f"{status}: {result.get('detail', '')}"
            counts["pending"] += 1
    return counts


def provisional_receipt(session: Session, *, household_id: uuid.UUID, actor: str) -> dict[str, Any]:
    """What the station can tell the family now: provisional until the centre answers."""
    household = session.get(Household, household_id)
    if household is None:
        raise NotFound(f"no household {household_id} at this station")
    audit.record(session, actor=actor, action="household.receipt", subject_type="household",
                 subject_id=str(household_id))
    receipt = session.scalar(
        select(SyncReceipt).where(SyncReceipt.local_household_id == household_id))
    queued = session.scalar(
        select(QueuedPacket).where(QueuedPacket.local_household_id == household_id))
    doc: dict[str, Any] = {
        "provisional": receipt is None or receipt.status not in {"imported"},
        "local_registration_number": household.registration_number,
        "sync_status": receipt.status if receipt else ("queued" if queued else "not_queued"),
        "note": "Provisional: a card is issued only after central deduplication.",
    }
    if receipt is not None:
        doc["central"] = receipt.result
    if queued is not None and queued.last_error:
        doc["last_error"] = queued.last_error
    return doc


def kit_status(session: Session, settings: Settings) -> dict[str, Any]:
    """Queue size, last error, last sync, revoked flag: what `sanad kit status` shows."""
    identity = load_identity(settings)
    size = session.scalar(select(func.count()).select_from(QueuedPacket)) or 0
    errored = session.scalar(
        select(func.count()).select_from(QueuedPacket)
        .where(QueuedPacket.last_error.is_not(None))) or 0
    unqueued = session.scalar(
        select(func.count()).select_from(Household).where(
            ~exists().where(QueuedPacket.local_household_id == Household.id),
            ~exists().where(SyncReceipt.local_household_id == Household.id),
        )) or 0
    return {
        "station_id": identity.station_id, "site": identity.site, "kid": identity.kid,
        "queue_size": int(size), "queue_with_errors": int(errored),
        "not_yet_queued": int(unqueued),
        "receipts": int(session.scalar(select(func.count()).select_from(SyncReceipt)) or 0),
        "last_error": _state(session, "last_error") or None,
        "last_sync_at": _state(session, "last_sync_at"),
        "revoked": _state(session, "revoked") == "1",
        "database_encrypted": database_key_path(settings).exists(),
    }


def receipts(session: Session, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(SyncReceipt).order_by(SyncReceipt.received_at.desc()).limit(limit))
    return [{"packet_id": str(r.packet_id), "kind": r.kind, "status": r.status,
             "local_household_id": str(r.local_household_id) if r.local_household_id else None,
             **{k: v for k, v in r.result.items() if k in {"household_id", "registration_number",
                                                           "members", "conflict_id"}}}
            for r in rows]


def export_packets(session: Session, out_dir: Path) -> list[Path]:
    """Write every queued envelope as `<packet_id>.cose` (for carriage on removable media).

    Files are already encrypted to the centre and signed. They stay queued: they leave the
    queue only when `sanad sync` gets the centre's receipt (the centre imports idempotently,
    so a packet that arrived by both routes is imported once).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in session.scalars(select(QueuedPacket).order_by(QueuedPacket.created_at)):
        path = out_dir / f"{row.packet_id}.cose"
        path.write_bytes(row.envelope)
        paths.append(path)
    return paths
