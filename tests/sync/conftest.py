"""Two registries: the central one (fixtures `registry`/`client`, SQLite and PostgreSQL) and a
field-kit station (its own SANAD_HOME and SQLite), both built with the real app factory."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sanad.app import create_app
from sanad.config import Settings
from sanad.registry.db import transaction
from sanad.registry.runtime import Registry, init_registry, open_registry
from sanad.sync import centre
from sanad.sync.keys import load_or_create_central_key
from sanad.sync.station import init_kit


@dataclass
class Kit:
    registry: Registry
    client: TestClient
    headers: dict[str, str]
    registration: dict[str, str]


@pytest.fixture(scope="session")
def kit_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An initialised SQLite home made once per test process, copied for each kit (the
    schema migration and the admin password hash are the slow part of `init_registry`)."""
    home = tmp_path_factory.mktemp("kit-template") / "home"
    report = init_registry(Settings(home=home, database_url=None))
    assert report.created_admin_password
    return home, report.created_admin_password


def make_kit(tmp_path: Path, central: Registry, name: str, template: tuple[Path, str], *,
             register: bool = True) -> Kit:
    template_home, password = template
    settings = Settings(home=tmp_path / name, database_url=None, station_mode=True)
    shutil.copytree(template_home, settings.home)
    # Each kit gets its own template key and session secret, as `sanad kit init` would.
    for secret in ("template.key", "session.secret"):
        (settings.keys_dir / secret).unlink()
    init_registry(settings)
    central_key, _ = load_or_create_central_key(central.settings.keys_dir)
    registration = init_kit(settings, station_id=name, site=f"site-{name}",
                            central=central_key.public)
    if register:
        with transaction(central.sessions) as session:
            centre.register_station(session, station_id=name, site=registration["site"],
                                    public_key_b64=registration["public_key"], actor="test-admin")
    reg = open_registry(settings)
    client = TestClient(create_app(registry=reg), raise_server_exceptions=False)
    client.__enter__()
    resp = client.post("/auth/token", json={"username": "admin", "password": password})
    assert resp.status_code == 200, resp.text
    return Kit(reg, client, {"Authorization": f"Bearer {resp.json()['access_token']}"},
               registration)


@pytest.fixture
def kit(tmp_path: Path, registry: Registry, kit_template: tuple[Path, str]) -> Iterator[Kit]:
    k = make_kit(tmp_path, registry, "kit-a", kit_template)
    yield k
    k.client.__exit__(None, None, None)
    k.registry.close()


@pytest.fixture
def admin_token(admin_headers: dict[str, str]) -> str:
    return admin_headers["Authorization"].split(" ", 1)[1]
