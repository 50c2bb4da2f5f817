"""RFC 9457 problem details: the single translation of errors into HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sanad.errors import InvalidInput, SanadError

log = logging.getLogger("sanad.api")
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://sanad.dev/problems/"


def problem(status: int, code: str, title: str, detail: str, **extensions: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json (never a bare 500)."""

    @app.exception_handler(SanadError)
    async def _sanad(_: Request, exc: SanadError) -> JSONResponse:
        ext: dict[str, Any] = {}
        if isinstance(exc, InvalidInput) and exc.field:
            ext["errors"] = [{"field": exc.field, "message": exc.message}]
        title = type(exc).__doc__ or exc.code
        return problem(exc.status, exc.code, title.strip().split("\n")[0], exc.message, **ext)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "validation_error", "Request validation failed", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "authentication_failed",
                403: "forbidden"}.get(exc.status_code, "http_error")
        resp = problem(exc.status_code, code, str(exc.detail), str(exc.detail))
        if exc.headers:
            resp.headers.update(exc.headers)
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # A bug: log it with the traceback server-side, never leak it to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "Internal error", "an unexpected error occurred")
