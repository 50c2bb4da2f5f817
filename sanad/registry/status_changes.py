"""Reversible status changes: a death, a reactivation, a new head of household.

Every change is a `StatusChange` row holding what it changed (`before` / `after`) and why, plus
an audit event, written in the caller's transaction. A change is undone by `revert_change`,
which applies the inverse as a new change (history is never rewritten). Invariant kept by
every function here: a household has exactly one member whose relationship is `head`.
Each change bumps the touched persons' `version`, so API clients holding an old ETag see 412.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from sanad import audit
from sanad.errors import InvalidInput, NotFound, StatusChangeRefused
from sanad.registry.access_models import StatusChange
from sanad.registry.cards import revoke_person_cards
from sanad.registry.db import utcnow
from sanad.registry.models import Household, Person, PersonStatus

# Not (yet) a member of `PersonStatus` (owned by the registry core); the value is stable.
DECEASED = "deceased"
HEAD = "head"
MIN_REASON = 3


class ChangeKind(StrEnum):
    DECEASED = "deceased"
    REACTIVATED = "reactivated"
    HEAD_CHANGED = "head_changed"


def _reason(reason: str) -> str:
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise InvalidInput("a status change needs a reason", field="reason")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in reason) or len(reason) > 1000:
        raise InvalidInput("the reason holds control characters or is too long", field="reason")
    return reason


def _person(session: Session, person_id: uuid.UUID) -> Person:
    person = session.get(Person, person_id, with_for_update=True)
    if person is None:
        raise NotFound(f"no person with id {person_id}")
    return person


def _touch(person: Person) -> None:
    person.version += 1
    person.updated_at = utcnow()


def _record(
    session: Session, *, person: Person, kind: ChangeKind, before: dict[str, str],
    after: dict[str, str], reason: str, actor: str, reverts: uuid.UUID | None = None,
) -> StatusChange:
    change = StatusChange(
        household_id=person.household_id, person_id=person.id, kind=kind.value, before=before,
        after=after, reason=reason, actor=actor, reverts=reverts,
    )
    session.add(change)
    session.flush()
    audit.record(
        session, actor=actor, action=f"person.status.{kind.value}", subject_type="person",
        subject_id=str(person.id),
        details={"change_id": str(change.id), "household_id": str(person.household_id),
                 "before": before, "after": after, "reason": reason,
                 "reverts": str(reverts) if reverts else None},
    )
    return change


def _members(session: Session, household_id: uuid.UUID) -> list[Person]:
    return list(
        session.scalars(
            select(Person).where(Person.household_id == household_id)
            .order_by(Person.member_no).with_for_update()
        )
    )


def mark_deceased(
    session: Session, *, person_id: uuid.UUID, reason: str, actor: str,
    new_head_id: uuid.UUID | None = None,
) -> StatusChange:
    """Record a death. A deceased head must hand over to `new_head_id` when other living
    members remain (same transaction), so the household keeps exactly one head."""
    reason = _reason(reason)
    person = _person(session, person_id)
    if person.status != PersonStatus.ACTIVE:
        raise StatusChangeRefused(f"only an active person can be marked deceased "
                                  f"(this one is {person.status})")
    if person.relationship_to_head == HEAD:
        others = [m for m in _members(session, person.household_id)
                  if m.id != person.id and m.status != DECEASED]
        if others and new_head_id is None:
            raise InvalidInput("the head of household has living members: name the new head",
                               field="new_head_id")
        if new_head_id is not None:
            change_head(session, household_id=person.household_id, new_head_id=new_head_id,
                        reason=reason, actor=actor)
    before = {"status": person.status}
    person.status = DECEASED
    _touch(person)
    # Revocation is data, in the same transaction: the card of a dead person must fail at the
    # next checkpoint sync. A reactivation does not revive it (a new card is issued instead).
    revoked = revoke_person_cards(session, person_id=person.id, reason="deceased",
                                  officer=actor)
    after = {"status": DECEASED}
    if revoked:
        after["revoked_cards"] = ",".join(c.card_number for c in revoked)
    return _record(session, person=person, kind=ChangeKind.DECEASED, before=before,
                   after=after, reason=reason, actor=actor)


def reactivate(session: Session, *, person_id: uuid.UUID, reason: str, actor: str) -> StatusChange:
    """Undo a recorded death (e.g. a wrong report): the person is active again."""
    reason = _reason(reason)
    person = _person(session, person_id)
    if person.status != DECEASED:
        raise StatusChangeRefused(f"only a deceased person can be reactivated "
                                  f"(this one is {person.status})")
    person.status = PersonStatus.ACTIVE
    _touch(person)
    return _record(session, person=person, kind=ChangeKind.REACTIVATED,
                   before={"status": DECEASED}, after={"status": PersonStatus.ACTIVE.value},
                   reason=reason, actor=actor)


def change_head(
    session: Session, *, household_id: uuid.UUID, new_head_id: uuid.UUID, reason: str,
    actor: str,
) -> StatusChange:
    """Make `new_head_id` the head; the old head's relationship becomes `other`.

    The change is recorded on the new head; `before` keeps both members' old relationships so
    a reversal restores them exactly.
    """
    reason = _reason(reason)
    if session.get(Household, household_id) is None:
        raise NotFound(f"no household with id {household_id}")
    members = _members(session, household_id)
    new_head = next((m for m in members if m.id == new_head_id), None)
    if new_head is None:
        raise InvalidInput("the new head must be a member of the household", field="new_head_id")
    if new_head.relationship_to_head == HEAD:
        raise StatusChangeRefused("this member is the head already")
    if new_head.status == DECEASED:
        raise StatusChangeRefused("a deceased member cannot become head")
    old_heads = [m for m in members if m.relationship_to_head == HEAD]
    before = {str(new_head.id): new_head.relationship_to_head}
    after = {str(new_head.id): HEAD}
    for old in old_heads:
        before[str(old.id)] = old.relationship_to_head
        after[str(old.id)] = "other"
        old.relationship_to_head = "other"
        _touch(old)
    new_head.relationship_to_head = HEAD
    _touch(new_head)
    return _record(session, person=new_head, kind=ChangeKind.HEAD_CHANGED,
                   before={"relationships": _flat(before)}, after={"relationships": _flat(after)},
                   reason=reason, actor=actor)


def _flat(mapping: dict[str, str]) -> str:
    # JSON columns hold str→str here; a compact "id=relation;…" keeps `before/after` flat.
    return ";".join(f"{k}={v}" for k, v in sorted(mapping.items()))


def _unflat(text: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in text.split(";") if item)


def revert_change(
    session: Session, *, change_id: uuid.UUID, reason: str, actor: str
) -> StatusChange:
    """Undo one change by applying its inverse (recorded as a new change that `reverts` it)."""
    reason = _reason(reason)
    change = session.get(StatusChange, change_id, with_for_update=True)
    if change is None:
        raise NotFound(f"no status change with id {change_id}")
    if change.reverted_by is not None:
        raise StatusChangeRefused("this change was reverted already")
    person = _person(session, change.person_id)
    if change.kind in (ChangeKind.DECEASED, ChangeKind.REACTIVATED):
        if person.status != change.after["status"]:
            raise StatusChangeRefused("the person's status changed since; revert the later "
                                      "change first")
        person.status = change.before["status"]
        _touch(person)
        kind = (ChangeKind.REACTIVATED if change.kind == ChangeKind.DECEASED
                else ChangeKind.DECEASED)
        undo = _record(session, person=person, kind=kind,
                       before={"status": change.after["status"]},
                       after={"status": change.before["status"]}, reason=reason, actor=actor,
                       reverts=change.id)
    else:
        restore = _unflat(change.before["relationships"])
        expected = _unflat(change.after["relationships"])
        members = {str(m.id): m for m in _members(session, change.household_id)}
        if any(members[pid].relationship_to_head != rel for pid, rel in expected.items()):
            raise StatusChangeRefused("the household changed since; revert the later change "
                                      "first")
        for pid, rel in restore.items():
            members[pid].relationship_to_head = rel
            _touch(members[pid])
        heads = [m for m in members.values() if m.relationship_to_head == HEAD]
        if len(heads) != 1:  # pragma: no cover - guarded by the `expected` check above
            raise StatusChangeRefused("reverting would leave the household without one head")
        undo = _record(session, person=heads[0], kind=ChangeKind.HEAD_CHANGED,
                       before=change.after, after=change.before, reason=reason, actor=actor,
                       reverts=change.id)
    change.reverted_by = undo.id
    return undo


def history(
    session: Session, *, person_id: uuid.UUID | None = None,
    household_id: uuid.UUID | None = None,
) -> list[StatusChange]:
    """Status changes of a person or a household, oldest first."""
    query = select(StatusChange).order_by(StatusChange.at, StatusChange.id)
    if person_id is not None:
        query = query.where(StatusChange.person_id == person_id)
    if household_id is not None:
        query = query.where(StatusChange.household_id == household_id)
    return list(session.scalars(query))
