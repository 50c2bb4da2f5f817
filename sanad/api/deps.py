"""Annotated dependencies: the registry, the caller (user token, session cookie or API key),
rate limits and role checks.

Every route declares who may call it with exactly one of:

- ``require(Role.X, ...)`` for the API (401 without credentials, 403 without a listed role);
- ``require_page(Role.X, ...)`` for web pages (redirect to /login, or a 403 page);
- ``public`` for the few routes anyone may call (login, health).

Each declaration carries an `Access` record that the authorization-matrix test reads from
`app.routes`, so a new route without a declaration fails the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from sanad.errors import AuthenticationFailed, Forbidden, RateLimited
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.users import API_KEY_PREFIX, api_key_for_secret, user_for_token

SESSION_COOKIE = "sanad_session"
_bearer = HTTPBearer(auto_error=False, description="A user token from POST /auth/token, "
                     "or an API key (`sk_…`).")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="A role-scoped API key for another system.")


@dataclass(frozen=True)
class Access:
    """Who may call a route: `roles` (any one suffices), or anyone when `public`."""

    roles: frozenset[str]
    public: bool = False
    page: bool = False


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]


class Principal:
    """The authenticated caller: a username (``key:<name>`` for an API key) and its roles."""

    def __init__(
        self, username: str, roles: frozenset[str], *, rate_key: str = "",
        rate_per_minute: int | None = None,
    ) -> None:
        self.username = username
        self.roles = roles
        self.rate_key = rate_key or f"user:{username}"
        self.rate_per_minute = rate_per_minute


class TokenBucket:
    """Per-caller token buckets, in process memory.

    Why in-process: one API process per core behind a load balancer gives each process its own
    budget, so the effective limit is `rate × processes`; that is documented (docs/api.md) and
    good enough to stop a runaway client. A shared limit would need Redis or the database.
    """

    def __init__(self, *, per_minute: int, burst: int) -> None:
        self.per_minute = per_minute
        self.burst = burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, *, per_minute: int | None = None) -> None:
        """Spend one token for `key` or raise `RateLimited` with the seconds to wait."""
        rate = (per_minute or self.per_minute) / 60.0
        capacity = float(max(self.burst, 1))
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._state[key] = (tokens, now)
                wait = max(1, int((1.0 - tokens) / rate + 0.999))
                raise RateLimited(f"rate limit exceeded; retry in {wait} s", retry_after=wait)
            self._state[key] = (tokens - 1.0, now)


def get_limiter(request: Request) -> TokenBucket:
    limiter: TokenBucket | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        settings = get_registry(request).settings
        limiter = TokenBucket(per_minute=settings.api_rate_per_minute,
                              burst=settings.api_rate_burst)
        request.app.state.rate_limiter = limiter
    return limiter


def _authenticate(registry: Registry, token: str) -> Principal:
    with transaction(registry.sessions) as session:
        if token.startswith(API_KEY_PREFIX):
            key = api_key_for_secret(session, token)
            return Principal(f"key:{key.name}", frozenset(key.roles), rate_key=f"key:{key.id}",
                             rate_per_minute=key.rate_per_minute)
        user = user_for_token(session, token)
        return Principal(user.username, frozenset(user.roles))


def get_principal(
    registry: RegistryDep,
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    token = api_key or (creds.credentials if creds is not None else None)
    if token is None and request.method in {"GET", "HEAD"}:
        # The web UI's session cookie works for safe API reads; writes need a bearer token
        # (so a cross-site form can never write through the cookie).
        token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthenticationFailed("bearer token or X-API-Key required (POST /auth/token)")
    principal = _authenticate(registry, token)
    get_limiter(request).take(principal.rate_key, per_minute=principal.rate_per_minute)
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


def _mark(fn: Callable[..., object], access: Access) -> None:
    fn.sanad_access = access  # type: ignore[attr-defined]  # read by the authz-matrix test


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that admits API callers holding at least one of `roles`."""
    if not roles:
        raise TypeError("require() needs at least one role; use `public` for open routes")
    allowed = frozenset(r.value for r in roles)

    def check(principal: CurrentUser) -> Principal:
        if not principal.roles & allowed:
            raise Forbidden(f"this action needs one of the roles: {', '.join(sorted(allowed))}")
        return principal

    _mark(check, Access(allowed))
    return check


def public() -> None:
    """Declares a route open to anyone (login, health checks)."""


_mark(public, Access(frozenset(), public=True))
Public = Depends(public)
ALL_ROLES = tuple(Role)


# --- web pages ----------------------------------------------------------------------------


class PageAuthRequired(Exception):
    """No valid session cookie: the web handler redirects to /login."""


class PageForbidden(Exception):
    """Signed in without the role a page needs: the web handler shows a 403 page."""

    def __init__(self, roles: frozenset[str], username: str) -> None:
        super().__init__(", ".join(sorted(roles)))
        self.roles = roles
        self.username = username


def require_page(*roles: Role) -> Callable[[Request, Registry], Principal]:
    """A dependency for web pages: the session cookie's user, holding one of `roles`."""
    if not roles:
        raise TypeError("require_page() needs at least one role")
    allowed = frozenset(r.value for r in roles)

    def check(request: Request, registry: RegistryDep) -> Principal:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise PageAuthRequired()
        try:
            principal = _authenticate(registry, token)
        except AuthenticationFailed:
            raise PageAuthRequired() from None
        if not principal.roles & allowed:
            raise PageForbidden(allowed, principal.username)
        return principal

    _mark(check, Access(allowed, page=True))
    return check


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The ETag from the last GET (required on updates)."),
]
