"""The one app factory: `create_app(settings)` builds API + web on a shared `Registry`."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from sanad import __version__
from sanad.api import problems, security
from sanad.api.deps import ApiKeyCache
from sanad.api.routers import (
    adjudication,
    auth,
    cards,
    dashboard,
    exports,
    households,
    imports,
    persons,
    status,
    subscriptions,
    sync,
    users,
    verify,
)
from sanad.config import Settings
from sanad.registry.runtime import Registry, open_registry
from sanad.registry.status_list import StatusCache
from sanad.registry.verification_audit import VerificationAuditLog
from sanad.web import checkpoint as web_checkpoint
from sanad.web import routes as web_routes


def create_app(settings: Settings | None = None, *, registry: Registry | None = None) -> FastAPI:
    """Build the ASGI app. Tests pass a `registry`; `sanad serve` passes settings."""
    reg = registry or open_registry(settings or Settings())
    s = reg.settings
    # Per-process caches of the hot paths (docs/benchmarks-api.md), each dropped at once when
    # this process commits a change to what it holds.
    key_cache = ApiKeyCache(ttl=s.api_key_cache_seconds)
    key_cache.watch(reg.sessions)
    status_cache = StatusCache(ttl=s.status_cache_seconds)
    status_cache.watch(reg.sessions)
    verification_log = VerificationAuditLog(
        reg.sessions, batch_seconds=s.verify_audit_batch_seconds,
        batch_max=s.verify_audit_batch_max,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _gallery = reg.gallery  # load + catch up the index before the first request
        if registry is None:
            # A served process: move everything loaded so far (modules, the gallery's
            # Python objects, caches) out of the collector's reach, so full collections under
            # load only walk what requests allocate — they were the verify p99's spikes.
            gc.collect()
            gc.freeze()
        yield
        verification_log.close()  # queued verification events reach the audit log
        if registry is None:
            reg.close()

    app = FastAPI(
        title="sanad",
        version=__version__,
        summary="Refugee registration and smart identity cards",
        description="Enrol households with 1:N deduplication, issue cards with signed QR codes, "
        "verify them offline. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        docs_url="/docs",
    )
    app.state.registry = reg
    app.state.api_key_cache = key_cache
    app.state.status_cache = status_cache
    app.state.verification_log = verification_log
    problems.install(app)
    security.install(app)
    # Routes are matched in order: the hot paths (/verify, /healthz) first.
    for router in (verify.router, dashboard.router):
        app.include_router(router)
    for router in (auth.router, households.router, persons.router, cards.router):
        app.include_router(router)
    for router in (users.router, adjudication.router):
        app.include_router(router)
    for router in (sync.router, imports.router, exports.router, subscriptions.router):
        app.include_router(router)
    app.include_router(status.router)  # issue #4: status list, trust bundle
    app.include_router(web_checkpoint.router)  # issue #4: checkpoint page
    app.include_router(web_routes.router)
    web_routes.install(app)
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static"
    )
    return app
