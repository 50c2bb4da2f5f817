"""`sanad kit …`: field-kit stations (on the kit) and their registration (at the centre)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sanad.cli._common import actor, err, group, parse_uuid, print_json, registry, settings

kit_app = group("kit", "Field-kit stations: init, status, export, receipts; register/revoke.")


@kit_app.command("init")
def kit_init(
    site: Annotated[str, typer.Option(help="Site name the station works at.")],
    central_key: Annotated[Path, typer.Option(
        help="The centre's public key JSON (`sanad kit central-key` at the centre).")],
    station_id: Annotated[str | None, typer.Option(help="Station id (default: site-based).")
                          ] = None,
) -> None:
    """Make this SANAD_HOME a station: own SQLite, own signing key. Prints the registration
    document for the centre's `sanad kit register`."""
    import secrets

    from sanad.registry.runtime import ADMIN_USERNAME, init_registry
    from sanad.sync.keys import CentralPublicKey
    from sanad.sync.station import REGISTRATION_FILE, init_kit, kit_dir

    s = settings()
    if s.database_url and not s.database_url.startswith("sqlite"):
        err.print("note: a field kit normally uses its own SQLite (unset SANAD_DATABASE_URL)")
    central = CentralPublicKey.load(central_key)
    report = init_registry(s)
    sid = station_id or f"{site.lower().replace(' ', '-')}-{secrets.token_hex(3)}"
    registration = init_kit(s, station_id=sid, site=site, central=central)
    if report.created_admin_password:
        err.print(f"created station user {ADMIN_USERNAME!r} with one-time password: "
                  f"{report.created_admin_password}", soft_wrap=True)
    err.print(f"station {sid} ready; run it with SANAD_STATION_MODE=1. Give "
              f"{kit_dir(s) / REGISTRATION_FILE} to a central admin.", soft_wrap=True)
    print_json(registration)


@kit_app.command("central-key")
def central_key() -> None:
    """(Centre) print the public packet-encryption key stations need (made on first use)."""
    from sanad.sync.keys import load_or_create_central_key

    key, created = load_or_create_central_key(settings().keys_dir)
    if created:
        err.print("created the central sync key")
    print_json(key.public.to_json())


@kit_app.command("register")
def kit_register(
    registration: Annotated[Path, typer.Argument(help="The station's registration JSON.")],
) -> None:
    """(Centre, admin) register a station's public key."""
    from sanad.registry.db import transaction
    from sanad.sync.centre import register_station

    doc = json.loads(registration.read_text(encoding="utf-8"))
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            st = register_station(session, station_id=str(doc["station_id"]),
                                  site=str(doc["site"]), public_key_b64=str(doc["public_key"]),
                                  kid=doc.get("kid"), actor=actor())
            print_json({"station_id": st.station_id, "kid": st.kid, "status": st.status})
    finally:
        reg.close()


@kit_app.command("revoke")
def kit_revoke(station_id: Annotated[str, typer.Argument()]) -> None:
    """(Centre, admin) revoke a station's key: its packets are rejected from now on."""
    from sanad.registry.db import transaction
    from sanad.sync.centre import revoke_station

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            st = revoke_station(session, station_id=station_id, actor=actor())
            print_json({"station_id": st.station_id, "status": st.status})
    finally:
        reg.close()


@kit_app.command("stations")
def kit_stations() -> None:
    """(Centre) registered stations as JSON lines."""
    from sanad.registry.db import transaction
    from sanad.sync.centre import list_stations

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            for st in list_stations(session):
                print_json({"station_id": st.station_id, "site": st.site, "kid": st.kid,
                            "status": st.status})
    finally:
        reg.close()


@kit_app.command("status")
def kit_status() -> None:
    """(Station) queue size, last error, last sync, revoked flag (queues new households)."""
    from sanad.registry.db import transaction
    from sanad.sync import station

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            station.queue_new_households(session, reg.settings, reg.sealer)
        with transaction(reg.sessions) as session:
            print_json(station.kit_status(session, reg.settings))
    finally:
        reg.close()


@kit_app.command("export")
def kit_export(
    out: Annotated[Path, typer.Option(help="Directory for the .cose packet files.")],
) -> None:
    """(Station) write every queued packet (signed, encrypted to the centre) to `out`."""
    from sanad.registry.db import transaction
    from sanad.sync import station

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            station.queue_new_households(session, reg.settings, reg.sealer)
        with transaction(reg.sessions) as session:
            paths = station.export_packets(session, out)
        print_json({"exported": len(paths), "directory": str(out)})
    finally:
        reg.close()


@kit_app.command("receipt")
def kit_receipt(household_id: Annotated[str, typer.Argument()]) -> None:
    """(Station) the provisional receipt of a household enrolled here."""
    from sanad.registry.db import transaction
    from sanad.sync import station

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            station.queue_new_households(session, reg.settings, reg.sealer)
            print_json(station.provisional_receipt(
                session, household_id=parse_uuid(household_id, "household_id"), actor=actor()))
    finally:
        reg.close()


@kit_app.command("receipts")
def kit_receipts(limit: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """(Station) the centre's answers to synced packets, newest first."""
    from sanad.registry.db import transaction
    from sanad.sync import station

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            for r in station.receipts(session, limit=limit):
                print_json(r)
    finally:
        reg.close()


@kit_app.command("correct")
def kit_correct(
    person_id: Annotated[str, typer.Argument(help="Central person id (from a receipt).")],
    version: Annotated[int, typer.Option(help="Central version the correction is based on.")],
    set_: Annotated[list[str], typer.Option("--set", help="field=value (repeatable).")],
) -> None:
    """(Station) queue a correction of a central record; a central change since `version`
    makes it a conflict for an officer, never a silent overwrite."""
    from sanad.errors import InvalidInput
    from sanad.registry.db import transaction
    from sanad.sync import station

    changes: dict[str, str | None] = {}
    for item in set_:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"--set expects field=value, got {item!r}", field="set")
        changes[key] = value or None
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            packet_id = station.queue_person_update(
                session, reg.settings, person_id=parse_uuid(person_id, "person_id"),
                base_version=version, changes=changes, actor=actor())
        print_json({"queued": str(packet_id)})
    finally:
        reg.close()


@kit_app.command("import-packets")
def kit_import_packets(
    directory: Annotated[Path, typer.Argument(help="Directory of .cose packet files.")],
) -> None:
    """(Centre) import packets carried on removable media; prints one result per packet.
    The station's queue empties at its next `sanad sync` (replays are answered, not redone)."""
    from sanad.sync.centre import receive_packets

    files = sorted(directory.glob("*.cose"))
    reg = registry()
    try:
        for path in files:
            [result] = receive_packets(reg, [path.read_bytes()], actor=actor())
            print_json({"file": path.name, **{k: v for k, v in result.items()
                                             if k not in {"members"}}})
    finally:
        reg.close()


@kit_app.command("conflicts")
def kit_conflicts() -> None:
    """(Centre) open sync conflicts for an officer to resolve."""
    from sanad.registry.db import transaction
    from sanad.sync.centre import list_conflicts

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            for c in list_conflicts(session):
                print_json({"id": str(c.id), "person_id": str(c.person_id),
                            "station_id": c.station_id, "base_version": c.base_version,
                            "central_version": c.central_version, "changes": c.changes})
    finally:
        reg.close()


@kit_app.command("resolve")
def kit_resolve(
    conflict_id: Annotated[str, typer.Argument()],
    resolution: Annotated[str, typer.Argument(help="apply | discard")],
) -> None:
    """(Centre) resolve a sync conflict."""
    from sanad.registry.db import transaction
    from sanad.sync.centre import resolve_conflict

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            c = resolve_conflict(session, conflict_id=parse_uuid(conflict_id, "conflict_id"),
                                 resolution=resolution, actor=actor())
            print_json({"id": str(c.id), "status": c.status, "resolution": c.resolution})
    finally:
        reg.close()
