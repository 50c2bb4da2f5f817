"""RFC 9457 problem details: the single translation of errors into HTTP responses."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sanad.errors import AuthenticationFailed, InvalidInput, RateLimited, SanadError

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
        resp = problem(exc.status, exc.code, title.strip().split("\n")[0], exc.message, **ext)
        if isinstance(exc, RateLimited):
            resp.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, AuthenticationFailed):
            resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

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


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "message": {"type": "string"}}},
        },
    },
}
_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid credentials",
    403: "The caller's roles do not allow this",
    404: "No such record",
    409: "Conflict with the record's current state",
    412: "If-Match does not match the current ETag (the record changed)",
    422: "Validation failed; `errors[].field` names each offending field",
    428: "If-Match is required",
    429: "Rate limit exceeded (see Retry-After)",
}
_EXAMPLES = {
    422: {"type": PROBLEM_BASE + "validation_error", "title": "Request validation failed",
          "status": 422, "detail": "members.0.given_name: must be written in Latin script",
          "code": "validation_error",
          "errors": [{"field": "members.0.given_name",
                      "message": "must be written in Latin script"}]},
    401: {"type": PROBLEM_BASE + "authentication_failed", "title": "Missing or wrong credentials.",
          "status": 401, "detail": "invalid or expired token", "code": "authentication_failed"},
    403: {"type": PROBLEM_BASE + "forbidden", "title": "Forbidden", "status": 403,
          "detail": "this action needs one of the roles: admin", "code": "forbidden"},
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem+json errors (with examples), plus 429."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*statuses, 429}):
        content: dict[str, Any] = {"schema": _PROBLEM_SCHEMA}
        if status in _EXAMPLES:
            content["example"] = _EXAMPLES[status]
        out[status] = {"description": _DESCRIPTIONS.get(status, "Error"),
                       "content": {PROBLEM_JSON: content}}
    return out
