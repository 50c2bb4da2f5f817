"""The centre's side of sync: registered stations, idempotent packet import, conflicts.

`receive_packets` handles each envelope on its own (one bad packet never blocks the others):
decrypt with the central key → find the station by the signature's kid (unknown or revoked →
rejected) → verify the signature → claim the packet id in the idempotency ledger → enrol via
the ordinary `enrol_household` (central 1:N dedup) or apply a correction → store the result.
A packet seen before returns its stored result (`replayed: true`) and changes nothing.

The ledger row is committed *before* enrolment (status `processing`) so two concurrent uploads
of one packet cannot both enrol. The result is written to that row *in the enrolment
transaction* (`_ledger_in_enrolment`), so there is no window between "household committed" and
"result stored": a retry after any crash either replays the stored result or, if enrolment
never committed, runs it (once the `processing` claim is stale).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from sanad import audit
from sanad.errors import Conflict, InvalidInput, NotFound, PacketRejected, SanadError
from sanad.notify.outbox import emit
from sanad.registry.db import make_sessionmaker, transaction, utcnow
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.models import Enrolment, Household, Person, PersonStatus
from sanad.registry.runtime import Registry
from sanad.registry.schemas import HouseholdCreate
from sanad.registry.sync_models import ReceivedPacket, Station, SyncConflict
from sanad.sync.envelope import open_envelope
from sanad.sync.keys import load_central_key, public_key_from_b64, station_kid
from sanad.sync.station import UPDATABLE_FIELDS

# A `processing` ledger row older than this is presumed abandoned (its process died).
_STALE_PROCESSING = timedelta(minutes=10)


def register_station(
    session: Session, *, station_id: str, site: str, public_key_b64: str, actor: str,
    kid: str | None = None,
) -> Station:
    """Register a station's public key (an admin act, audited)."""
    public = public_key_from_b64(public_key_b64)
    computed = station_kid(public)
    if kid is not None and kid != computed:
        raise InvalidInput("kid does not match the public key", field="kid")
    if session.get(Station, station_id) is not None:
        raise Conflict(f"station {station_id!r} is already registered")
    if session.scalar(select(Station).where(Station.kid == computed)) is not None:
        raise Conflict("this key is already registered to another station")
    station = Station(station_id=station_id, site=site, kid=computed,
                      public_key=public.public_bytes_raw(), registered_by=actor)
    session.add(station)
    audit.record(session, actor=actor, action="sync.station_register", subject_type="station",
                 subject_id=station_id, details={"site": site, "kid": computed})
    return station


def revoke_station(session: Session, *, station_id: str, actor: str) -> Station:
    """Revoke a station's key: its packets are rejected from now on (remote kill switch)."""
    station = session.get(Station, station_id)
    if station is None:
        raise NotFound(f"no station {station_id!r}")
    station.status = "revoked"
    station.revoked_at = utcnow()
    station.revoked_by = actor
    audit.record(session, actor=actor, action="sync.station_revoke", subject_type="station",
                 subject_id=station_id)
    return station


def list_stations(session: Session) -> list[Station]:
    return list(session.scalars(select(Station).order_by(Station.station_id)))


def _rejected(digest: str, code: str, detail: str, packet_id: str | None = None) -> dict[str, Any]:
    return {"digest": digest, "packet_id": packet_id, "status": "rejected", "code": code,
            "detail": detail}


def _verify(registry: Registry, envelope: bytes) -> tuple[Station, dict[str, Any]]:
    central = load_central_key(registry.settings.keys_dir)
    opened = open_envelope(envelope, central=central)
    with transaction(registry.sessions) as session:
        station = session.scalar(select(Station).where(Station.kid == opened.station_kid))
        if station is not None:
            session.expunge(station)
    if station is None:
        raise PacketRejected(f"unknown station key {opened.station_kid}")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    payload = opened.verify(Ed25519PublicKey.from_public_bytes(station.public_key))
    if payload.get("station_id") != station.station_id:
        raise PacketRejected("packet names a different station than its signing key")
    if payload.get("kind") not in {"household", "person_update"}:
        raise PacketRejected(f"unknown packet kind {payload.get('kind')!r}")
    try:
        uuid.UUID(str(payload.get("packet_id")))
    except ValueError:
        raise PacketRejected("packet id is not a UUID") from None
    if not isinstance(payload.get("body"), dict):
        raise PacketRejected("packet has no body")
    return station, payload


def _claim(registry: Registry, station: Station, payload: dict[str, Any], digest: str
           ) -> dict[str, Any] | None:
    """Insert the ledger row; returns the stored result instead if the packet was seen."""
    packet_id = uuid.UUID(payload["packet_id"])
    try:
        with transaction(registry.sessions) as session:
            existing = session.get(ReceivedPacket, packet_id, with_for_update=True)
            if existing is not None:
                stale = existing.received_at < utcnow() - _STALE_PROCESSING
                if existing.status != "processing":
                    return {**existing.result, "digest": digest, "replayed": True}
                if not stale:
                    return {"digest": digest, "packet_id": str(packet_id),
                            "status": "in_progress", "detail": "being imported; retry later"}
                existing.received_at = utcnow()
                return None
            session.add(ReceivedPacket(
                packet_id=packet_id, station_id=station.station_id, kind=payload["kind"],
                digest=digest, status="processing", result={}, received_at=utcnow(),
            ))
    except IntegrityError:
        # A concurrent upload of the same packet claimed it first.
        return {"digest": digest, "packet_id": str(packet_id), "status": "in_progress",
                "detail": "being imported; retry later"}
    return None


def _household_result(session: Session, household: Household) -> dict[str, Any]:
    """The per-packet answer for a household the packet created, read from the database.

    Built inside the enrolment transaction (see `_ledger_in_enrolment`), so the ledger row
    that a retry reads back is exactly what the first delivery answered.
    """
    enrolment = session.scalar(select(Enrolment).where(Enrolment.household_id == household.id))
    persons = session.scalars(
        select(Person).where(Person.household_id == household.id).order_by(Person.member_no))
    members = [{"member_no": p.member_no,
                "outcome": ("adjudicate" if p.status == PersonStatus.PENDING_ADJUDICATION
                            else "no_match"),
                "person_id": str(p.id)} for p in persons]
    overall = enrolment.outcome if enrolment is not None else "no_match"
    return {
        "status": "adjudicate" if overall == "adjudicate" else "imported",
        "household_id": str(household.id),
        "registration_number": household.registration_number,
        # Outcomes only: candidate ids and scores are for central adjudicators, not for a
        # kit that may be captured.
        "members": members,
        # Persons start at version 1; the station needs it to base later corrections on.
        "person_versions": {m["person_id"]: 1 for m in members},
    }


def _ledger_in_enrolment(
    registry: Registry, station: Station, packet_id: uuid.UUID, local_household_id: Any,
    actor: str,
) -> tuple[sessionmaker[Session], dict[str, Any]]:
    """Sessions for `enrol_household` whose commit also completes this packet's ledger row.

    Enrolment commits its own transaction; if the process died between that commit and a
    separate ledger update, a retry would re-run enrolment and be told `duplicate` (its own
    household found by 1:N) instead of the original answer. Writing the result in the
    *same* transaction as the household closes that window: a retry finds a completed row and
    replays the stored result. The hook fires only for the transaction that adds a household
    (a refused duplicate creates none: re-running it gives the same answer anyway).
    """
    sessions = make_sessionmaker(registry.engine)
    stored: dict[str, Any] = {}

    def collect(session: Session, _ctx: Any, _instances: Any) -> None:
        for obj in session.new:
            if isinstance(obj, Household):
                session.info.setdefault("sync_households", []).append(obj)

    def complete(session: Session) -> None:
        created = session.info.pop("sync_households", [])
        created += [o for o in session.new if isinstance(o, Household)]
        if not created or stored:
            return
        session.flush()
        outcome = _household_result(session, created[0])
        outcome["local_household_id"] = local_household_id
        _finish(session, packet_id, station, outcome, actor)
        stored.update(outcome)

    event.listen(sessions, "before_flush", collect)
    event.listen(sessions, "before_commit", complete)
    return sessions, stored


def _import_household(
    registry: Registry, station: Station, payload: dict[str, Any], actor: str
) -> dict[str, Any]:
    """Enrol the packet's household centrally; returns the result, already in the ledger
    when a household was created (`completed`), else for the caller to store."""
    body = payload["body"]
    raw = dict(body.get("household") or {})
    # Site and station come from the registered station, never from packet content.
    raw["site"] = station.site
    raw["station"] = station.station_id
    try:
        data = HouseholdCreate.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        return {"status": "rejected", "code": "invalid_payload",
                "detail": f"{field}: {first.get('msg')}"}
    officer = f"station:{station.station_id}/{body.get('enrolled_by', 'unknown')}"[:80]
    sessions, stored = _ledger_in_enrolment(
        registry, station, uuid.UUID(payload["packet_id"]), body.get("local_household_id"),
        actor)
    try:
        result = enrol_household(sessions, registry.gallery, registry.settings,
                                 data=data, ctx=EnrolmentContext(officer=officer))
    except SanadError as exc:
        # A domain refusal (e.g. an unusable template) is this packet's final answer.
        return {"status": "rejected", "code": exc.code, "detail": exc.message}
    if stored:
        return {**stored, "completed": True}
    status = {"no_match": "imported", "adjudicate": "adjudicate",
              "duplicate": "duplicate"}[result.outcome]
    return {
        "status": status,
        "household_id": str(result.household_id) if result.household_id else None,
        "registration_number": result.registration_number,
        "members": [{"member_no": m.member_no, "outcome": m.outcome,
                     "person_id": str(m.person_id) if m.person_id else None}
                    for m in result.members],
        "local_household_id": body.get("local_household_id"),
        "person_versions": {str(m.person_id): 1 for m in result.members if m.person_id},
    }


def _apply_update(
    session: Session, station: Station, payload: dict[str, Any], packet_id: uuid.UUID,
    actor: str,
) -> dict[str, Any]:
    body = payload["body"]
    try:
        person_id = uuid.UUID(str(body["person_id"]))
        base_version = int(body["base_version"])
        changes = dict(body["changes"])
    except (KeyError, ValueError, TypeError):
        return {"status": "rejected", "code": "invalid_payload",
                "detail": "person_update needs person_id, base_version, changes"}
    if not changes or set(changes) - UPDATABLE_FIELDS:
        return {"status": "rejected", "code": "invalid_payload", "detail": "bad changes"}
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        return {"status": "rejected", "code": "not_found", "detail": f"no person {person_id}"}
    if person.version != base_version:
        conflict = SyncConflict(
            packet_id=packet_id, station_id=station.station_id, person_id=person_id,
            base_version=base_version, central_version=person.version, changes=changes,
        )
        session.add(conflict)
        session.flush()
        audit.record(session, actor=actor, action="sync.conflict", subject_type="person",
                     subject_id=str(person_id),
                     details={"conflict_id": str(conflict.id), "packet_id": str(packet_id),
                              "base_version": base_version, "central_version": person.version})
        emit(session, event_type="sync.conflict", subject_id=person_id,
             payload={"conflict_id": str(conflict.id), "station_id": station.station_id})
        return {"status": "conflict", "conflict_id": str(conflict.id), "person_id":
                str(person_id), "central_version": person.version,
                "detail": "the record changed centrally after this packet was made; "
                          "an officer will decide"}
    _write_changes(session, person, changes, actor=actor, reason=f"packet {packet_id}")
    return {"status": "applied", "person_id": str(person_id), "version": person.version}


def _write_changes(
    session: Session, person: Person, changes: dict[str, Any], *, actor: str, reason: str
) -> None:
    for field, value in changes.items():
        setattr(person, field, value)
    person.version += 1
    person.updated_at = utcnow()
    audit.record(session, actor=actor, action="person.update", subject_type="person",
                 subject_id=str(person.id),
                 details={"fields": sorted(changes), "version": person.version, "via": reason})
    emit(session, event_type="person.updated", subject_id=person.id,
         payload={"person_id": str(person.id), "version": person.version,
                  "fields": sorted(changes)})


def receive_packets(registry: Registry, envelopes: list[bytes], *, actor: str
                    ) -> list[dict[str, Any]]:
    """Import each envelope; returns one result per envelope, in order (see module doc)."""
    results = []
    for envelope in envelopes:
        digest = hashlib.sha256(envelope).hexdigest()
        try:
            station, payload = _verify(registry, envelope)
        except PacketRejected as exc:
            with transaction(registry.sessions) as session:
                audit.record(session, actor=actor, action="sync.packet_rejected",
                             subject_type="sync_packet", subject_id=digest,
                             details={"reason": exc.message})
            code = "station_unknown" if exc.message.startswith("unknown station") else \
                "packet_invalid"
            results.append(_rejected(digest, code, exc.message))
            continue
        packet_id = uuid.UUID(payload["packet_id"])
        if station.status != "active":
            with transaction(registry.sessions) as session:
                audit.record(session, actor=actor, action="sync.packet_rejected",
                             subject_type="sync_packet", subject_id=digest,
                             details={"reason": "station revoked",
                                      "station_id": station.station_id})
            results.append(_rejected(digest, "station_revoked",
                                     f"station {station.station_id} is revoked",
                                     str(packet_id)))
            continue
        earlier = _claim(registry, station, payload, digest)
        if earlier is not None:
            results.append(earlier)
            continue
        if payload["kind"] == "household":
            outcome = _import_household(registry, station, payload, actor)
            if not outcome.pop("completed", False):
                with transaction(registry.sessions) as session:
                    _finish(session, packet_id, station, outcome, actor)
        else:
            with transaction(registry.sessions) as session:
                outcome = _apply_update(session, station, payload, packet_id, actor)
                _finish(session, packet_id, station, outcome, actor)
        results.append({"digest": digest, "packet_id": str(packet_id), "replayed": False,
                        **outcome})
    return results


def _finish(session: Session, packet_id: uuid.UUID, station: Station, outcome: dict[str, Any],
            actor: str) -> None:
    row = session.get(ReceivedPacket, packet_id)
    assert row is not None
    row.status = str(outcome["status"])
    row.result = {"packet_id": str(packet_id), **outcome}
    row.completed_at = utcnow()
    audit.record(session, actor=actor, action="sync.packet_import", subject_type="sync_packet",
                 subject_id=str(packet_id),
                 details={"station_id": station.station_id, "status": row.status,
                          "household_id": outcome.get("household_id")})


def list_conflicts(session: Session, *, status: str = "open") -> list[SyncConflict]:
    return list(session.scalars(
        select(SyncConflict).where(SyncConflict.status == status)
        .order_by(SyncConflict.created_at)))


def resolve_conflict(
    session: Session, *, conflict_id: uuid.UUID, resolution: str, actor: str
) -> SyncConflict:
    """An officer's decision: `apply` the station's change on top, or `discard` it."""
    if resolution not in {"apply", "discard"}:
        raise InvalidInput("resolution is apply or discard", field="resolution")
    conflict = session.get(SyncConflict, conflict_id, with_for_update=True)
    if conflict is None:
        raise NotFound(f"no conflict {conflict_id}")
    if conflict.status != "open":
        raise Conflict("conflict already resolved")
    if resolution == "apply":
        person = session.get(Person, conflict.person_id, with_for_update=True)
        if person is None:
            raise NotFound(f"no person {conflict.person_id}")
        _write_changes(session, person, conflict.changes, actor=actor,
                       reason=f"conflict {conflict.id}")
    conflict.status = "resolved"
    conflict.resolution = resolution
    conflict.resolved_by = actor
    conflict.resolved_at = utcnow()
    audit.record(session, actor=actor, action="sync.conflict_resolve", subject_type="person",
                 subject_id=str(conflict.person_id),
                 details={"conflict_id": str(conflict.id), "resolution": resolution})
    return conflict
