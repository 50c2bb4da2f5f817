"""`sanad card …`: issue, re-issue, revoke, render and print cards; the print queue."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from sanad.cli._common import actor, err, group, parse_uuid, print_json, registry

if TYPE_CHECKING:
    from sanad.registry.card_models import PrintJob
    from sanad.registry.cards import IssuedCard

card_app = group("card", "Issue, re-issue, revoke, render and print cards.")

PersonArg = Annotated[str, typer.Argument(help="The person's id (UUID).")]
CardArg = Annotated[str, typer.Argument(help="The card's id (UUID).")]
JobArg = Annotated[str, typer.Argument(help="The print job's id (UUID).")]


def _issued_json(issued: IssuedCard) -> dict[str, Any]:
    return {
        "card_id": str(issued.card.id), "card_number": issued.card.card_number,
        "status_index": issued.card.status_index, "issue_reason": issued.card.issue_reason,
        "expires_at": issued.card.expires_at.isoformat(), "mrz": issued.mrz, "qr": issued.qr,
        "superseded": [str(c) for c in issued.superseded],
        "print_job_id": str(issued.print_job.id) if issued.print_job else None,
    }


def _job_json(job: PrintJob) -> dict[str, Any]:
    return {
        "id": str(job.id), "card_id": str(job.card_id), "state": job.state,
        "attempts": job.attempts, "reprints": job.reprints, "last_error": job.last_error,
        "requested_at": job.requested_at.isoformat(), "batch": job.batch,
        "collected_by": job.collected_by,
    }


def _lifecycle(person_id: str, operation: str) -> None:
    from sanad.registry import cards
    from sanad.registry.db import transaction

    pid = parse_uuid(person_id, "person_id")
    fn = {
        "issue": cards.issue_card, "renew": cards.renew_card,
        "replace-lost": cards.replace_lost_card, "reissue": cards.reissue_card,
    }[operation]
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            issued = fn(session, person_id=pid, officer=actor(), key=reg.issuer_key,
                        sealer=reg.sealer, settings=reg.settings)
        out = _issued_json(issued)
        if operation == "issue":
            from sanad.credentials.qr import qr_png

            reg.settings.cards_dir.mkdir(parents=True, exist_ok=True)
            png = reg.settings.cards_dir / f"{issued.card.card_number}.png"
            qr_png(issued.qr, png)
            out["qr_png"] = str(png)
        print_json(out)
    finally:
        reg.close()


@card_app.command("issue")
def card_issue(person_id: PersonArg) -> None:
    """Issue a card (any active card is superseded); prints the card and writes its QR PNG."""
    _lifecycle(person_id, "issue")


@card_app.command("renew")
def card_renew(person_id: PersonArg) -> None:
    """Renew: a new card with a fresh validity period; the current card is revoked."""
    _lifecycle(person_id, "renew")


@card_app.command("replace-lost")
def card_replace_lost(person_id: PersonArg) -> None:
    """Replace a lost card: the lost card is revoked (reason `lost`), a new one issued."""
    _lifecycle(person_id, "replace-lost")


@card_app.command("reissue")
def card_reissue(person_id: PersonArg) -> None:
    """Re-issue after the person's details changed; the old card is revoked (superseded)."""
    _lifecycle(person_id, "reissue")


@card_app.command("revoke")
def card_revoke(
    card_id: CardArg,
    reason: Annotated[str, typer.Option(
        help="lost | surrendered | deceased | fraud | superseded")],
) -> None:
    """Revoke one card; checkpoints learn it from the next status list."""
    from sanad.registry.cards import revoke_card
    from sanad.registry.db import transaction

    cid = parse_uuid(card_id, "card_id")
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            card = revoke_card(session, card_id=cid, reason=reason, officer=actor())
            print_json({"card_id": str(card.id), "status": card.status,
                        "reason": card.revocation_reason, "status_index": card.status_index})
    finally:
        reg.close()


@card_app.command("surrender")
def card_surrender(
    person_id: PersonArg,
    note: Annotated[str, typer.Option(help="Free-text note for the audit trail.")] = "",
) -> None:
    """Voluntary return: revoke the person's cards and deregister them (status `returned`)."""
    from sanad.registry.cards import surrender_card
    from sanad.registry.db import transaction

    pid = parse_uuid(person_id, "person_id")
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            revoked = surrender_card(session, person_id=pid, officer=actor(), note=note)
        print_json({"person_id": str(pid), "status": "returned",
                    "revoked": [str(c.id) for c in revoked]})
    finally:
        reg.close()


@card_app.command("pdf")
def card_pdf(
    person_id: PersonArg,
    out: Annotated[Path, typer.Option("--out", help="Where to write the PDF.")],
) -> None:
    """Write the print-ready PDF (ID-1, front and back) of the person's active card."""
    from sanad.registry.cards import active_card_id, card_pdf_bytes
    from sanad.registry.db import transaction

    pid = parse_uuid(person_id, "person_id")
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            cid = active_card_id(session, person_id=pid)
            pdf = card_pdf_bytes(session, card_id=cid, actor=actor(), settings=reg.settings,
                                 sealer=reg.sealer)
        out.write_bytes(pdf)
        print_json({"card_id": str(cid), "pdf": str(out), "bytes": len(pdf)})
    finally:
        reg.close()


@card_app.command("print")
def card_print(
    batch: Annotated[Path, typer.Option("--batch", help="Where to write the batch PDF.")],
    limit: Annotated[int, typer.Option(min=1, max=5000, help="Cards at most.")] = 500,
) -> None:
    """Render every card queued for printing into one PDF and mark those jobs printed."""
    from sanad.registry.cards import print_batch, queued_count
    from sanad.registry.db import transaction

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            total = min(limit, queued_count(session))
            with Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=err,
            ) as progress:
                task = progress.add_task("rendering cards", total=total)
                pdf, jobs = print_batch(
                    session, officer=actor(), settings=reg.settings, limit=limit,
                    progress=lambda n: progress.advance(task, n), sealer=reg.sealer,
                )
            # Written inside the transaction: if the file cannot be written, no job is
            # marked printed.
            batch.write_bytes(pdf)
        print_json({"pdf": str(batch), "cards": len(jobs), "batch": jobs[0].batch,
                    "jobs": [str(j.id) for j in jobs]})
    finally:
        reg.close()


@card_app.command("queue")
def card_queue(
    state: Annotated[str | None, typer.Option(
        help="requested | printed | collected | failed | cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 100,
) -> None:
    """List print jobs (one JSON object per line), oldest request first."""
    from sanad.registry.cards import list_print_jobs
    from sanad.registry.db import transaction

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            for job in list_print_jobs(session, state=state, limit=limit):
                print_json(_job_json(job))
    finally:
        reg.close()


def _job_step(job_id: str, step: str, **kwargs: str) -> None:
    from sanad.registry import cards
    from sanad.registry.db import transaction

    jid: uuid.UUID = parse_uuid(job_id, "job_id")
    reg = registry()
    officer = actor()
    try:
        with transaction(reg.sessions) as session:
            if step == "printed":
                job = cards.mark_printed(session, job_id=jid, officer=officer)
            elif step == "failed":
                job = cards.mark_print_failed(
                    session, job_id=jid, officer=officer, error=kwargs["error"],
                    max_attempts=reg.settings.print_max_attempts,
                )
            elif step == "reprint":
                job = cards.request_reprint(session, job_id=jid, officer=officer,
                                            reason=kwargs["reason"])
            else:
                job = cards.mark_collected(session, job_id=jid, officer=officer,
                                           collected_by=kwargs["collected_by"],
                                           proof=kwargs["proof"])
            print_json(_job_json(job))
    finally:
        reg.close()


@card_app.command("printed")
def card_printed(job_id: JobArg) -> None:
    """Mark a print job printed."""
    _job_step(job_id, "printed")


@card_app.command("print-failed")
def card_print_failed(
    job_id: JobArg, error: Annotated[str, typer.Option(help="What went wrong.")]
) -> None:
    """Record a failed print attempt (retried until SANAD_PRINT_MAX_ATTEMPTS)."""
    _job_step(job_id, "failed", error=error)


@card_app.command("reprint")
def card_reprint(
    job_id: JobArg, reason: Annotated[str, typer.Option(help="Why it is printed again.")]
) -> None:
    """Queue a printed or failed card again (the reprint counter goes up)."""
    _job_step(job_id, "reprint", reason=reason)


@card_app.command("collected")
def card_collected(
    job_id: JobArg,
    by: Annotated[str, typer.Option("--by", help="Who collected the card.")],
    proof: Annotated[str, typer.Option(help="Proof of identity shown.")],
) -> None:
    """Record that the card was handed over: to whom and on what proof."""
    _job_step(job_id, "collected", collected_by=by, proof=proof)
