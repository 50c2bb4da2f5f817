"""`sanad person …`: read persons."""

from __future__ import annotations

from typing import Annotated

import typer

from sanad.cli._common import actor, group, print_json, registry

person_app = group("person", "Read persons.")


@person_app.command("list")
def person_list(
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Persons, newest first, as JSON lines (each read is audited)."""
    from sanad.registry.db import transaction
    from sanad.registry.persons import display_dob, list_persons

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            for p in list_persons(session, actor=actor(), limit=limit, offset=offset):
                print_json({
                    "id": str(p.id), "registration_number": p.registration_number,
                    "given_name": p.given_name, "family_name": p.family_name,
                    "date_of_birth": display_dob(p.date_of_birth, p.dob_precision),
                    "sex": p.sex, "province": p.province, "status": p.status,
                })
    finally:
        reg.close()


@person_app.command("count")
def person_count() -> None:
    """Number of persons in the registry (prints one integer)."""
    from sanad.registry.db import transaction
    from sanad.registry.persons import population_summary

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            typer.echo(population_summary(session, recent=0).persons)
    finally:
        reg.close()
