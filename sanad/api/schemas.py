"""Request and response schemas of the officer API (users, keys, status changes, adjudication,
dashboard). Enrolment and person schemas live in `sanad.registry.schemas`."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sanad.registry.models import DobPrecision, Role
from sanad.registry.schemas import _ARABIC_OR_EMPTY as ARABIC_OR_EMPTY
from sanad.registry.schemas import _LATIN_NAME as LATIN_NAME

# No control characters (NUL cannot even be stored by PostgreSQL); newlines and tabs are fine.
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Reason = Field(min_length=3, max_length=1000, pattern=NO_CONTROL,
               examples=["Death certificate 2026/118 seen"])


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.@-]+$",
                          examples=["amina.officer"])
    roles: list[Role] = Field(min_length=1, examples=[["registration_officer"]])


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    roles: list[Role] | None = Field(default=None, min_length=1)
    active: bool | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    username: str
    roles: list[str]
    active: bool
    failed_logins: int
    locked: bool
    created_at: datetime


class UserCreated(UserPublic):
    password: str = Field(description="One-time password, shown once.")


class UnlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Reason


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9 _.:@-]+$",
                      examples=["partner-sms-gateway"])
    roles: list[Role] = Field(min_length=1, examples=[["verifier"]])
    rate_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    prefix: str
    roles: list[str]
    rate_per_minute: int | None
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The secret (`sk_…`), shown once; send as X-API-Key.")


class PersonUpdate(BaseModel):
    """Biographic corrections; send `If-Match` with the ETag of your last GET."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    father_name: str | None = Field(default=None, max_length=100)
    given_name_ar: str | None = Field(default=None, max_length=100)
    family_name_ar: str | None = Field(default=None, max_length=100)
    father_name_ar: str | None = Field(default=None, max_length=100)
    date_of_birth: date | None = None
    dob_precision: DobPrecision | None = None
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")

    # The same script rules as at enrolment (PersonCreate), so a correction cannot smuggle in
    # what enrolment refuses.
    @field_validator("given_name", "family_name", "father_name")
    @classmethod
    def _latin(cls, v: str | None) -> str | None:
        if v and not LATIN_NAME.match(v):
            raise ValueError("must be written in Latin script")
        return v

    @field_validator("given_name_ar", "family_name_ar", "father_name_ar")
    @classmethod
    def _arabic(cls, v: str | None) -> str | None:
        if v and not ARABIC_OR_EMPTY.match(v):
            raise ValueError("must be written in Arabic script")
        return v

    @field_validator("date_of_birth")
    @classmethod
    def _past(cls, v: date | None) -> date | None:
        if v is not None and (v > date.today() or v.year < 1900):
            raise ValueError("date of birth must be between 1900 and today")
        return v


class DeathRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Reason
    new_head_id: uuid.UUID | None = Field(
        default=None, description="Required when the deceased heads a household with others."
    )


class ReasonRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Reason


class HeadChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_head_id: uuid.UUID
    reason: str = Reason


class StatusChangePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    household_id: uuid.UUID
    person_id: uuid.UUID
    kind: Literal["deceased", "reactivated", "head_changed"]
    before: dict[str, str]
    after: dict[str, str]
    reason: str
    actor: str
    at: datetime
    reverts: uuid.UUID | None
    reverted_by: uuid.UUID | None


class HouseholdPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    registration_number: str
    province: str
    district: str
    created_at: datetime
    head_id: uuid.UUID | None
    member_ids: list[uuid.UUID]


class CapturedFingerPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    position: int = Field(description="ISO/IEC 19794-2 finger code 1..10.", examples=[7])
    name: str = Field(examples=["left_index"])
    quality: float = Field(description="Capture quality, 0..1.")
    captured_at: datetime


class CaptureExceptionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    modality: str = Field(description="`face`, `finger:<code>`, or `all` for a refusal of "
                          "every biometric.", examples=["finger:7"])
    reason: str = Field(examples=["amputated"])
    note: str
    recorded_at: datetime


class BiometricsPublic(BaseModel):
    """What was captured for a person and what could not be: metadata only, never a template."""

    model_config = ConfigDict(from_attributes=True)
    person_id: uuid.UUID
    face: bool = Field(description="A face template is on record.")
    face_quality: float | None
    face_captured_at: datetime | None
    photo: bool = Field(description="An enrolment portrait is on record (for the card).")
    fingers: list[CapturedFingerPublic]
    exceptions: list[CaptureExceptionPublic] = Field(
        description="Biometrics recorded as not capturable, with the reason, oldest first.")
    refused_reason: str | None = Field(
        description="Why the person was enrolled without biometrics, when they were.")


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    seq: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    details: dict[str, object]
    hash: str


class CaseSummaryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    person_id: uuid.UUID
    person_name: str
    kind: str
    status: str
    best_score: float | None
    needs_second: bool
    created_at: datetime
    best_fused_llr: float | None = Field(
        default=None, description="Strongest fused face + fingerprint evidence (log-likelihood "
        "ratio) among the candidates; null when no candidate pair compared fingers.")


class CandidateViewPublic(BaseModel):
    person_id: uuid.UUID | None
    registration_number: str | None
    score: float
    source: str
    member_no: int | None
    differences: list[tuple[str, str, str]] = Field(
        description="(field, this enrolment's value, the candidate's value)"
    )
    face_score: float | None = Field(default=None, description="Face cosine of the pair.")
    finger_llr: float | None = Field(
        default=None, description="Fingerprint evidence (log-likelihood ratio) of the pair.")
    fingers_compared: int = Field(default=0, description="Fingers compared for the pair.")
    fused_llr: float | None = Field(
        default=None, description="Fused face + fingerprint evidence (docs/fusion.md).")
    rule: str | None = Field(
        default=None, description="`fused` (fingers compared) or `face` (face thresholds).")
    via: str | None = Field(
        default=None, description="Which first stage proposed the candidate: `face`, "
        "`finger` (the fingerprint pre-filter) or `both`.")


class HeldCapturePublic(BaseModel):
    """What a `recapture` case holds (metadata; the photo is
    `GET /adjudication/cases/{id}/held-photo`)."""

    officer: str = Field(description="Who captured it.")
    held_at: datetime
    reason: str = Field(description="The officer's reason for the capture.")
    note: str
    offered: list[str] = Field(description="Modalities captured: face, finger:N.")
    why: str = Field(description="Why it did not verify.")
    face_score: float | None = Field(description="Its face against the enrolled face(s).")
    finger_llr: float | None = Field(description="Its fingers against the enrolled ones.")
    fingers_compared: int
    photo: bool = Field(description="A photo was captured (see held-photo).")


class CaseDetailPublic(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    status: str
    kind: str
    needs_second: bool
    first_decision: str | None
    first_decided_by: str | None
    decision: str | None
    reason: str | None
    decided_by: str | None
    candidates: list[CandidateViewPublic]
    held: HeldCapturePublic | None = Field(
        default=None, description="For an undecided `recapture` case: the capture it holds.")


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    verdict: Literal["same_person", "different_person"]
    reason: str = Reason
    link_to: uuid.UUID | None = Field(
        default=None, description="For `same_person`: which candidate (default: the best)."
    )


class Count(BaseModel):
    key: str
    count: int


class DashboardPublic(BaseModel):
    persons: int
    households: int
    open_cases: int
    cards_to_reissue: int = Field(description="Active cards carrying an earlier face than the "
                                  "holder's newest capture (`GET /cards/reissue-due`).")
    by_province: list[Count]
    by_district: list[Count]
    by_sex: list[Count]
    by_age: list[Count]
    by_status: list[Count]
    enrolments_per_day: list[Count]
    dedup_outcomes: list[Count]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
