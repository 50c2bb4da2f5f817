"""`sanad card …`: issue cards."""

from __future__ import annotations

from typing import Annotated

import typer

from sanad.cli._common import actor, group, parse_uuid, print_json, registry

card_app = group("card", "Issue cards.")


@card_app.command("issue")
def card_issue(person_id: Annotated[str, typer.Argument(help="The person's id (UUID).")]) -> None:
    """Issue a card; prints card_number, mrz and qr, and writes the QR as PNG."""
    from sanad.credentials.qr import qr_png
    from sanad.registry.cards import issue_card
    from sanad.registry.db import transaction

    pid = parse_uuid(person_id, "person_id")
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            issued = issue_card(
                session, person_id=pid, officer=actor(), key=reg.issuer_key,
                sealer=reg.sealer, settings=reg.settings,
            )
        reg.settings.cards_dir.mkdir(parents=True, exist_ok=True)
        png = reg.settings.cards_dir / f"{issued.card.card_number}.png"
        qr_png(issued.qr, png)
        print_json({
            "card_id": str(issued.card.id), "card_number": issued.card.card_number,
            "expires_at": issued.card.expires_at.isoformat(), "mrz": issued.mrz,
            "qr": issued.qr, "qr_png": str(png),
        })
    finally:
        reg.close()
