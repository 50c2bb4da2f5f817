"""Aggregates for the dashboard: counts only, never a name or anything that identifies a person.

Age bands are computed from the date of birth grouped in SQL (one row per distinct date, a few
tens of thousands at most), so the same code runs on SQLite and PostgreSQL without
dialect-specific date functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sanad.registry.models import (
    AdjudicationCase,
    AuditEvent,
    Card,
    Enrolment,
    Household,
    Person,
)

AGE_BANDS: tuple[tuple[str, int, int], ...] = (
    ("0-4", 0, 4), ("5-11", 5, 11), ("12-17", 12, 17), ("18-59", 18, 59), ("60+", 60, 200),
)


@dataclass(frozen=True)
class Dashboard:
    persons: int
    households: int
    by_province: list[tuple[str, int]]
    by_district: list[tuple[str, int]]
    by_sex: list[tuple[str, int]]
    by_age: list[tuple[str, int]]
    by_status: list[tuple[str, int]]
    enrolments_per_day: list[tuple[date, int]]
    dedup_outcomes: list[tuple[str, int]]
    open_cases: int
    # Active cards carrying an earlier face than the holder's newest capture (re-issue due).
    cards_to_reissue: int = 0


def _age(dob: date, today: date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def _pairs(rows: object) -> list[tuple[str, int]]:
    return [(str(k), int(n)) for k, n in rows]  # type: ignore[attr-defined]


def dashboard(session: Session, *, days: int = 30, today: date | None = None) -> Dashboard:
    """Population by province, district, sex, age band and status; enrolments per day over the
    last `days`; dedup outcomes (enrolled, sent to adjudication, refused as duplicates)."""
    today = today or datetime.now(UTC).date()
    count = func.count()
    by_province = _pairs(session.execute(
        select(Person.province, count).group_by(Person.province).order_by(count.desc())))
    by_district = _pairs(session.execute(
        select(Person.district, count).group_by(Person.district).order_by(count.desc())
        .limit(20)))
    by_sex = _pairs(session.execute(
        select(Person.sex, count).group_by(Person.sex).order_by(Person.sex)))
    by_status = _pairs(session.execute(
        select(Person.status, count).group_by(Person.status).order_by(Person.status)))
    ages = dict.fromkeys((b[0] for b in AGE_BANDS), 0)
    for dob, n in session.execute(select(Person.date_of_birth, count)
                                  .group_by(Person.date_of_birth)):
        age = _age(dob, today)
        for label, low, high in AGE_BANDS:
            if low <= age <= high:
                ages[label] += int(n)
                break
    since = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)
    per_day: dict[date, int] = {today - timedelta(days=i): 0 for i in range(days - 1, -1, -1)}
    recent = select(Enrolment.enrolled_at).where(Enrolment.enrolled_at >= since)
    for (at,) in session.execute(recent):
        day = at.astimezone(UTC).date()
        if day in per_day:
            per_day[day] += 1
    outcomes = dict(_pairs(session.execute(
        select(Enrolment.outcome, count).group_by(Enrolment.outcome))))
    refused = session.scalar(select(count).select_from(AuditEvent).where(
        AuditEvent.action == "enrolment.refused_duplicate")) or 0
    open_cases = session.scalar(select(count).select_from(AdjudicationCase).where(
        AdjudicationCase.status != "resolved")) or 0
    reissue = session.scalar(select(count).select_from(Card).where(
        Card.status == "active", Card.face_outdated)) or 0
    return Dashboard(
        persons=session.scalar(select(count).select_from(Person)) or 0,
        households=session.scalar(select(count).select_from(Household)) or 0,
        by_province=by_province, by_district=by_district, by_sex=by_sex,
        by_age=list(ages.items()), by_status=by_status,
        enrolments_per_day=list(per_day.items()),
        dedup_outcomes=[("no_match", outcomes.get("no_match", 0)),
                        ("adjudicate", outcomes.get("adjudicate", 0)),
                        ("duplicate", int(refused))],
        open_cases=int(open_cases), cards_to_reissue=int(reissue),
    )
