"""Settings from the environment (prefix ``SANAD_``).

Every tunable lives here, documented, so that no threshold is a magic number in code and
`docs/operations.md` can list them all (a test keeps that list complete).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime configuration; construct once and pass it down (no global state)."""

    model_config = SettingsConfigDict(env_prefix="SANAD_", extra="ignore")

    home: Path = Field(
        default=Path("./var"),
        description="Directory for the SQLite database, keys, card images and the gallery index.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default sqlite:///$SANAD_HOME/sanad.db. "
        "Production: postgresql+psycopg://user@host/db.",
    )
    dedup_match_threshold: float = Field(
        default=0.60,
        description="Face score at or above which an enrolment is a duplicate (never created).",
    )
    dedup_review_threshold: float = Field(
        default=0.45,
        description="Face score at or above which an enrolment goes to an adjudicator.",
    )
    dedup_candidates: int = Field(default=10, description="Candidates kept per 1:N search.")
    index_backend: str = Field(
        default="faiss-flat", description="Gallery index backend: exact | faiss-flat."
    )
    card_validity_days: int = Field(default=730, description="Validity of a card (2 years).")
    issuer: str = Field(default="UTO-RA", description="Issuer name in the card's `iss` claim.")
    issuing_state: str = Field(
        default="UTO", description="ICAO 3-letter code of the issuing state (MRZ)."
    )
    qr_prefix: str = Field(default="SND1:", description="Context prefix of sanad QR codes.")
    session_secret: str | None = Field(
        default=None,
        description="Secret for signing session cookies; default: generated into $SANAD_HOME/keys.",
    )
    template_key_file: Path | None = Field(
        default=None,
        description="File holding the key that encrypts biometric templates; "
        "default $SANAD_HOME/keys/template.key (outside the database).",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        if self.dedup_review_threshold > self.dedup_match_threshold:
            raise ValueError("SANAD_DEDUP_REVIEW_THRESHOLD must be <= SANAD_DEDUP_MATCH_THRESHOLD")
        return self

    @property
    def db_url(self) -> str:
        """The effective database URL."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home.resolve() / 'sanad.db'}"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def cards_dir(self) -> Path:
        return self.home / "cards"

    @property
    def index_path(self) -> Path:
        return self.home / "gallery"

    @property
    def template_key_path(self) -> Path:
        return self.template_key_file or self.keys_dir / "template.key"
