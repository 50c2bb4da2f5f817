"""`sanad adjudication …`: the adjudication queue from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from sanad.cli._common import actor, group, parse_uuid, print_json, registry

adjudication_app = group("adjudication", "Review possible duplicates.")


@adjudication_app.command("list")
def list_(
    status: Annotated[str, typer.Option(help="open | awaiting_second | resolved")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Cases in a queue, oldest first, as JSON lines."""
    from sanad.registry.adjudication import list_cases
    from sanad.registry.db import transaction

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            for c in list_cases(session, actor=actor(), status=status, limit=limit):
                print_json({"id": str(c.id), "person_id": str(c.person_id), "kind": c.kind,
                            "status": c.status, "best_score": c.best_score,
                            "needs_second": c.needs_second,
                            "created_at": c.created_at.isoformat()})
    finally:
        reg.close()


@adjudication_app.command("decide")
def decide(
    case_id: str,
    verdict: Annotated[str, typer.Option(help="same_person | different_person")],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")],
    link_to: Annotated[str | None, typer.Option(help="Candidate person id (same_person).")] = None,
) -> None:
    """Record a verdict on a case (two-person rule: overridden matches, held captures)."""
    from sanad.errors import InvalidInput
    from sanad.registry.adjudication import Verdict, decide_case
    from sanad.registry.db import transaction

    try:
        v = Verdict(verdict)
    except ValueError:
        raise InvalidInput("verdict must be same_person or different_person",
                           field="verdict") from None
    cid = parse_uuid(case_id, "case_id")
    target = parse_uuid(link_to, "link_to") if link_to else None
    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            case = decide_case(session, case_id=cid, verdict=v, reason=reason, actor=actor(),
                               sealer=reg.sealer, link_to=target,
                               match_threshold=reg.settings.dedup_match_threshold)
            print_json({"id": str(case.id), "status": case.status, "decision": case.decision,
                        "first_decision": case.first_decision})
    finally:
        reg.close()
