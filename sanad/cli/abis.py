"""`sanad abis …`: the 1:N gallery index (rebuild from the database)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from sanad.cli._common import actor, err, group, print_json, registry

abis_app = group("abis", "The 1:N face gallery index.")


@abis_app.command("rebuild")
def rebuild(
    backend: Annotated[
        str | None,
        typer.Option(help="Index backend; default SANAD_INDEX_BACKEND."),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Templates read per database batch.")] = 20_000,
) -> None:
    """Rebuild the gallery index from the database and save it; prints a JSON report."""
    from sanad.abis.index import INDEX_KINDS
    from sanad.abis.rebuild import count_face_records, rebuild_finger_index, rebuild_index
    from sanad.errors import InvalidInput
    from sanad.registry.dbkey import database_key_path
    from sanad.registry.finger_gallery import (
        count_finger_people,
        finger_index_kind,
        finger_index_options,
    )

    reg = registry()
    try:
        s = reg.settings
        kind = backend or s.index_backend
        if kind not in INDEX_KINDS:
            raise InvalidInput(
                f"unknown index backend {kind!r}; known: {', '.join(INDEX_KINDS)}",
                field="backend",
            )
        options: dict[str, Any] = {}
        if kind == "twostage":
            options.update(shortlist=s.index_shortlist, subvectors=s.index_pq_subvectors,
                           threads=s.index_threads, batch_stage=s.index_batch_stage)
        elif kind == "milvus" and s.milvus_uri:
            options["uri"] = s.milvus_uri
        fingers = s.finger_prefilter_candidates > 0
        finger_kind = finger_index_kind(kind)
        with reg.sessions() as session:
            total = count_face_records(session)
            finger_total = count_finger_people(session) if fingers else 0
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err,
        ) as progress:
            task = progress.add_task(f"rebuilding {kind} index", total=total)
            _, report = rebuild_index(
                reg.sessions, sealer=reg.sealer, kind=kind, path=s.index_path, actor=actor(),
                batch=batch, progress=lambda n: progress.advance(task, n), **options,
            )
            finger_report = None
            if fingers:
                # The fingerprint pre-filter index (docs/fusion.md): descriptor space refitted.
                ftask = progress.add_task(f"rebuilding {finger_kind} finger index",
                                          total=finger_total)
                finger_options = finger_index_options(finger_kind, s.index_shortlist)
                _, finger_report = rebuild_finger_index(
                    reg.sessions, sealer=reg.sealer, kind=finger_kind,
                    # No plaintext snapshot beside an encrypted (field-kit) database.
                    path=None if database_key_path(s).exists() else s.finger_index_path,
                    actor=actor(),
                    progress=lambda n: progress.advance(ftask, n), **finger_options,
                )
    finally:
        reg.engine.dispose()
    out = report.to_json()
    out["fingers"] = finger_report.to_json() if finger_report is not None else None
    print_json(out)


@abis_app.command("sweep")
def sweep(
    batch: Annotated[
        int, typer.Option(min=1, help="Faces searched per batch (1,024+ can use the matrix "
                          "engine on a large gallery).")
    ] = 2048,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Screen only: count who would be re-checked, "
                           "open no case.")
    ] = False,
) -> None:
    """Search every active person's face against the whole gallery again and open `recheck`
    cases for duplicates that slipped through (docs/adjudication.md); prints a JSON report."""
    from sanad.registry.enrolment import EnrolmentContext
    from sanad.registry.sweep import count_active_faces
    from sanad.registry.sweep import sweep as sweep_gallery

    reg = registry()
    try:
        with reg.sessions() as session:
            total = count_active_faces(session)
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err,
        ) as progress:
            task = progress.add_task("sweeping faces", total=total)
            report = sweep_gallery(
                reg.sessions, reg.gallery, reg.settings, ctx=EnrolmentContext(officer=actor()),
                batch=batch, open_cases=not report_only,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        reg.close()
    print_json(report.to_json())
