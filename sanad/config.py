"""Settings from the environment (prefix ``SANAD_``).

Every tunable lives here, documented, so that no threshold is a magic number in code and
`docs/operations.md` can list them all (a test keeps that list complete).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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
        default=0.57,
        description="Face score at or above which an enrolment goes to an adjudicator "
        "(pairs without a finger compared). Default: face threshold at FPIR 1 % measured at "
        "1.45 M people (docs/benchmarks-accuracy.md); the former 0.45 flagged 93 % of new "
        "people's face-only searches there.",
    )
    dedup_candidates: int = Field(default=10, description="Candidates kept per 1:N search.")
    biographic_threshold: float = Field(
        default=0.85,
        description="Biographic similarity at or above which a registered person joins an "
        "adjudication case as a candidate (never decides a duplicate alone).",
    )
    index_backend: str = Field(
        default="faiss-flat",
        description="Gallery index backend: exact | faiss-flat | twostage | milvus "
        "(see docs/abis.md; twostage is the fast exhaustive search for large galleries).",
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

    # --- field kits, sync, imports, exports, events (issue #6) ---
    station_mode: bool = Field(
        default=False,
        description="Run as a field-kit station: enrolments are provisional and queued as "
        "signed, encrypted packets for the centre (`sanad kit init` prepares the home).",
    )
    sync_url: str | None = Field(
        default=None, description="Base URL of the central registry's API for `sanad sync`."
    )
    sync_token: str | None = Field(
        default=None,
        description="Bearer token of a central registration officer used by `sanad sync`.",
    )
    sync_batch_packets: int = Field(
        default=20, ge=1, le=500,
        description="Packets per upload request (each acknowledged separately; resumable).",
    )
    sync_timeout_seconds: float = Field(
        default=60.0, gt=0, description="HTTP timeout of one upload request."
    )
    worker_poll_seconds: float = Field(
        default=2.0, gt=0, description="How often `sanad worker` looks for due work when idle."
    )
    worker_lease_seconds: float = Field(
        default=120.0, gt=0,
        description="A claimed delivery or import job is re-claimable after this long if its "
        "worker died (at-least-once delivery).",
    )
    webhook_max_attempts: int = Field(
        default=8, ge=1, description="Delivery attempts before an event goes to the dead letters."
    )
    webhook_backoff_seconds: float = Field(
        default=5.0, gt=0,
        description="First retry delay; doubles per attempt (exponential backoff with jitter).",
    )
    webhook_backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="Ceiling of the retry delay."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="HTTP timeout of one webhook or SMS-gateway call."
    )
    notify_sender: str = Field(
        default="logging",
        description="Notification sender: `logging` (writes to the log) or `http-sms` "
        "(POSTs to SANAD_SMS_GATEWAY_URL).",
    )
    sms_gateway_url: str | None = Field(
        default=None, description="SMS gateway endpoint used by the `http-sms` sender."
    )
    sms_gateway_token: str | None = Field(
        default=None, description="Bearer token for the SMS gateway (never logged)."
    )
    import_batch_rows: int = Field(
        default=2000, ge=1, le=100_000,
        description="Rows per bulk-import batch (one transaction and one checkpoint each).",
    )
    import_upload_dir: Path | None = Field(
        default=None,
        description="Where files submitted through the import API are stored; "
        "default $SANAD_HOME/imports.",
    )
    outbox_retention_days: float = Field(
        default=30.0, gt=0,
        description="Delivered events (their payloads may hold phone numbers) are deleted "
        "from the outbox after this many days; dead letters are kept until requeued.",
    )
    export_min_cell: int = Field(
        default=10, ge=1,
        description="Aggregate export cells counting fewer people than this are suppressed.",
    )
    export_countries_of_origin: list[str] = Field(
        default_factory=list,
        description="ISO 3166 alpha-3 codes of countries of origin; record exports to their "
        "authorities are refused (JSON list, e.g. [\"SYR\"]).",
    )
    export_allow_origin_authorities: bool = Field(
        default=False,
        description="Override that permits exports to country-of-origin authorities "
        "(off by default; audited when used).",
    )

    # --- officer web application and REST API (issue #5) ---
    api_rate_per_minute: int = Field(
        default=1200, ge=1,
        description="Requests per minute allowed to one user or API key (token bucket, per "
        "process); an API key may carry its own rate.",
    )
    api_rate_burst: int = Field(
        default=120, ge=1, description="Token-bucket capacity: requests allowed in one burst."
    )
    api_key_cache_seconds: float = Field(
        default=10.0, ge=0,
        description="How long an API process reuses an API key it has checked (no database "
        "lookup per request). A key revoked through the same process stops working at once; "
        "one revoked elsewhere (another worker, the CLI) within this many seconds. 0: no cache.",
    )
    status_cache_seconds: float = Field(
        default=2.0, ge=0,
        description="How long `POST /verify` and the checkpoint page reuse the parsed status "
        "list (no transaction per verification). A revocation through the same process is "
        "seen at once; one made elsewhere within this many seconds. 0: no cache.",
    )
    verify_audit_batch_seconds: float = Field(
        default=0.5, ge=0,
        description="Online verifications (API, checkpoint page) are audited in batches written "
        "this often (one transaction per batch, same hash chain). 0: each verification is "
        "written in its own transaction before the answer is sent.",
    )
    verify_audit_batch_max: int = Field(
        default=500, ge=1,
        description="Queued verification audit events that trigger an immediate batch write.",
    )
    idempotency_retention_hours: float = Field(
        default=24.0, gt=0,
        description="How long the stored answer to a POST with an `Idempotency-Key` is kept; "
        "after that the key may be reused and `sanad worker` purges the record.",
    )
    web_trust_forwarded_proto: bool = Field(
        default=False,
        description="Behind a TLS-terminating proxy: trust `X-Forwarded-Proto: https` to mark "
        "session cookies Secure.",
    )

    # --- smart cards and offline verification (issue #4) ---
    qr_max_version: int = Field(
        default=25, ge=1, le=40,
        description="Largest QR version (at error-correction level M) a card may need; "
        "issuance fails with `qr_too_large` above it.",
    )
    status_max_age_hours: float = Field(
        default=168.0, gt=0,
        description="A checkpoint reports `status_stale` when its status list is older than this.",
    )
    status_resign_hours: float = Field(
        default=12.0, gt=0,
        description="The served status list is re-signed when the cached one is older than this "
        "(or after any revocation).",
    )
    verify_face_threshold: float = Field(
        default=0.50,
        description="Cosine score a checkpoint's 1:1 face check must reach "
        "(`face_mismatch` below).",
    )
    print_max_attempts: int = Field(
        default=3, ge=1, description="Failed print attempts before a print job is marked failed."
    )
    card_font_latin: Path = Field(
        default=Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        description="Font for Latin-script text on the card (Debian fonts-dejavu-core).",
    )
    card_font_arabic: Path = Field(
        default=Path("/usr/share/fonts/opentype/fonts-hosny-amiri/Amiri-Regular.ttf"),
        description="Font for Arabic-script names on the card (Debian fonts-hosny-amiri).",
    )
    card_font_mrz: Path = Field(
        default=Path("/usr/share/fonts/opentype/ocr-b/OCRB.otf"),
        description="OCR-B font for the card's MRZ (Debian fonts-ocr-b).",
    )

    # --- ABIS: gallery index and face model (issue #3) ---
    index_shortlist: int = Field(
        default=256, ge=16, le=16384,
        description="twostage index: candidates kept by the PQ fast-scan stage and re-ranked "
        "on int8 templates (more: higher mate recall, slower probes; 256 kept every mate at "
        "1.45 M in the benchmark).",
    )
    index_pq_subvectors: int = Field(
        default=0, ge=0, le=128,
        description="twostage index: 4-bit PQ sub-vectors of the fast-scan stage (0: dimension "
        "/ 2, i.e. 64 = 32 B per person for 128-d). 32 (16 B) scans ~1.7x faster — a bulk "
        "in-order deduplication of 1.45 M people in ~9 instead of ~15 min — but loses ~1.6 % "
        "of the look-alikes exact search finds near the review threshold at 1.45 M "
        "(docs/abis.md §6).",
    )
    index_batch_stage: Literal["auto", "pq", "matrix"] = Field(
        default="auto",
        description="twostage index: stage 1 of batches of 1,024 probes or more (`sanad abis "
        "sweep`, a bulk stream): pq (the fast-scan), matrix (exact bf16 products on the CPU's "
        "matrix engine; needs the accel extra, PyTorch) or auto (the faster of the two, "
        "measured at the first such batch after each training of a gallery of 65,536 or "
        "more; docs/abis.md §8).",
    )
    index_threads: int = Field(
        default=0, ge=0,
        description="twostage index: OpenMP threads of a batched scan (0: FAISS's default, one "
        "per core); single probes always scan on one thread.",
    )
    milvus_uri: str | None = Field(
        default=None,
        description="milvus backend: a Milvus server URI (http://host:19530) or a milvus-lite "
        "file; default $SANAD_HOME/gallery.milvus.db (milvus-lite, in-process).",
    )

    # --- fingerprints in enrolment: fused face + finger decision (issue #3) ---
    dedup_fused_match_threshold: float = Field(
        default=21.1,
        description="Fused face + fingerprint evidence (log-likelihood ratio, docs/fusion.md) "
        "at or above which an enrolment is a duplicate; used for candidate pairs with at least "
        "one finger compared (pairs without fingers keep the face thresholds). Default: the "
        "accuracy benchmark's threshold for 1.45 M people at FPIR 0.1 %.",
    )
    dedup_fused_review_threshold: float = Field(
        default=5.0,
        description="Fused evidence (log-likelihood ratio) at or above which an enrolment goes "
        "to an adjudicator (benchmark: threshold at FPIR 1 %, shifted for 1.45 M people).",
    )
    finger_cache_size: int = Field(
        default=4096, ge=0,
        description="Prepared (decoded, matcher-ready) gallery fingers kept in memory per "
        "process for the fingerprint second stage (~30-55 kB each: 4096 is at most ~220 MB); "
        "0 disables the cache.",
    )
    finger_prefilter_candidates: int = Field(
        default=10, ge=0, le=1000,
        description="Fingerprint pre-filter: people taken from the finger descriptor index "
        "(thumbs + index fingers) per enrolment search, joining the face candidates before "
        "the fingerprint second stage (docs/fusion.md); 0 disables the pre-filter and its "
        "index.",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        if self.dedup_review_threshold > self.dedup_match_threshold:
            raise ValueError("SANAD_DEDUP_REVIEW_THRESHOLD must be <= SANAD_DEDUP_MATCH_THRESHOLD")
        if self.dedup_fused_review_threshold > self.dedup_fused_match_threshold:
            raise ValueError(
                "SANAD_DEDUP_FUSED_REVIEW_THRESHOLD must be <= SANAD_DEDUP_FUSED_MATCH_THRESHOLD"
            )
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
    def finger_index_path(self) -> Path:
        """Directory of the fingerprint pre-filter index snapshot (beside the face one)."""
        return self.home / "gallery-fingers"

    @property
    def template_key_path(self) -> Path:
        return self.template_key_file or self.keys_dir / "template.key"
