"""The one app factory: `create_app(settings)` builds API + web on a shared `Registry`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from sanad import __version__
from sanad.api import problems
from sanad.api.routers import auth, cards, households, persons, verify
from sanad.config import Settings
from sanad.registry.runtime import Registry, open_registry
from sanad.web import routes as web_routes


def create_app(settings: Settings | None = None, *, registry: Registry | None = None) -> FastAPI:
    """Build the ASGI app. Tests pass a `registry`; `sanad serve` passes settings."""
    reg = registry or open_registry(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _gallery = reg.gallery  # load + catch up the index before the first request
        yield
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
    problems.install(app)
    for router in (auth.router, households.router, persons.router, cards.router, verify.router):
        app.include_router(router)
    app.include_router(web_routes.router)
    app.mount(
        "/static", StaticFiles(directory=Path(__file__).parent / "web" / "static"), name="static"
    )
    return app
