"""Pydantic schemas: what comes in (`XCreate`) and goes out (`XPublic`), apart from ORM models.

Validation messages name the field (pydantic's `loc`), which the API turns into RFC 9457
problem details.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from sanad.biometrics.finger import (
    TEN_FINGERS,
    FingerMinutiaeRecord,
    FingerPosition,
    FingerTemplateError,
    FingerView,
    decode_record,
    encode_record,
)
from sanad.registry.models import DobPrecision, Sex

_ARABIC_OR_EMPTY = re.compile(
    r"^[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF\s'-]*$"
)
_LATIN_NAME = re.compile(r"^[A-Za-z\u00C0-\u024F][A-Za-z\u00C0-\u024F '\-.]*$")

LatinName = Annotated[str, Field(min_length=1, max_length=100, examples=["Mohammad"])]
ArabicName = Annotated[str, Field(default="", max_length=100, examples=["محمد"])]


MAX_PHOTO_BYTES = 5 * 1024 * 1024


class FaceCapture(BaseModel):
    """A face capture: a photo (the server extracts the template and checks quality), or a
    template computed by a trusted capture device, or both (the photo is kept for the card)."""

    model_config = ConfigDict(extra="forbid")
    template: str | None = Field(
        default=None, description="Base64 of the little-endian float32 template vector."
    )
    photo: str | None = Field(
        default=None, max_length=MAX_PHOTO_BYTES * 4 // 3 + 4,
        description="Base64 of a JPEG or PNG face photo (at most 5 MB).",
    )
    quality: float | None = Field(
        default=None, ge=0.0, le=1.0, examples=[0.92],
        description="Capture quality from the device; computed from the photo when absent.",
    )

    @field_validator("template", "photo")
    @classmethod
    def _base64(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("must be base64") from exc
        return v

    @model_validator(mode="after")
    def _something(self) -> FaceCapture:
        if self.template is None and self.photo is None:
            raise ValueError("give a photo or a template")
        return self

    def template_bytes(self) -> bytes | None:
        return base64.b64decode(self.template) if self.template is not None else None

    def photo_bytes(self) -> bytes | None:
        return base64.b64decode(self.photo) if self.photo is not None else None


MAX_FINGER_RECORD_BYTES = 16 * 1024  # an ISO/IEC 19794-2 view holds at most 255 minutiae


def _finger_code(value: object) -> int:
    """ISO finger code 1..10 from an int, a digit string or a name like ``right_index``."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO finger code 1..10 or a name like 'right_index'")
    if isinstance(value, int):
        code = value
    elif isinstance(value, str) and value.strip().isdigit():
        code = int(value.strip())
    elif isinstance(value, str):
        name = re.sub(r"[\s-]+", "_", value.strip()).upper()
        try:
            code = int(FingerPosition[name])
        except KeyError:
            raise ValueError(
                f"unknown finger {value!r}; use an ISO code 1..10 or one of "
                + ", ".join(f.name.lower() for f in TEN_FINGERS)
            ) from None
    else:
        raise ValueError("must be an ISO finger code 1..10 or a name like 'right_index'")
    if not 1 <= code <= 10:
        raise ValueError(f"finger code must be 1..10, got {code}")
    return code


def _pick_view(record: FingerMinutiaeRecord, position: int) -> FingerView:
    """The record's view of finger ``position`` (a lone unknown-position view counts)."""
    view = record.view(position)
    if view is None and len(record.views) == 1 and record.views[0].position == 0:
        only = record.views[0]
        view = FingerView(
            position=FingerPosition(position), minutiae=only.minutiae, quality=only.quality,
            view_number=only.view_number, impression_type=only.impression_type,
            extended_data=only.extended_data,
        )
    if view is None:
        raise ValueError(f"record holds no view of finger {position}")
    if not view.minutiae:
        raise ValueError(
            f"record has no minutiae for finger {position}; list a finger that cannot be "
            "captured in missing_biometrics instead"
        )
    return view


class FingerCapture(BaseModel):
    """One finger's minutiae: an ISO/IEC 19794-2:2005 finger minutiae record, base64.

    The record must hold a view of ``position`` (or a single view of unknown position, taken
    as ``position``) with at least one minutia; only that view is kept. A finger that could
    not be captured goes in ``missing_biometrics`` as ``finger:<code>`` instead.
    """

    model_config = ConfigDict(extra="forbid")
    position: Annotated[int, WithJsonSchema({
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": 10},
            {"type": "string", "enum": [f.name.lower() for f in TEN_FINGERS]},
        ],
    })] = Field(
        examples=[2],
        description="ISO/IEC 19794-2 finger code 1..10 (1 right thumb … 5 right little, "
        "6 left thumb … 10 left little) or its name, e.g. `right_index`.",
    )
    record: str = Field(
        min_length=1, max_length=MAX_FINGER_RECORD_BYTES * 4 // 3 + 4,
        description="Base64 of an ISO/IEC 19794-2:2005 finger minutiae record (`FMR`).",
    )

    @field_validator("position", mode="before")
    @classmethod
    def _position(cls, v: object) -> int:
        return _finger_code(v)

    @field_validator("record")
    @classmethod
    def _iso_record(cls, v: str, info: ValidationInfo) -> str:
        try:
            raw = base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("must be base64") from exc
        try:
            record = decode_record(raw)
        except FingerTemplateError as exc:
            raise ValueError(f"not a valid ISO/IEC 19794-2:2005 record: {exc.message}") from exc
        position = info.data.get("position")
        if position is not None:
            _pick_view(record, position)
        return v

    def view(self) -> FingerView:
        """The view of this finger (its position set to ``position``)."""
        return self.parsed()[0]

    def stored_record(self) -> bytes:
        """A single-view ISO record of this finger (what is sealed and stored)."""
        return self.parsed()[1]

    def parsed(self) -> tuple[FingerView, bytes]:
        """The view and the single-view ISO record to store, decoding the record once."""
        record = decode_record(base64.b64decode(self.record))
        view = _pick_view(record, self.position)
        if len(record.views) == 1 and record.views[0] is view:
            return view, base64.b64decode(self.record)  # already what is stored
        return view, encode_record(FingerMinutiaeRecord(
            views=(view,), image_width=record.image_width,
            image_height=record.image_height, resolution_x=record.resolution_x,
            resolution_y=record.resolution_y,
            equipment_certification=record.equipment_certification,
            equipment_id=record.equipment_id,
        ))


def _distinct(fingers: list[FingerCapture]) -> list[FingerCapture]:
    seen: set[int] = set()
    for f in fingers:
        if f.position in seen:
            raise ValueError(f"finger {f.position} is given twice")
        seen.add(f.position)
    return fingers


class MissingBiometric(BaseModel):
    """A biometric that could not be captured (e.g. finger 7 amputated)."""

    model_config = ConfigDict(extra="forbid")
    modality: str = Field(pattern=r"^(face|finger:(10|[1-9]))$", examples=["finger:7"])
    reason: Literal["amputated", "unreadable", "bandaged", "refused", "other"]
    note: str = Field(default="", max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    given_name: LatinName
    family_name: LatinName
    father_name: str = Field(default="", max_length=100)
    given_name_ar: ArabicName = ""
    family_name_ar: ArabicName = ""
    father_name_ar: ArabicName = ""
    date_of_birth: date = Field(
        description="For precision `year`, any day of that year; it is stored as 1 January."
    )
    dob_precision: DobPrecision = DobPrecision.EXACT
    sex: Sex
    nationality: str = Field(pattern=r"^[A-Z]{3}$", examples=["SYR"])
    relationship_to_head: Literal["head", "spouse", "child", "parent", "sibling", "other"]
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    face: FaceCapture | None = Field(
        default=None, description="Required unless `biometrics_refused_reason` is given, or "
        "`fingers` are given and `missing_biometrics` lists the face (`modality: face`) with "
        "its reason: such a person is deduplicated by fingerprints and always adjudicated.",
    )
    biometrics_refused_reason: str | None = Field(
        default=None, min_length=3, max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$",
        description="Why no biometrics were captured (refusal, medical, …). The person is "
        "enrolled on the alternative path: biographic dedup and mandatory adjudication.",
    )
    fingers: list[FingerCapture] = Field(
        default_factory=list, max_length=10,
        description="Fingerprints (ISO/IEC 19794-2 minutiae records), one per finger "
        "position; matched in the second stage of deduplication.",
    )
    missing_biometrics: list[MissingBiometric] = Field(
        default_factory=list, max_length=11,
        description="Biometrics that could not be captured, each with a reason.",
    )

    @field_validator("fingers")
    @classmethod
    def _distinct_fingers(cls, v: list[FingerCapture]) -> list[FingerCapture]:
        return _distinct(v)

    @field_validator("missing_biometrics")
    @classmethod
    def _not_both(cls, v: list[MissingBiometric], info: ValidationInfo) -> list[MissingBiometric]:
        present = {f"finger:{f.position}" for f in info.data.get("fingers", [])}
        for m in v:
            if m.modality in present:
                raise ValueError(f"{m.modality} is both captured (fingers) and listed as missing")
            if m.modality == "face" and info.data.get("face") is not None:
                raise ValueError("face is both captured (face) and listed as missing")
        return v

    @model_validator(mode="after")
    def _face_or_reason(self) -> PersonCreate:
        face_missing = any(m.modality == "face" for m in self.missing_biometrics)
        if self.face is None and not self.biometrics_refused_reason:
            if not self.fingers:
                raise ValueError(
                    "face is required unless biometrics_refused_reason is given, or fingers "
                    "are given and missing_biometrics lists the face with its reason"
                )
            if not face_missing:
                raise ValueError(
                    "no face given: to enrol on fingerprints alone, list the face in "
                    "missing_biometrics (modality 'face') with its reason"
                )
        if self.face is not None and self.biometrics_refused_reason:
            raise ValueError("give either face or biometrics_refused_reason, not both")
        if self.fingers and self.biometrics_refused_reason:
            raise ValueError("give either fingers or biometrics_refused_reason, not both")
        return self

    @field_validator("given_name", "family_name")
    @classmethod
    def _latin(cls, v: str) -> str:
        if not _LATIN_NAME.match(v):
            raise ValueError("must be written in Latin script")
        return v

    @field_validator("father_name")
    @classmethod
    def _latin_optional(cls, v: str) -> str:
        if v and not _LATIN_NAME.match(v):
            raise ValueError("must be written in Latin script")
        return v

    @field_validator("given_name_ar", "family_name_ar", "father_name_ar")
    @classmethod
    def _arabic(cls, v: str) -> str:
        if not _ARABIC_OR_EMPTY.match(v):
            raise ValueError("must be written in Arabic script")
        return v

    @field_validator("date_of_birth")
    @classmethod
    def _not_future(cls, v: date) -> date:
        if v > date.today():
            raise ValueError("date of birth is in the future")
        if v.year < 1900:
            raise ValueError("date of birth is before 1900")
        return v


_PLAIN = r"^[^\x00-\x1f\x7f]+$"  # no control characters (PostgreSQL refuses NUL in text)


class HouseholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    province: str = Field(min_length=1, max_length=80, pattern=_PLAIN)
    district: str = Field(min_length=1, max_length=80, pattern=_PLAIN)
    site: str = Field(default="central", min_length=1, max_length=80, pattern=_PLAIN)
    station: str = Field(default="web", min_length=1, max_length=80, pattern=_PLAIN)
    members: list[PersonCreate] = Field(min_length=1, max_length=30)
    request_adjudication: bool = Field(
        default=False,
        description="Send members matching an existing identity to an adjudicator instead of "
        "refusing the submission (e.g. the person says they are a twin).",
    )

    @model_validator(mode="after")
    def _one_head(self) -> HouseholdCreate:
        heads = sum(1 for m in self.members if m.relationship_to_head == "head")
        if heads != 1:
            raise ValueError("a household has exactly one member with relationship_to_head 'head'")
        return self


RecaptureReason = Literal["renewal", "quality", "appearance_changed", "previously_missing",
                          "other"]


class BiometricsUpdate(BaseModel):
    """A fresh capture of an enrolled person's face and/or fingers (docs/recapture.md).

    Accepted only when it verifies against what is already enrolled (the same rules that call
    two records the same person at enrolment); then stored beside the earlier captures. A person
    with no biometrics yet (imported, or refused at enrolment) gets a first capture instead:
    searched against everyone, stored, adjudicated when it resembles someone."""

    model_config = ConfigDict(extra="forbid")
    reason: RecaptureReason = Field(description="Why the person is captured again.",
                                    examples=["renewal"])
    note: str = Field(default="", max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]*$")
    face: FaceCapture | None = Field(default=None, description="A new face capture.")
    fingers: list[FingerCapture] = Field(
        default_factory=list, max_length=10,
        description="New fingerprints, one per position (ISO/IEC 19794-2 records).",
    )
    request_adjudication: bool = Field(
        default=False, description="If the capture does not verify, hold it for an "
        "adjudicator (a `recapture` case) instead of refusing it; nothing is stored until "
        "the case accepts it (docs/recapture.md).")

    @field_validator("fingers")
    @classmethod
    def _distinct_fingers(cls, v: list[FingerCapture]) -> list[FingerCapture]:
        return _distinct(v)

    @model_validator(mode="after")
    def _something(self) -> BiometricsUpdate:
        if self.face is None and not self.fingers:
            raise ValueError("give a face, fingers or both")
        return self


class RecaptureResult(BaseModel):
    """A capture that was stored (a re-capture that verified, or a person's first capture) or
    held for an adjudicator."""

    person_id: uuid.UUID
    first_capture: bool = Field(
        default=False, description="The person had no biometrics: nothing to verify against, "
        "so the capture was searched against everyone instead (docs/recapture.md).")
    held: bool = Field(
        default=False, description="The capture did not verify and, as asked "
        "(`request_adjudication`), waits for an adjudicator in the `recapture` case "
        "`case_id`: nothing is stored yet (`stored` is empty).")
    verified_by: Literal["face", "fused"] | None = Field(
        description="The rule that matched the new capture to the enrolled one: the face "
        "cosine alone, or face and fingers fused (docs/fusion.md); null for a first capture.")
    face_score: float | None = Field(description="New face against the enrolled face(s).")
    finger_llr: float | None = Field(description="Finger evidence (log-likelihood ratio).")
    fingers_compared: int
    stored: list[str] = Field(description="Modalities stored: face, photo, finger:N.")
    exceptions_cleared: list[str] = Field(
        description="Recorded exceptions (e.g. finger:7 unreadable) the new capture replaces.")
    case_id: uuid.UUID | None = Field(
        description="The adjudication case opened, if any: `recheck` when a re-capture "
        "resembles someone else enough to be looked at; `recapture` for a held capture; "
        "`first_capture` (or "
        "`face_exception`, fingers without a face) for a first capture.")
    version: int = Field(description="The person record's version after the capture.")
    card_to_reissue: str | None = Field(
        default=None, description="Number of the person's active card when it now carries an "
        "older face than the one just stored (or none): re-issue it with reason `update` so "
        "checkpoints compare against the new face.")
    status: str = Field(description="The person's status after the capture: a first capture "
                        "of an imported person makes it `active`, or `pending_adjudication` "
                        "while a case is open.")


class CandidatePublic(BaseModel):
    person_id: uuid.UUID | None = Field(
        description="Existing identity, or the new record of another member of the same "
        "submission (`member_no` set); null when that member was not created."
    )
    member_no: int | None = None
    score: float = Field(
        description="Face cosine for biometric candidates (0 when no face was compared), "
        "biographic similarity for biographic ones."
    )
    source: Literal["face", "biographic"] = "face"
    face_score: float | None = Field(default=None, description="Face cosine similarity.")
    finger_llr: float | None = Field(
        default=None,
        description="Fingerprint evidence: sum of the compared fingers' log-likelihood ratios "
        "(null when no finger could be compared).",
    )
    fingers_compared: int = Field(default=0, description="Finger positions compared.")
    fused_llr: float | None = Field(
        default=None, description="Face + finger evidence (log-likelihood ratio, docs/fusion.md)."
    )
    rule: Literal["face", "fused"] | None = Field(
        default=None,
        description="Which thresholds judged this pair: `fused` when fingers were compared, "
        "`face` otherwise.",
    )
    at_match_threshold: bool = Field(
        default=False,
        description="The pair reached the duplicate threshold of its rule (an adjudicator "
        "calling it \"different\" needs a second adjudicator).",
    )
    via: Literal["face", "finger", "both"] | None = Field(
        default=None,
        description="Biometric candidates: which first stage proposed the pair — the face "
        "search, the fingerprint pre-filter, or both (docs/fusion.md).",
    )


class MemberOutcome(BaseModel):
    member_no: int
    person_id: uuid.UUID | None
    outcome: Literal["no_match", "duplicate", "adjudicate"]
    candidates: list[CandidatePublic]


class EnrolmentResult(BaseModel):
    outcome: Literal["no_match", "duplicate", "adjudicate"]
    household_id: uuid.UUID | None
    registration_number: str | None
    members: list[MemberOutcome]


class CardPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    card_number: str
    status: str
    issued_at: datetime
    expires_at: datetime
    kid: str


class CardIssued(CardPublic):
    mrz: list[str]
    qr: str


class PersonPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    household_id: uuid.UUID
    registration_number: str
    member_no: int
    relationship_to_head: str
    given_name: str
    family_name: str
    father_name: str
    given_name_ar: str
    family_name_ar: str
    father_name_ar: str
    date_of_birth: date
    dob_precision: str
    sex: str
    nationality: str
    province: str
    district: str
    phone: str | None
    status: str
    created_at: datetime
    cards: list[CardPublic] = []


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    qr: str = Field(min_length=1, max_length=8000, examples=["SND1:6BF..."])
    at: datetime | None = Field(default=None, description="Verify as of this instant.")


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    roles: list[str]
