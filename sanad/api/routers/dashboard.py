"""/dashboard (aggregate counts, no personal data) and /healthz (liveness, public)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from sanad.api.deps import ALL_ROLES, Principal, Public, RegistryDep, require
from sanad.api.problems import problem_responses
from sanad.api.schemas import Count, DashboardPublic, Health
from sanad.registry.dashboard import dashboard as aggregates
from sanad.registry.db import transaction

router = APIRouter(tags=["dashboard"])
AnyUser = Annotated[Principal, Depends(require(*ALL_ROLES))]


@router.get("/dashboard", response_model=DashboardPublic, responses=problem_responses(401, 403))
def dashboard(
    registry: RegistryDep, _user: AnyUser,
    days: Annotated[int, Query(ge=1, le=366)] = 30,
) -> DashboardPublic:
    """Population by province, district, sex, age band and status; enrolments per day;
    dedup outcomes; open adjudication cases."""
    with transaction(registry.sessions) as session:
        d = aggregates(session, days=days)

    def counts(pairs: list[tuple[str, int]]) -> list[Count]:
        return [Count(key=k, count=n) for k, n in pairs]

    return DashboardPublic(
        persons=d.persons, households=d.households, open_cases=d.open_cases,
        cards_to_reissue=d.cards_to_reissue,
        by_province=counts(d.by_province), by_district=counts(d.by_district),
        by_sex=counts(d.by_sex), by_age=counts(d.by_age), by_status=counts(d.by_status),
        enrolments_per_day=[Count(key=day.isoformat(), count=n)
                            for day, n in d.enrolments_per_day],
        dedup_outcomes=counts(d.dedup_outcomes),
    )


@router.get("/healthz", response_model=Health, dependencies=[Public])
async def healthz() -> Health:
    """Liveness: answers without touching the database (the benchmark's baseline)."""
    return Health()
