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


class FaceCapture(BaseModel):
    """A face template from a capture device (base64 of little-endian float32)."""

    model_config = ConfigDict(extra="forbid")
    template: str = Field(description="Base64 of the float32 template vector.")
    quality: float = Field(ge=0.0, le=1.0, examples=[0.92])

    @field_validator("template")
    @classmethod
    def _base64(cls, v: str) -> str:
        try:
            base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("template must be base64") from exc
        return v

    def template_bytes(self) -> bytes:
        return base64.b64decode(self.template)


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
    face: FaceCapture

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


class HouseholdCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    province: str = Field(min_length=1, max_length=80)
    district: str = Field(min_length=1, max_length=80)
    site: str = Field(default="central", min_length=1, max_length=80)
    station: str = Field(default="web", min_length=1, max_length=80)
    members: list[PersonCreate] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _one_head(self) -> HouseholdCreate:
        heads = sum(1 for m in self.members if m.relationship_to_head == "head")
        if heads != 1:
            raise ValueError("a household has exactly one member with relationship_to_head 'head'")
        return self


class CandidatePublic(BaseModel):
    person_id: uuid.UUID | None = Field(
        description="Existing identity, or null for another member of the same submission."
    )
    member_no: int | None = None
    score: float


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
