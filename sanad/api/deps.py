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

import hashlib
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from sanad.credentials.status import StatusList
from sanad.errors import AuthenticationFailed, Forbidden, RateLimited
from sanad.registry.access_models import ApiKey
from sanad.registry.db import transaction
from sanad.registry.models import Role
from sanad.registry.runtime import Registry
from sanad.registry.status_list import StatusCache
from sanad.registry.users import API_KEY_PREFIX, api_key_for_secret, user_for_token
from sanad.registry.verification_audit import VerificationAuditLog, VerificationEvent

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


async def get_registry(request: Request) -> Registry:
    # `async`, like every dependency that does no I/O: a plain `def` dependency costs a
    # thread-pool round trip per request (docs/benchmarks-api.md).
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
        settings = request.app.state.registry.settings
        limiter = TokenBucket(per_minute=settings.api_rate_per_minute,
                              burst=settings.api_rate_burst)
        request.app.state.rate_limiter = limiter
    return limiter


class ApiKeyCache:
    """API keys already checked against the database, for at most `ttl` seconds.

    Systems call with the same key thousands of times a minute; looking it up costs a database
    transaction per request. Entries are keyed by a BLAKE2b of the secret under a random
    per-process key (the secret itself is never held), and only keys that verified are cached,
    so the cache never grows beyond the live keys. Any commit in this process that creates,
    changes or deletes an `ApiKey` (a revocation) empties it at once (`watch`); another process
    (a second worker, the CLI) revoking a key is seen here within `ttl` seconds — the
    documented bound (`api_key_cache_seconds`, 0 turns the cache off).
    """

    def __init__(self, *, ttl: float) -> None:
        self.ttl = ttl
        self._salt = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        self.generation = 0  # bumped by `clear`: a lookup that raced a revocation is not kept

    def _digest(self, secret: str) -> bytes:
        return hashlib.blake2b(secret.encode(), key=self._salt, digest_size=32).digest()

    def get(self, secret: str) -> Principal | None:
        digest = self._digest(secret)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(digest, None)
            return None
        return entry[1]

    def put(self, secret: str, principal: Principal, *, generation: int) -> None:
        """Keep `principal`, read from the database when `generation` was current."""
        if self.ttl > 0 and generation == self.generation:
            self._entries[self._digest(secret)] = (time.monotonic() + self.ttl, principal)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Empty the cache after any commit (through `sessions`) that touched an API key."""
        flag = "sanad_api_keys_changed"

        def after_flush(session: Session, _ctx: Any) -> None:
            if any(isinstance(o, ApiKey)
                   for o in (*session.new, *session.dirty, *session.deleted)):
                session.info[flag] = True

        def after_bulk(state: Any) -> None:  # update()/delete() statements on api_keys
            if state.is_update or state.is_delete:
                mapper = state.bind_mapper
                if mapper is not None and mapper.class_ is ApiKey:
                    state.session.info[flag] = True

        # A flag left by a rolled-back transaction only costs one needless refresh later.
        def after_commit(session: Session) -> None:
            if session.info.pop(flag, False):
                self.clear()

        event.listen(sessions, "after_flush", after_flush)
        event.listen(sessions, "do_orm_execute", after_bulk)
        event.listen(sessions, "after_commit", after_commit)


_Cache = TypeVar("_Cache", ApiKeyCache, StatusCache)


def _app_cache(request: Request, name: str, kind: type[_Cache]) -> _Cache:
    """The app's cache `name`; an app not built by create_app gets a disabled one (ttl 0):
    no caching, same answers."""
    cache: _Cache | None = getattr(request.app.state, name, None)
    if cache is None:
        cache = kind(ttl=0)
        setattr(request.app.state, name, cache)
    return cache


def get_api_key_cache(request: Request) -> ApiKeyCache:
    return _app_cache(request, "api_key_cache", ApiKeyCache)


def get_status_cache(request: Request) -> StatusCache:
    return _app_cache(request, "status_cache", StatusCache)


async def current_status(request: Request, registry: Registry) -> StatusList:
    """The status list an online verification uses: from memory, or loaded off the loop."""
    cache = get_status_cache(request)
    status = cache.get()
    if status is None:
        status = await run_in_threadpool(
            cache.load, registry.sessions, settings=registry.settings, key=registry.issuer_key,
            trust=registry.trust_list,
        )
    return status


async def audit_verification(request: Request, event: VerificationEvent) -> None:
    """Hand one verification to the central audit log (queued, or written before answering)."""
    vlog: VerificationAuditLog | None = getattr(request.app.state, "verification_log", None)
    if vlog is None:
        registry: Registry = request.app.state.registry
        vlog = VerificationAuditLog(registry.sessions, batch_seconds=0, batch_max=1)
        request.app.state.verification_log = vlog
    if not vlog.add(event):
        await run_in_threadpool(vlog.write_now, event)


def _authenticate(registry: Registry, token: str, cache: ApiKeyCache | None = None) -> Principal:
    generation = cache.generation if cache is not None else 0
    with transaction(registry.sessions) as session:
        if token.startswith(API_KEY_PREFIX):
            key = api_key_for_secret(session, token)
            principal = Principal(f"key:{key.name}", frozenset(key.roles),
                                  rate_key=f"key:{key.id}", rate_per_minute=key.rate_per_minute)
            if cache is not None:
                cache.put(token, principal, generation=generation)
            return principal
        user = user_for_token(session, token)
        return Principal(user.username, frozenset(user.roles))


async def get_principal(
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
    cache = get_api_key_cache(request)
    principal = cache.get(token) if token.startswith(API_KEY_PREFIX) else None
    if principal is None:
        # The database lookup blocks: off the event loop.
        principal = await run_in_threadpool(_authenticate, registry, token, cache)
    get_limiter(request).take(principal.rate_key, per_minute=principal.rate_per_minute)
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


def _mark(fn: Callable[..., object], access: Access) -> None:
    fn.sanad_access = access  # type: ignore[attr-defined]  # read by the authz-matrix test


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that admits API callers holding at least one of `roles`."""
    if not roles:
        raise TypeError("require() needs at least one role; use `public` for open routes")
    allowed = frozenset(r.value for r in roles)

    async def check(principal: CurrentUser) -> Principal:
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
