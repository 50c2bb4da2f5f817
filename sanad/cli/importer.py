"""`sanad import FILE --mapping MAP`: bulk import of legacy registrations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from sanad.cli._common import actor, app, err, parse_uuid, print_json, registry


@app.command("import")
def import_file(
    file: Annotated[Path | None, typer.Argument(help="CSV or JSON Lines file.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Mapping JSON (column → field).")] = None,
    background: Annotated[bool, typer.Option(
        help="Only queue the job for `sanad worker`; print its id.")] = False,
    resume: Annotated[str | None, typer.Option(help="Resume job ID from its checkpoint.")
                      ] = None,
    report: Annotated[Path | None, typer.Option(help="Write the validation report (CSV).")
                      ] = None,
) -> None:
    """Import with a progress bar (or queue it); bad rows are reported, good rows imported;
    an interrupted import continues from its checkpoint (`--resume JOB`)."""
    import csv

    from sanad.errors import InvalidInput
    from sanad.registry import importer
    from sanad.registry.db import transaction

    reg = registry()
    try:
        if resume:
            job_id = parse_uuid(resume, "resume")
        else:
            if file is None or mapping is None:
                raise InvalidInput("FILE and --mapping are required", field="file")
            with transaction(reg.sessions) as session:
                job_id = importer.submit_job(session, path=file,
                                             mapping=importer.load_mapping(mapping),
                                             actor=actor()).id
            if background:
                print_json({"job_id": str(job_id), "status": "queued"})
                return
        claimed = importer.claim_job(reg.sessions, job_id=job_id,
                                     lease_seconds=reg.settings.worker_lease_seconds)
        if claimed is None:
            raise InvalidInput(f"job {job_id} is finished or held by a running worker",
                               field="resume")
        with Progress("[progress.description]{task.description}", BarColumn(),
                      MofNCompleteColumn(), TimeRemainingColumn(), console=err) as bar:
            task = bar.add_task("importing", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=total)

            summary = importer.run_job(reg.sessions, job_id,
                                       batch_rows=reg.settings.import_batch_rows,
                                       lease_seconds=reg.settings.worker_lease_seconds,
                                       progress=progress,
                                       biographic_threshold=reg.settings.biographic_threshold)
        if report is not None:
            with transaction(reg.sessions) as session, report.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=["row", "field", "error"])
                writer.writeheader()
                writer.writerows(importer.job_errors(session, job_id, limit=10**9))
        print_json(summary)
    finally:
        reg.close()
