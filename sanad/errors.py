"""One error vocabulary for the whole product.

Every domain failure is a `SanadError` subclass carrying a stable machine `code` (used in API
problem bodies, CLI messages and tests) and an HTTP `status`. The API, the web UI and the CLI
each translate `SanadError` in exactly one place. Programming mistakes stay `TypeError` /
`ValueError` and are not caught.
"""

from __future__ import annotations


class SanadError(Exception):
    """Base of every domain error; `code` is a stable machine-readable identifier."""

    code: str = "sanad_error"
    status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(SanadError):
    """The requested record does not exist (or the caller may not know it exists)."""

    code = "not_found"
    status = 404


class InvalidInput(SanadError):
    """Input failed a domain rule; `field` names the offending field when there is one."""

    code = "invalid_input"
    status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DuplicateCandidate(SanadError):
    """Enrolment refused: a member matches an existing identity (no identity was created)."""

    code = "duplicate_candidate"
    status = 409


class NotInitialised(SanadError):
    """`sanad init` has not been run for this SANAD_HOME / database."""

    code = "not_initialised"
    status = 503


class AuthenticationFailed(SanadError):
    """Missing or wrong credentials."""

    code = "authentication_failed"
    status = 401


class Forbidden(SanadError):
    """Authenticated, but the caller's roles do not allow this action."""

    code = "forbidden"
    status = 403


class CardNotIssuable(SanadError):
    """A card cannot be issued for this person in its current state."""

    code = "card_not_issuable"
    status = 409


class AuditChainBroken(SanadError):
    """The audit log's hash chain does not verify."""

    code = "audit_chain_broken"
    status = 500


class PacketRejected(SanadError):
    """A sync packet failed decryption or signature checks, or came from an unknown station."""

    code = "packet_rejected"
    status = 422


class StationRevoked(SanadError):
    """The field-kit station's key has been revoked by the centre."""

    code = "station_revoked"
    status = 403


class SyncUnavailable(SanadError):
    """The centre could not be reached (or refused the upload); packets stay queued."""

    code = "sync_unavailable"
    status = 503


class SharingRefused(SanadError):
    """A record export is not allowed (agreement, approvals, consent or origin-country rule)."""

    code = "sharing_refused"
    status = 403


class Conflict(SanadError):
    """The request conflicts with the current state of the record."""

    code = "conflict"
    status = 409


class RateLimited(SanadError):
    """Too many requests from this key or user; retry after `retry_after` seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PreconditionRequired(SanadError):
    """An update must carry `If-Match` with the ETag last read (no lost updates)."""

    code = "precondition_required"
    status = 428


class PreconditionFailed(SanadError):
    """The record changed since it was read (`If-Match` does not match its ETag)."""

    code = "precondition_failed"
    status = 412


class IdempotencyKeyReused(SanadError):
    """An `Idempotency-Key` was sent again with a different request body."""

    code = "idempotency_key_reused"
    status = 422


class StatusChangeRefused(SanadError):
    """A status change does not apply to the record's current state."""

    code = "status_change_refused"
    status = 409


class IdempotencyInProgress(SanadError):
    """A request with this `Idempotency-Key` is still being processed; retry shortly."""

    code = "idempotency_in_progress"
    status = 409


class CardStateConflict(SanadError):
    """A card or print-job operation does not apply to its current state."""

    code = "card_state_conflict"
    status = 409


class QrTooLarge(SanadError):
    """The signed QR of a card would exceed the configured QR version budget."""

    code = "qr_too_large"
    status = 422


class CardRenderError(SanadError):
    """A card could not be rendered (missing font, unreadable photo)."""

    code = "card_render_failed"
    status = 500
