"""Reading persons and households (every read of a person's record is audited)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from sanad import audit
from sanad.errors import NotFound
from sanad.registry.models import Enrolment, Household, Person


def get_person(session: Session, person_id: uuid.UUID, *, actor: str) -> Person:
    """One person with their cards; audited as a read."""
    person = session.scalar(
        select(Person).where(Person.id == person_id).options(selectinload(Person.cards))
    )
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    audit.record(
        session, actor=actor, action="person.read", subject_type="person", subject_id=str(person.id)
    )
    return person


def list_persons(
    session: Session, *, actor: str, limit: int = 50, offset: int = 0
) -> list[Person]:
    """Persons, newest first; one audit row names the ids returned."""
    persons = list(
        session.scalars(
            select(Person).order_by(Person.created_at.desc(), Person.id).limit(limit).offset(offset)
        )
    )
    audit.record(
        session, actor=actor, action="person.list", subject_type="person", subject_id="*",
        details={"ids": [str(p.id) for p in persons]},
    )
    return persons


def get_household(session: Session, household_id: uuid.UUID, *, actor: str) -> Household:
    household = session.scalar(
        select(Household).where(Household.id == household_id)
        .options(selectinload(Household.members))
    )
    if household is None:
        raise NotFound(f"no household with id {household_id}")
    audit.record(
        session, actor=actor, action="household.read", subject_type="household",
        subject_id=str(household.id),
    )
    return household


@dataclass(frozen=True)
class RecentEnrolment:
    registration_number: str
    province: str
    district: str
    members: int
    outcome: str
    enrolled_at: datetime


@dataclass(frozen=True)
class PopulationSummary:
    persons: int
    households: int
    by_province: list[tuple[str, int]]
    by_sex: list[tuple[str, int]]
    pending_adjudication: int
    recent: list[RecentEnrolment]


def population_summary(session: Session, *, recent: int = 10) -> PopulationSummary:
    """Aggregate counts for the home page: no names, nothing that identifies a person."""
    persons = session.scalar(select(func.count()).select_from(Person)) or 0
    households = session.scalar(select(func.count()).select_from(Household)) or 0
    by_province = [
        (str(p), int(n))
        for p, n in session.execute(
            select(Person.province, func.count()).group_by(Person.province)
            .order_by(func.count().desc())
        ).all()
    ]
    by_sex = [
        (str(s), int(n))
        for s, n in session.execute(
            select(Person.sex, func.count()).group_by(Person.sex).order_by(Person.sex)
        ).all()
    ]
    pending = session.scalar(
        select(func.count()).select_from(Person).where(Person.status == "pending_adjudication")
    ) or 0
    member_counts = (
        select(Person.household_id, func.count().label("n")).group_by(Person.household_id)
        .subquery()
    )
    rows = session.execute(
        select(Household.registration_number, Household.province, Household.district,
               member_counts.c.n, Enrolment.outcome, Enrolment.enrolled_at)
        .join(Enrolment, Enrolment.household_id == Household.id)
        .join(member_counts, member_counts.c.household_id == Household.id)
        .order_by(Enrolment.enrolled_at.desc()).limit(recent)
    ).all()
    return PopulationSummary(
        persons=persons,
        households=households,
        by_province=by_province,
        by_sex=by_sex,
        pending_adjudication=pending,
        recent=[RecentEnrolment(*r) for r in rows],
    )


def display_dob(dob: date, precision: str) -> str:
    """How a date of birth is shown: never a fake exact day for a year-only or estimated one."""
    if precision == "year":
        return str(dob.year)
    if precision == "estimated":
        return f"~{dob.year}"
    return dob.isoformat()
