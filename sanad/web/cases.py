"""Adjudication pages: the queue and a case (photos side by side, scores, biographic
differences, a decision with its reason), over `sanad.registry.adjudication`."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from sanad.api.deps import Principal, RegistryDep, require_page
from sanad.errors import SanadError
from sanad.registry import adjudication, person_records
from sanad.registry.captures import summaries_for
from sanad.registry.db import transaction
from sanad.registry.models import AdjudicationCase, Role
from sanad.registry.photos import media_type
from sanad.registry.recapture import held_capture
from sanad.registry.runtime import Registry
from sanad.web.session import CsrfChecked, data_uris, render

router = APIRouter(include_in_schema=False)
Adjudicator = Annotated[Principal, Depends(require_page(Role.ADJUDICATOR))]


@router.get("/cases", response_class=HTMLResponse)
def queue(
    request: Request, registry: RegistryDep, user: Adjudicator, status: str = "open"
) -> Response:
    wanted = status if status in {s.value for s in adjudication.CaseStatus} else "open"
    with transaction(registry.sessions) as session:
        cases = adjudication.list_cases(session, actor=user.username, status=wanted, limit=200)
    return render(request, "cases.html", {"cases": cases, "status": wanted}, user=user)


def _case_page(
    request: Request, registry: RegistryDep, user: Principal, case_id: uuid.UUID,
    error: str | None = None, status_code: int = 200,
) -> Response:
    with transaction(registry.sessions) as session:
        detail = adjudication.get_case(session, case_id, actor=user.username)
        ids = [detail.person.id, *(c.person.id for c in detail.candidates if c.person)]
        photos = data_uris(person_records.photos_for(session, person_ids=ids,
                                                     actor=user.username,
                                                     sealer=registry.sealer))
        # What each side had captured, and why not: the reason for a face_exception or
        # no_biometrics case (the case read above is the audited read).
        people = [detail.person, *(c.person for c in detail.candidates if c.person)]
        captures = summaries_for(session, people)
        held = _held(session, registry, detail.case, user.username)
    return render(request, "case.html",
                  {"d": detail, "error": error, "photos": photos, "captures": captures,
                   "held": held}, user=user, status_code=status_code)


def _held(session: Session, registry: Registry, case: AdjudicationCase, actor: str
          ) -> dict[str, object] | None:
    """What a `recapture` case holds, for the side-by-side view (an audited read)."""
    if case.kind != adjudication.HELD_CAPTURE_KIND or case.status == "resolved":
        return None
    found = held_capture(session, registry.sealer, case.id, actor=actor)
    if found is None:
        return {"gone": True}
    row, data = found
    photo = data.face.photo_bytes() if data.face is not None else None
    return {"gone": False, "verification": row.verification, "officer": row.officer,
            "reason": data.reason, "note": data.note,
            "photo": None if photo is None else f"data:{media_type(photo)};base64,"
            f"{base64.b64encode(photo).decode()}"}


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case(case_id: uuid.UUID, request: Request, registry: RegistryDep,
         user: Adjudicator) -> Response:
    return _case_page(request, registry, user, case_id)


@router.post("/cases/{case_id}/decision", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
def decide(
    case_id: uuid.UUID, request: Request, registry: RegistryDep, user: Adjudicator,
    verdict: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    link_to: Annotated[str, Form()] = "",
) -> Response:
    try:
        if verdict not in {v.value for v in adjudication.Verdict}:
            raise SanadError("choose same person or different person")
        with transaction(registry.sessions) as session:
            adjudication.decide_case(
                session, case_id=case_id, verdict=adjudication.Verdict(verdict), reason=reason,
                actor=user.username, sealer=registry.sealer,
                match_threshold=registry.settings.dedup_match_threshold,
                link_to=uuid.UUID(link_to) if link_to else None,
            )
    except (SanadError, ValueError) as exc:
        message = exc.message if isinstance(exc, SanadError) else str(exc)
        return _case_page(request, registry, user, case_id, error=message, status_code=422)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
