"""Household enrolment pages: the form (members, both scripts, date-of-birth precision, photo by
upload or webcam with quality feedback), the photo check, and the result page.

The form posts multipart data with one field group per member (`m0_given_name`, …). The
submission is validated by the same `HouseholdCreate` schema the API uses, so the page and the
API can never accept different things; a validation error is shown next to its field.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from sanad.api.deps import Principal, RegistryDep, require_page
from sanad.errors import SanadError
from sanad.registry.db import transaction
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.models import Role
from sanad.registry.person_records import save_photo
from sanad.registry.runtime import Registry
from sanad.registry.schemas import EnrolmentResult, HouseholdCreate
from sanad.web import i18n
from sanad.web.capture import PhotoCheck, check_photo
from sanad.web.session import CsrfChecked, render

router = APIRouter(include_in_schema=False)
Officer = Annotated[Principal, Depends(require_page(Role.REGISTRATION_OFFICER))]
MEMBER_FIELDS = ("given_name", "family_name", "father_name", "given_name_ar", "family_name_ar",
                 "father_name_ar", "date_of_birth", "dob_precision", "sex", "nationality",
                 "relationship_to_head", "phone")
MAX_MEMBERS = 12


@dataclass
class Submission:
    """What the officer typed, kept to re-render the form with errors (photos included)."""

    place: dict[str, str]
    members: list[dict[str, str]]
    photos: list[tuple[bytes, str] | None]
    request_adjudication: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    def photo_b64(self, i: int) -> str:
        photo = self.photos[i]
        return base64.b64encode(photo[0]).decode() if photo else ""


def _blank(n: int) -> Submission:
    members = [dict.fromkeys(MEMBER_FIELDS, "") for _ in range(n)]
    for i, m in enumerate(members):
        m.update(dob_precision="exact", nationality="SYR",
                 relationship_to_head="head" if i == 0 else "child")
    return Submission(place={"province": "", "district": "", "site": "central"},
                      members=members, photos=[None] * n)


@router.get("/enrol", response_class=HTMLResponse)
def enrol_form(
    request: Request, user: Officer,
    members: Annotated[int, Query(ge=1, le=MAX_MEMBERS)] = 1,
) -> Response:
    return render(request, "enrol.html", {"s": _blank(members), "max": MAX_MEMBERS}, user=user)


@router.post("/enrol/photo-check", dependencies=[CsrfChecked])
async def photo_check(photo: UploadFile, _user: Officer) -> JSONResponse:
    """Quality feedback on one photo before the form is submitted (called by the page's JS)."""
    data = await photo.read()
    result = await run_in_threadpool(check_photo, data)
    return JSONResponse(result.to_json())


async def _read_photo(form: FormData, i: int) -> tuple[bytes, str] | None:
    upload = form.get(f"m{i}_photo")
    if upload is not None and not isinstance(upload, str):
        data = await upload.read()
        if data:
            return data, upload.content_type or ""
    kept = form.get(f"m{i}_photo_b64")
    if isinstance(kept, str) and kept:
        try:
            return base64.b64decode(kept, validate=True), ""
        except (binascii.Error, ValueError):
            return None
    return None


async def _parse(form: FormData) -> Submission:
    count = min(int(str(form.get("members") or "1")) if str(form.get("members") or "1").isdigit()
                else 1, MAX_MEMBERS)
    place = {k: str(form.get(k) or "").strip() for k in ("province", "district", "site")}
    members = [{f: str(form.get(f"m{i}_{f}") or "").strip() for f in MEMBER_FIELDS}
               for i in range(count)]
    photos = [await _read_photo(form, i) for i in range(count)]
    return Submission(place=place, members=members, photos=photos,
                      request_adjudication=form.get("request_adjudication") == "1")


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) >= 3 and parts[0] == "members":
        name = parts[2]
        return f"m{parts[1]}_{'photo' if name == 'face' else name}"
    return parts[0] if parts else "form"


def _payload(s: Submission, checks: list[PhotoCheck]) -> dict[str, Any]:
    members = []
    for m, check, photo in zip(s.members, checks, s.photos, strict=True):
        member: dict[str, Any] = {k: v for k, v in m.items() if v != "" or k in (
            "given_name", "family_name", "date_of_birth", "sex", "nationality")}
        if not member.get("phone"):
            member.pop("phone", None)
        if check.accepted:
            member["face"] = {"template": check.template_b64(), "quality": check.quality}
            if photo:
                # Sealed with the templates in the enrolment transaction: printed on the card.
                member["face"]["photo"] = base64.b64encode(photo[0]).decode()
        members.append(member)
    return {**s.place, "station": "web", "members": members,
            "request_adjudication": s.request_adjudication}


def _submit(registry: Registry, s: Submission, officer: str) -> EnrolmentResult | None:
    """Check photos, validate, enrol, keep the photos. None when `s.errors` was filled."""
    checks = [check_photo(p[0]) if p else check_photo(b"") for p in s.photos]
    for i, check in enumerate(checks):
        if not check.accepted:
            s.errors[f"m{i}_photo"] = ", ".join(check.reasons)
    try:
        data = HouseholdCreate.model_validate(_payload(s, checks))
    except ValidationError as exc:
        for err in exc.errors():
            name = _field_name(tuple(err.get("loc", ())))
            if name.endswith("_photo") and name in s.errors:
                continue
            s.errors.setdefault(name, str(err.get("msg", "invalid")))
        return None
    if s.errors:
        return None
    result = enrol_household(registry.sessions, registry.gallery, registry.settings, data=data,
                             ctx=EnrolmentContext(officer=officer))
    if result.outcome != "duplicate":
        with transaction(registry.sessions) as session:
            for member, check, photo in zip(result.members, checks, s.photos, strict=True):
                if member.person_id and photo and check.content_type:
                    save_photo(session, person_id=member.person_id, data=photo[0],
                               content_type=check.content_type, actor=officer,
                               sealer=registry.sealer)
    return result


@router.post("/enrol", response_class=HTMLResponse, dependencies=[CsrfChecked])
async def enrol_submit(request: Request, registry: RegistryDep, user: Officer) -> Response:
    form = await request.form()
    submission = await _parse(form)
    t = i18n.translator(i18n.language(request))
    try:
        result = await run_in_threadpool(_submit, registry, submission, user.username)
    except SanadError as exc:
        field_name = getattr(exc, "field", None) or "form"
        submission.errors[_field_name(tuple(str(field_name).split(".")))] = exc.message
        result = None
    if result is None:
        return render(request, "enrol.html",
                      {"s": submission, "max": MAX_MEMBERS, "problem": t("enrol.fix")},
                      user=user, status_code=422)
    return render(request, "enrol_result.html", {"r": result, "s": submission}, user=user)
