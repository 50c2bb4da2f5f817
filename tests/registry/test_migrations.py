"""The migration graph: one head, a database left at the old branch heads catches up, and the
data migrations do what they say."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from alembic import command
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, update

from sanad.registry import importer, migrate
from sanad.registry.db import make_engine, transaction
from sanad.registry.enrolment import EnrolmentContext
from sanad.registry.models import Card, Person
from sanad.registry.recapture import recapture_person
from sanad.registry.runtime import Registry
from sanad.registry.schemas import BiometricsUpdate
from sanad.registry.sync_models import ImportedRecord
from tests import factories
from tests.cards.helpers import issue
from tests.factories import LEGACY_HEADER, import_legacy, legacy_row

OLD_HEADS = ("0002_credentials", "0004_access", "0006_crypto", "0010_kit")
HEAD = "0015_import_dedup_keys"


def _redo_after(registry: Registry, revision: str) -> None:
    """Downgrade the registry's database to ``revision``, then upgrade it to the head again
    (the later revisions' data migrations run on what the test left there)."""
    cfg = migrate._config()
    with registry.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    migrate.upgrade(registry.engine)


def test_the_migration_graph_has_one_head() -> None:
    script = ScriptDirectory.from_config(migrate._config())
    assert script.get_heads() == [HEAD]


def test_a_database_at_the_old_branch_heads_upgrades_to_the_merge(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        for head in OLD_HEADS:  # how a registry initialised before the merge looks
            migrate.upgrade(engine, head)
        with engine.connect() as conn:
            assert set(MigrationContext.configure(conn).get_current_heads()) == set(OLD_HEADS)
        assert not migrate.is_current(engine)
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_heads() == (HEAD,)
        assert migrate.is_current(engine)
        migrate.upgrade(engine)  # idempotent
        assert migrate.is_current(engine)
    finally:
        engine.dispose()


def test_0012_recomputes_blocking_keys_so_omar_finds_umar(registry: Registry) -> None:
    rng = np.random.default_rng(12)
    omar = factories.enrol(registry, factories.alone(factories.member(
        1201, rng, given_name="Omar", family_name="Othman"))).members[0].person_id
    with transaction(registry.sessions) as s:  # as a registry keyed before 0012 stored it
        s.execute(update(Person).where(Person.id == omar).values(name_key="omr|otmn"))
    _redo_after(registry, "0011_merge_heads")
    with registry.sessions() as s:
        assert s.scalar(select(Person.name_key).where(Person.id == omar)) == "umr|utmn"

    # The same man, written Umar Uthman, now meets the record as a biographic candidate.
    again = factories.member(1202, rng, given_name="Umar", family_name="Uthman")
    result = factories.enrol(registry, factories.alone(again, request_adjudication=True))
    assert omar in {c.person_id for c in result.members[0].candidates
                    if c.source == "biographic"}


def test_0013_backfills_the_face_each_card_carries(registry: Registry) -> None:
    rng = np.random.default_rng(13)
    face = factories.face(1301, rng)
    pid = factories.enrol(registry, factories.alone(factories.member(1301, rng, face=face))
                          ).members[0].person_id
    other = factories.enrol(registry, factories.alone(factories.member(
        1302, rng, given_name="Ziad"))).members[0].person_id
    assert pid is not None and other is not None
    card, current = issue(registry, pid).card, issue(registry, other).card
    assert card.face_record_id is not None
    recapture_person(registry.sessions, registry.gallery, registry.settings, person_id=pid,
                     data=BiometricsUpdate.model_validate({"reason": "renewal", "face": face}),
                     ctx=EnrolmentContext(officer="o"))  # a newer face than the card's
    _redo_after(registry, "0012_name_key_vowel_classes")  # cards from before the columns
    with registry.sessions() as s:
        assert s.execute(select(Card.face_record_id, Card.face_outdated)
                         .where(Card.id == card.id)).one() == (card.face_record_id, True)
        assert s.execute(select(Card.face_record_id, Card.face_outdated)
                         .where(Card.id == current.id)).one() == (current.face_record_id,
                                                                  False)


def test_0015_recomputes_import_keys_of_unchanged_records(
    registry: Registry, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    ids = import_legacy(registry, tmp_path / "a", [legacy_row("M1", "Omar", "Othman"),
                                                   legacy_row("M2", "Idris", "Amin")])
    stale = {ids["Omar"]: "0" * 64, ids["Idris"]: "1" * 64}  # as keyed before 0012
    with transaction(registry.sessions) as s:
        current = {pid: key for pid, key in s.execute(
            select(ImportedRecord.person_id, ImportedRecord.dedup_key))}
        for pid, key in stale.items():
            s.execute(update(ImportedRecord).where(ImportedRecord.person_id == pid)
                      .values(dedup_key=key))
        # Idris's record was corrected since: its fields are no longer the row's.
        s.execute(update(Person).where(Person.id == ids["Idris"]).values(version=2))
    _redo_after(registry, "0014_held_captures")
    with registry.sessions() as s:
        keys = {pid: key for pid, key in s.execute(
            select(ImportedRecord.person_id, ImportedRecord.dedup_key))}
    assert keys == {ids["Omar"]: current[ids["Omar"]], ids["Idris"]: stale[ids["Idris"]]}
    # The same legacy row imported again is now the same record, not a new person.
    (tmp_path / "b").mkdir()
    data = tmp_path / "b" / "again.csv"
    with data.open("w", newline="") as fh:
        csv.writer(fh).writerows([LEGACY_HEADER, legacy_row("M1", "Omar", "Othman")])
    mapping = tmp_path / "a" / "mapping.json"
    with transaction(registry.sessions) as s:
        job = importer.submit_job(s, path=data, mapping=importer.load_mapping(mapping),
                                  actor="test")
    assert importer.claim_job(registry.sessions, lease_seconds=60) == job.id
    summary = importer.run_job(registry.sessions, job.id, lease_seconds=60, batch_rows=10)
    assert summary["imported"] == 0 and summary["duplicates"] == 1, summary
