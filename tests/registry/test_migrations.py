"""The migration graph: one head, and a database left at the old branch heads catches up."""

from __future__ import annotations

from pathlib import Path

from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from sanad.registry import migrate
from sanad.registry.db import make_engine

OLD_HEADS = ("0002_credentials", "0004_access", "0006_crypto", "0010_kit")


def test_the_migration_graph_has_one_head() -> None:
    script = ScriptDirectory.from_config(migrate._config())
    assert script.get_heads() == ["0011_merge_heads"]


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
            assert MigrationContext.configure(conn).get_current_heads() == ("0011_merge_heads",)
        assert migrate.is_current(engine)
        migrate.upgrade(engine)  # idempotent
        assert migrate.is_current(engine)
    finally:
        engine.dispose()
