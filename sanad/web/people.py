"""Person pages: search, the record (household, cards, status history, and for auditors the
audit trail), the portrait, reversible status changes with a reason, and a new capture of the
person's biometrics (docs/recapture.md)."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from sanad.api.deps import Principal, RegistryDep, require_page
from sanad.errors import SanadError
from sanad.registry import captures, person_records, status_changes
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext
from sanad.registry.models import Role
from sanad.registry.recapture import recapture_person
from sanad.registry.runtime import Registry
from sanad.registry.schemas import BiometricsUpdate, RecaptureReason, RecaptureResult
from sanad.web import i18n
from sanad.web.capture import (
    MAX_PHOTO_BYTES,
    FingerFile,
    check_photo,
    finger_payload,
    read_finger_uploads,
)
from sanad.web.session import CsrfChecked, data_uris, render

router = APIRouter(include_in_schema=False)
READERS = (Role.REGISTRATION_OFFICER, Role.ADJUDICATOR, Role.CARD_OFFICER, Role.AUDITOR)
Reader = Annotated[Principal, Depends(require_page(*READERS))]
Officer = Annotated[Principal, Depends(require_page(Role.REGISTRATION_OFFICER))]


@router.get("/people", response_class=HTMLResponse)
def search(
    request: Request, registry: RegistryDep, user: Reader, q: str = "", offset: int = 0
) -> Response:
    found: list[object] = []
    total = 0
    offset = max(0, min(offset, 10_000_000))
    with transaction(registry.sessions) as session:
        persons, total = person_records.search_persons(
            session, actor=user.username, filters=person_records.PersonFilter(q=q[:100] or None),
            limit=50, offset=offset,
        )
        found = list(persons)
    return render(request, "people.html", {"q": q, "found": found, "total": total,
                                           "offset": offset}, user=user)


def _record_page(
    request: Request, registry: RegistryDep, user: Principal, person_id: uuid.UUID,
    error: str | None = None, status_code: int = 200, notice: str | None = None,
) -> Response:
    with transaction(registry.sessions) as session:
        record = person_records.person_record(
            session, person_id=person_id, actor=user.username,
            with_trail=Role.AUDITOR.value in user.roles,
            with_captures=bool(user.roles & {r.value for r in captures.READERS}),
        )
        photos = data_uris(person_records.photos_for(session, person_ids=[person_id],
                                                     actor=user.username,
                                                     sealer=registry.sealer))
    return render(request, "person.html", {"r": record, "error": error, "photos": photos,
                                           "notice": notice, "reasons": RECAPTURE_REASONS,
                                           "station_mode": registry.settings.station_mode},
                  user=user, status_code=status_code)


@router.get("/people/{person_id}", response_class=HTMLResponse)
def record(person_id: uuid.UUID, request: Request, registry: RegistryDep,
           user: Reader, recaptured: str = "", case: str = "") -> Response:
    notice = None
    t = i18n.translator(i18n.language(request))
    if recaptured in ("face", "fused"):
        notice = t(f"recap.done.{recaptured}") + (f" {t('recap.case')}" if case else "")
    elif recaptured == "first":
        notice = t("recap.done.first_case" if case else "recap.done.first")
    elif recaptured == "held":
        notice = t("recap.done.held")
    return _record_page(request, registry, user, person_id, notice=notice)


RECAPTURE_REASONS = get_args(RecaptureReason)


def _recapture(registry: Registry, person_id: uuid.UUID, officer: str, photo: bytes,
               fingers: list[FingerFile], reason: str, note: str,
               request_adjudication: bool) -> RecaptureResult:
    """Photo through the face model (as at enrolment), then the same service as the API."""
    body: dict[str, object] = {"reason": reason, "note": note,
                               "request_adjudication": request_adjudication}
    if photo:
        check = check_photo(photo)
        if not check.accepted:
            raise ValueError(f"face photo rejected: {', '.join(check.reasons)}")
        body["face"] = {"template": check.template_b64(), "quality": check.quality,
                        "photo": base64.b64encode(photo).decode()}
    if fingers:
        body["fingers"] = finger_payload(fingers)
    try:
        data = BiometricsUpdate.model_validate(body)
    except ValidationError as exc:
        raise ValueError("; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" if e["loc"] else str(e["msg"])
            for e in exc.errors())) from None
    return recapture_person(registry.sessions, registry.gallery, registry.settings,
                            person_id=person_id, data=data,
                            ctx=EnrolmentContext(officer=officer))


@router.post("/people/{person_id}/recapture", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
async def recapture(person_id: uuid.UUID, request: Request, registry: RegistryDep,
                    user: Officer) -> Response:
    """A new capture of the person: stored only when it verifies, or a person's first capture
    searched against everyone (docs/recapture.md)."""
    form = await request.form()
    photo_part = form.get("photo")
    # Read no further than one byte past the limit: `check_photo` refuses a larger file.
    photo = (b"" if photo_part is None or isinstance(photo_part, str)
             else await photo_part.read(MAX_PHOTO_BYTES + 1))
    try:
        fingers = await read_finger_uploads(list(form.getlist("fingers")))
        result = await run_in_threadpool(
            _recapture, registry, person_id, user.username, photo, fingers,
            str(form.get("reason") or ""), str(form.get("note") or "").strip(),
            form.get("request_adjudication") == "1")
    except (SanadError, ValueError) as exc:
        message = exc.message if isinstance(exc, SanadError) else str(exc)
        status = exc.status if isinstance(exc, SanadError) else 422
        return await run_in_threadpool(_record_page, request, registry, user, person_id,
                                       message, status)
    case = f"&case={result.case_id}" if result.case_id else ""
    how = "first" if result.first_capture else "held" if result.held else result.verified_by
    return RedirectResponse(f"/people/{person_id}?recaptured={how}{case}#biometrics",
                            status_code=303)


@router.get("/people/{person_id}/photo")
def photo(person_id: uuid.UUID, registry: RegistryDep, user: Reader) -> Response:
    with transaction(registry.sessions) as session:
        data, media_type = person_records.get_photo(
            session, person_id=person_id, actor=user.username, sealer=registry.sealer
        )
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, no-store"})


@router.post("/people/{person_id}/status", response_class=HTMLResponse,
             dependencies=[CsrfChecked])
def change_status(
    person_id: uuid.UUID, request: Request, registry: RegistryDep, user: Officer,
    action: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    new_head_id: Annotated[str, Form()] = "", change_id: Annotated[str, Form()] = "",
) -> Response:
    """One form for every reversible change: deceased, reactivate, make head, revert."""
    try:
        with transaction(registry.sessions) as session:
            if action == "deceased":
                status_changes.mark_deceased(
                    session, person_id=person_id, reason=reason, actor=user.username,
                    new_head_id=uuid.UUID(new_head_id) if new_head_id else None,
                )
            elif action == "reactivate":
                status_changes.reactivate(session, person_id=person_id, reason=reason,
                                          actor=user.username)
            elif action == "make_head":
                record = person_records.person_record(
                    session, person_id=person_id, actor=user.username, with_trail=False
                )
                status_changes.change_head(session, household_id=record.household.id,
                                           new_head_id=person_id, reason=reason,
                                           actor=user.username)
            elif action == "revert":
                status_changes.revert_change(session, change_id=uuid.UUID(change_id),
                                             reason=reason, actor=user.username)
            else:
                raise SanadError(f"unknown action {action!r}")
    except (SanadError, ValueError) as exc:
        message = exc.message if isinstance(exc, SanadError) else str(exc)
        return _record_page(request, registry, user, person_id, error=message, status_code=422)
    return RedirectResponse(f"/people/{person_id}", status_code=303)
