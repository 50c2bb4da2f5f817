"""Household enrolment pages: the form (members, both scripts, date-of-birth precision, photo by
upload or webcam with quality feedback, fingerprint records from the scanner, and the biometric
exceptions: a finger amputated or unreadable, a face that cannot be photographed, a refusal),
the photo check, and the result page.

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
from sanad.registry.enrolment import EnrolmentContext, enrol_household
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.schemas import EnrolmentResult, HouseholdCreate
from sanad.web import i18n
from sanad.web.capture import (
    FingerFile,
    PhotoCheck,
    check_photo,
    finger_payload,
    read_capped,
    read_finger_file,
    read_finger_uploads,
)
from sanad.web.session import CsrfChecked, render

router = APIRouter(include_in_schema=False)
Officer = Annotated[Principal, Depends(require_page(Role.REGISTRATION_OFFICER))]
MEMBER_FIELDS = ("given_name", "family_name", "father_name", "given_name_ar", "family_name_ar",
                 "father_name_ar", "date_of_birth", "dob_precision", "sex", "nationality",
                 "relationship_to_head", "phone")
# Biometric exceptions, per member: why the face cannot be photographed, why each finger
# cannot be captured (`MissingBiometric.reason`), and a refusal of every biometric.
FACE_REASONS = ("unreadable", "bandaged", "refused", "other")
FINGER_REASONS = ("amputated", "unreadable", "bandaged", "other")
FINGER_CODES = tuple(range(1, 11))
EXCEPTION_FIELDS = ("face_missing", "refused_reason",
                    *(f"finger{c}_missing" for c in FINGER_CODES))
MAX_MEMBERS = 12


@dataclass
class Submission:
    """What the officer typed, kept to re-render the form with errors (photos included)."""

    place: dict[str, str]
    members: list[dict[str, str]]
    photos: list[tuple[bytes, str] | None]
    fingers: list[list[FingerFile]] = field(default_factory=list)
    request_adjudication: bool = False
    errors: dict[str, str] = field(default_factory=dict)

    def photo_b64(self, i: int) -> str:
        photo = self.photos[i]
        return base64.b64encode(photo[0]).decode() if photo else ""

    def exempt_from_photo(self, i: int) -> bool:
        """The face is recorded as not capturable, or every biometric refused."""
        m = self.members[i]
        return bool(m.get("face_missing") or m.get("refused_reason"))

    def biometrics_open(self, i: int) -> bool:
        """Show member `i`'s fingerprint and exception fields unfolded."""
        m = self.members[i]
        return bool(self.fingers[i] or any(m.get(f) for f in EXCEPTION_FIELDS)
                    or any(self.errors.get(f"m{i}_{k}")
                           for k in ("fingers", "biometrics", "refused_reason")))


def _blank(n: int) -> Submission:
    members = [dict.fromkeys((*MEMBER_FIELDS, *EXCEPTION_FIELDS), "") for _ in range(n)]
    for i, m in enumerate(members):
        m.update(dob_precision="exact", nationality="SYR",
                 relationship_to_head="head" if i == 0 else "child")
    return Submission(place={"province": "", "district": "", "site": "central"},
                      members=members, photos=[None] * n, fingers=[[] for _ in range(n)])


@router.get("/enrol", response_class=HTMLResponse)
def enrol_form(
    request: Request, user: Officer,
    members: Annotated[int, Query(ge=1, le=MAX_MEMBERS)] = 1,
) -> Response:
    return render(request, "enrol.html", _form_context(_blank(members)), user=user)


def _form_context(s: Submission, **extra: object) -> dict[str, object]:
    return {"s": s, "max": MAX_MEMBERS, "face_reasons": FACE_REASONS,
            "finger_reasons": FINGER_REASONS, **extra}


@router.post("/enrol/photo-check", dependencies=[CsrfChecked])
async def photo_check(photo: UploadFile, _user: Officer) -> JSONResponse:
    """Quality feedback on one photo before the form is submitted (called by the page's JS)."""
    data = await photo.read()
    result = await run_in_threadpool(check_photo, data)
    return JSONResponse(result.to_json())


@router.post("/enrol/fingers-check", dependencies=[CsrfChecked])
async def fingers_check(request: Request, _user: Officer) -> JSONResponse:
    """What the chosen fingerprint files hold, before the form is submitted (the page's JS):
    per file the fingers with their minutiae count and quality, or why it is refused. The
    submit reads the files again through the same `read_finger_file`."""
    form = await request.form()
    t = i18n.translator(i18n.language(request))
    files = []
    for upload in form.getlist("fingers"):
        if isinstance(upload, str):
            continue
        name = upload.filename or ""
        try:
            f = read_finger_file(await read_capped(upload), name)
        except ValueError as exc:
            files.append({"name": name, "ok": False, "error": str(exc)})
            continue
        files.append({"name": name, "ok": True, "views": [
            {"position": int(v.position), "finger": t(f"finger.{int(v.position)}"),
             "minutiae": len(v.minutiae), "quality": int(v.quality)}
            for v in f.record.views]})
    return JSONResponse({"files": files})


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


async def _read_fingers(form: FormData, i: int) -> tuple[list[FingerFile], str | None]:
    """Member `i`'s fingerprint records: new uploads replace the ones kept from an earlier
    attempt (hidden `m<i>_fingers_b64`), which the officer may also remove."""
    try:
        new = await read_finger_uploads(list(form.getlist(f"m{i}_fingers")))
    except ValueError as exc:
        return [], str(exc)
    if new:
        return new, None
    if form.get(f"m{i}_fingers_clear") == "1":
        return [], None
    kept = []
    for value in form.getlist(f"m{i}_fingers_b64"):
        if not isinstance(value, str) or not value:
            continue
        try:
            kept.append(read_finger_file(base64.b64decode(value, validate=True)))
        except (binascii.Error, ValueError) as exc:
            return [], str(exc)
    return kept, None


async def _parse(form: FormData) -> Submission:
    count = min(int(str(form.get("members") or "1")) if str(form.get("members") or "1").isdigit()
                else 1, MAX_MEMBERS)
    place = {k: str(form.get(k) or "").strip() for k in ("province", "district", "site")}
    members = [{f: str(form.get(f"m{i}_{f}") or "").strip()
                for f in (*MEMBER_FIELDS, *EXCEPTION_FIELDS)}
               for i in range(count)]
    photos = [await _read_photo(form, i) for i in range(count)]
    s = Submission(place=place, members=members, photos=photos,
                   request_adjudication=form.get("request_adjudication") == "1")
    for i in range(count):
        files, error = await _read_fingers(form, i)
        s.fingers.append(files)
        if error:
            s.errors[f"m{i}_fingers"] = error
    return s


# Where a schema error about a member's field is shown on the form.
_FORM_FIELD = {"face": "photo", "missing_biometrics": "biometrics",
               "biometrics_refused_reason": "refused_reason"}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if len(parts) >= 3 and parts[0] == "members":
        name = parts[2]
        return f"m{parts[1]}_{_FORM_FIELD.get(name, name)}"
    if len(parts) == 2 and parts[0] == "members":
        # The member's own consistency rules are all about which biometrics were captured.
        return f"m{parts[1]}_biometrics"
    return parts[0] if parts else "form"


def _exceptions(m: dict[str, str]) -> list[dict[str, str]]:
    """`PersonCreate.missing_biometrics` from the face and per-finger reason fields."""
    missing = [{"modality": "face", "reason": m["face_missing"]}] if m["face_missing"] else []
    missing += [{"modality": f"finger:{c}", "reason": m[f"finger{c}_missing"]}
                for c in FINGER_CODES if m[f"finger{c}_missing"]]
    return missing


def _payload(s: Submission, checks: list[PhotoCheck | None]) -> dict[str, Any]:
    members = []
    for m, check, photo, fingers in zip(s.members, checks, s.photos, s.fingers, strict=True):
        member: dict[str, Any] = {k: m[k] for k in MEMBER_FIELDS if m[k] != "" or k in (
            "given_name", "family_name", "date_of_birth", "sex", "nationality")}
        if not member.get("phone"):
            member.pop("phone", None)
        if fingers:
            member["fingers"] = finger_payload(fingers)
        if missing := _exceptions(m):
            member["missing_biometrics"] = missing
        if m["refused_reason"]:
            member["biometrics_refused_reason"] = m["refused_reason"]
        if check is not None and check.accepted:
            member["face"] = {"template": check.template_b64(), "quality": check.quality}
            if photo:
                # Sealed with the templates in the enrolment transaction: printed on the card.
                member["face"]["photo"] = base64.b64encode(photo[0]).decode()
        members.append(member)
    return {**s.place, "station": "web", "members": members,
            "request_adjudication": s.request_adjudication}


def _submit(registry: Registry, s: Submission, officer: str) -> EnrolmentResult | None:
    """Check photos, validate, enrol. None when `s.errors` was filled."""
    checks: list[PhotoCheck | None] = []
    for i, photo in enumerate(s.photos):
        if photo is None and s.exempt_from_photo(i):
            checks.append(None)  # no face on purpose: the reason is recorded instead
            continue
        check = check_photo(photo[0] if photo else b"")
        if not check.accepted:
            s.errors[f"m{i}_photo"] = ", ".join(check.reasons)
        checks.append(check)
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
    # The photo travels in the payload (`face.photo`) and is sealed with the templates in the
    # enrolment transaction: the one copy the card, the person page and adjudicators use.
    return enrol_household(registry.sessions, registry.gallery, registry.settings, data=data,
                           ctx=EnrolmentContext(officer=officer))


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
        return render(request, "enrol.html", _form_context(submission, problem=t("enrol.fix")),
                      user=user, status_code=422)
    return render(request, "enrol_result.html", {"r": result, "s": submission}, user=user)
