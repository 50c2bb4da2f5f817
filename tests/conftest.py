"""Shared fixtures: a registry on a fresh database, parametrised over SQLite and PostgreSQL.

PostgreSQL is a real dependency (no skipping): each pytest-xdist worker gets its own database,
migrated once, and every test starts from empty tables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from sanad.config import Settings
from sanad.registry import all_models, migrate  # noqa: F401  (complete metadata)
from sanad.registry.db import Base, make_engine
from sanad.registry.runtime import Registry, init_registry, open_registry

PG_ADMIN_URL = os.environ.get(
    "SANAD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_worker_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_url(worker_id: str) -> Iterator[str]:
    """A migrated PostgreSQL database owned by this test worker (unique per process, so
    concurrent test runs on one server never share a database)."""
    name = f"sanad_test_{worker_id}_{os.getpid()}"
    conninfo = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # pragma: no cover - environment problem
        pytest.exit(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc} (run `make postgres`)", 3)
    url = _pg_worker_url(name)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh, initialised registry under `tmp_path` on the given database."""
    home = tmp_path / "home"
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        _truncate(url)
        s = Settings(home=home, database_url=url)
    else:
        s = Settings(home=home, database_url=None)
    return s


@pytest.fixture
def initialised(settings: Settings) -> tuple[Settings, str]:
    """(settings, admin password) after `init_registry`."""
    report = init_registry(settings)
    assert report.created_admin_password
    return settings, report.created_admin_password


@pytest.fixture
def registry(initialised: tuple[Settings, str]) -> Iterator[Registry]:
    reg = open_registry(initialised[0])
    yield reg
    reg.close()


@pytest.fixture
def make_registry(initialised: tuple[Settings, str]) -> Iterator[Callable[..., Registry]]:
    """Open registries (as separate processes would) on the test database, with overrides."""
    opened: list[Registry] = []

    def make(**overrides: Any) -> Registry:
        reg = open_registry(initialised[0].model_copy(update=overrides))
        opened.append(reg)
        return reg

    yield make
    for reg in opened:
        reg.close()


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    from sanad.app import create_app  # imported here: tests of services need no app

    with TestClient(create_app(registry=registry), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin_headers(client: TestClient, initialised: tuple[Settings, str]) -> dict[str, str]:
    resp = client.post("/auth/token", json={"username": "admin", "password": initialised[1]})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


@pytest.fixture
def db_env(registry: Registry) -> dict[str, str]:
    """Environment for running the `sanad` CLI in a subprocess against this registry."""
    env = dict(os.environ)
    env["SANAD_HOME"] = str(registry.settings.home)
    if registry.settings.database_url:
        env["SANAD_DATABASE_URL"] = registry.settings.database_url
    else:
        env.pop("SANAD_DATABASE_URL", None)
    return env
