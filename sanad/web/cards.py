"""The card desk: find a person, issue / re-issue a card, preview and print its PDF, revoke it
with a reason. Everything goes through `sanad.registry.cards` (the credentials organ)."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sanad.api.deps import Principal, RegistryDep, require_page
from sanad.errors import SanadError
from sanad.registry import cards, person_records
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.web.session import CsrfChecked, render

router = APIRouter(include_in_schema=False)
CardOfficer = Annotated[Principal, Depends(require_page(Role.CARD_OFFICER))]


def _desk(
    request: Request, registry: RegistryDep, user: Principal, q: str,
    error: str | None = None, issued: str | None = None, status_code: int = 200,
) -> Response:
    found: list[object] = []
    outdated: dict[uuid.UUID, object] = {}
    due: list[tuple[object, object]] = []
    preview: str | None = None
    if not q:
        with transaction(registry.sessions) as session:
            queue = cards.cards_to_reissue(session, limit=50)
            if queue:
                cards.audit_reissue_queue(session, actor=user.username,
                                          cards=[c for c, _ in queue])
            due = list(queue)
    if q:
        with transaction(registry.sessions) as session:
            persons, _ = person_records.search_persons(
                session, actor=user.username,
                filters=person_records.PersonFilter(q=q[:100]), limit=20,
            )
            found = list(persons)
            outdated = dict(cards.outdated_cards(session, [p.id for p in persons]))
            just_issued = [c for p in persons for c in p.cards if c.card_number == issued]
            if just_issued:
                # Inline, in this transaction: one audited render, no second request racing it.
                png = cards.card_png_bytes(session, card_id=just_issued[0].id,
                                           actor=user.username, settings=registry.settings,
                                           dpi=120, sealer=registry.sealer)
                preview = f"data:image/png;base64,{base64.b64encode(png).decode()}"
    return render(request, "card_desk.html",
                  {"q": q, "found": found, "error": error, "issued": issued, "preview": preview,
                   "outdated": outdated, "due": due,
                   "reasons": [r for r in cards.REVOCATION_REASONS
                               if r not in cards.SYSTEM_REVOCATION_REASONS]},
                  user=user, status_code=status_code)


@router.get("/card-desk", response_class=HTMLResponse)
def desk(request: Request, registry: RegistryDep, user: CardOfficer, q: str = "",
         issued: str = "") -> Response:
    return _desk(request, registry, user, q, issued=issued or None)


@router.post("/card-desk/{person_id}/issue", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
def issue(
    person_id: uuid.UUID, request: Request, registry: RegistryDep, user: CardOfficer,
    q: Annotated[str, Form()] = "",
) -> Response:
    """Issue a card, or re-issue one (the active card is revoked as superseded); re-issued
    with reason ``update`` when the active card carries an earlier face than the newest."""
    try:
        with transaction(registry.sessions) as session:
            stale = person_id in cards.outdated_cards(session, [person_id])
            issued = cards.issue_card(
                session, person_id=person_id, officer=user.username, key=registry.issuer_key,
                sealer=registry.sealer, settings=registry.settings,
                issue_reason="update" if stale else "new",
            )
            number = issued.card.card_number
    except SanadError as exc:
        return _desk(request, registry, user, q, error=exc.message, status_code=409)
    return RedirectResponse(f"/card-desk?q={quote(q)}&issued={number}", status_code=303)


@router.post("/card-desk/cards/{card_id}/revoke", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
def revoke(
    card_id: uuid.UUID, request: Request, registry: RegistryDep, user: CardOfficer,
    reason: Annotated[str, Form()] = "", q: Annotated[str, Form()] = "",
) -> Response:
    try:
        with transaction(registry.sessions) as session:
            cards.revoke_card(session, card_id=card_id, reason=reason, officer=user.username)
    except SanadError as exc:
        return _desk(request, registry, user, q, error=exc.message, status_code=409)
    return RedirectResponse(f"/card-desk?q={quote(q)}", status_code=303)


@router.get("/card-desk/cards/{card_id}/card.pdf")
def pdf(card_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> Response:
    """The print-ready PDF (ID-1 front and back)."""
    with transaction(registry.sessions) as session:
        data = cards.card_pdf_bytes(session, card_id=card_id, actor=user.username,
                                    settings=registry.settings, sealer=registry.sealer)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="card-{card_id}.pdf"',
                             "Cache-Control": "private, no-store"})


@router.get("/card-desk/cards/{card_id}/front.png")
def preview(card_id: uuid.UUID, registry: RegistryDep, user: CardOfficer) -> Response:
    """A PNG preview of the card's front for the desk page."""
    with transaction(registry.sessions) as session:
        data = cards.card_png_bytes(session, card_id=card_id, actor=user.username,
                                    settings=registry.settings, dpi=120,
                                    sealer=registry.sealer)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, no-store"})
