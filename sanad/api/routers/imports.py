"""Bulk import jobs: submit a file (202 + job URL; the worker does the work), follow, report."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile

from sanad.api.deps import Principal, RegistryDep, require
from sanad.errors import InvalidInput
from sanad.registry import importer
from sanad.registry.db import transaction
from sanad.registry.models import Role

router = APIRouter(prefix="/imports", tags=["imports"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Reader = Annotated[Principal, Depends(require(Role.ADMIN, Role.AUDITOR))]
_CHUNK = 1 << 20


@router.post("", status_code=202,
             responses={202: {"description": "Queued; follow the `Location` URL."}})
async def submit(
    registry: RegistryDep, user: Admin, response: Response,
    file: Annotated[UploadFile, File(description="CSV or JSON Lines file")],
    mapping: Annotated[str, Form(description="The mapping document (JSON)")],
) -> dict[str, Any]:
    """Queue an import. The file is stored and `sanad worker` imports it in the background."""
    try:
        parsed = importer.Mapping.from_json(json.loads(mapping))
    except json.JSONDecodeError:
        raise InvalidInput("mapping is not JSON", field="mapping") from None
    upload_dir = registry.settings.import_upload_dir or registry.settings.home / "imports"
    upload_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = (file.filename or "upload").rsplit("/", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    path = upload_dir / f"{uuid.uuid4()}{suffix}"
    with path.open("wb") as fh:
        while chunk := await file.read(_CHUNK):
            fh.write(chunk)
    with transaction(registry.sessions) as session:
        job = importer.submit_job(session, path=path, mapping=parsed, actor=user.username)
        summary = importer.job_summary(session, job.id)
    response.headers["Location"] = f"/imports/{job.id}"
    return {**summary, "url": f"/imports/{job.id}"}


@router.get("/{job_id}")
def status(job_id: uuid.UUID, registry: RegistryDep, _user: Reader) -> dict[str, Any]:
    """Progress and counts of an import job."""
    with transaction(registry.sessions) as session:
        return importer.job_summary(session, job_id)


@router.get("/{job_id}/errors")
def errors(job_id: uuid.UUID, registry: RegistryDep, _user: Reader, limit: int = 1000,
           offset: int = 0) -> list[dict[str, Any]]:
    """The validation report: row, field, error (duplicates have field `*`)."""
    with transaction(registry.sessions) as session:
        return importer.job_errors(session, job_id, limit=min(limit, 10_000), offset=offset)
