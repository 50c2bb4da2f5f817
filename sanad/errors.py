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
