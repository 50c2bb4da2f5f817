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

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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
        default=None, description="Required unless `biometrics_refused_reason` is given."
    )
    biometrics_refused_reason: str | None = Field(
        default=None, min_length=3, max_length=500, pattern=r"^[^\x00-\x08\x0b-\x1f\x7f]+$",
        description="Why no biometrics were captured (refusal, medical, …). The person is "
        "enrolled on the alternative path: biographic dedup and mandatory adjudication.",
    )
    missing_biometrics: list[MissingBiometric] = Field(
        default_factory=list, max_length=11,
        description="Biometrics that could not be captured, each with a reason.",
    )

    @model_validator(mode="after")
    def _face_or_reason(self) -> PersonCreate:
        if self.face is None and not self.biometrics_refused_reason:
            raise ValueError("face is required unless biometrics_refused_reason is given")
        if self.face is not None and self.biometrics_refused_reason:
            raise ValueError("give either face or biometrics_refused_reason, not both")
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


class CandidatePublic(BaseModel):
    person_id: uuid.UUID | None = Field(
        description="Existing identity, or the new record of another member of the same "
        "submission (`member_no` set); null when that member was not created."
    )
    member_no: int | None = None
    score: float
    source: Literal["face", "biographic"] = "face"


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
