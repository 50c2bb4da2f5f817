"""Engine and session factory; column types shared by the models."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator


class Base(DeclarativeBase):
    """Declarative base of every sanad table."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite and PostgreSQL alike.

    SQLite has no time zones; storing naive UTC and re-attaching UTC on the way out keeps the
    audit hash chain identical across databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """Now, in UTC, with microseconds (what every timestamp column stores)."""
    return datetime.now(UTC)


def make_engine(url: str, *, key: bytes | None = None) -> Engine:
    """Create the engine; SQLite gets foreign keys on and a busy timeout (WAL for readers).

    With `key` (a field kit's 32-byte database key, `sanad.registry.dbkey`) the SQLite file is
    opened through SQLCipher: every page, the WAL included, is encrypted with that raw key.
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        if key is not None:
            from sqlcipher3 import dbapi2 as sqlcipher

            kwargs["module"] = sqlcipher
    elif key is not None:
        raise ValueError("a database key applies to SQLite (SQLCipher) only")
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if key is not None:
                # A raw key (x'…'): no passphrase KDF on every new connection.
                cur.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()
            # Let SQLAlchemy, not pysqlite, decide when transactions begin (see below).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            # A deferred SQLite transaction that reads and then writes fails with
            # SQLITE_BUSY_SNAPSHOT when another writer committed in between (two requests
            # appending to the audit chain). Taking the write lock up front serialises writers
            # and lets the busy timeout do its job; PostgreSQL uses row locks instead.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception (then re-raise)."""
    with factory() as session, session.begin():
        yield session
