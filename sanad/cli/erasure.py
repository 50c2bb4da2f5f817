"""`sanad person erase …`: lawful erasure of a person's biometric data (crypto-shredding)."""

from __future__ import annotations

from typing import Annotated

import typer

from sanad.cli._common import actor, parse_uuid, print_json, registry
from sanad.cli.person import person_app


@person_app.command("erase")
def person_erase(
    person_id: Annotated[str, typer.Argument(help="The person's id (UUID).")],
    reason: Annotated[str, typer.Option(help="Legal basis of the erasure (audited).")],
) -> None:
    """Destroy the person's data keys so their templates are unreadable; audited."""
    from sanad.registry.db import transaction
    from sanad.registry.erasure import drop_from_gallery, erase_person

    pid = parse_uuid(person_id, "person_id")
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            report = erase_person(session, person_id=pid, reason=reason, actor=actor())
        drop_from_gallery(reg.gallery, report.records_erased, report.dek_ids)
    finally:
        reg.close()
    print_json(report.to_json())
