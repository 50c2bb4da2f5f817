"""KEK rotation (re-wrap, resumable, retire) and a KEK inside SoftHSM2 through PKCS#11."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from sanad.ops.kek import kek_status, retire, rotate
from sanad.registry.crypto_models import DataKey
from sanad.registry.db import transaction
from sanad.registry.models import BiometricRecord
from sanad.registry.sealing import (
    FileKek,
    KekRing,
    Pkcs11Kek,
    SealError,
    TemplateSealer,
    replace_private_file,
)
from tests.ops.helpers import enrol

SOFTHSM = Path("/usr/lib/softhsm/libsofthsm2.so")


def _open_all(registry, sealer: TemplateSealer) -> int:
    with registry.sessions() as session:
        recs = list(session.scalars(select(BiometricRecord)))
        for r in recs:
            assert sealer.open(r.template, aad=f"{r.person_id}:face".encode(), session=session)
    return len(recs)


def test_rotation_rewraps_every_data_key_and_old_kek_retires(registry) -> None:
    enrol(registry, [301, 302, 303])
    settings = registry.settings
    old = KekRing.parse(settings.template_key_path.read_bytes()).current
    # A process that started before the rotation and re-reads the ring when it must.
    running = TemplateSealer.from_file(settings.template_key_path)
    with pytest.raises(SealError, match=r"still wrapped|current"):
        retire(settings, old)
    report = rotate(settings, batch=2)  # new KEK current, 3 keys in batches of 2
    assert report["rewrapped"] == 3 and report["data_keys"] == {report["current"]: 3}
    assert report["current"] != old
    assert _open_all(registry, TemplateSealer.from_file(settings.template_key_path)) == 3
    assert _open_all(registry, running) == 3  # reloaded the ring: no downtime
    out = retire(settings, old)
    assert old not in out["keks"]
    assert kek_status(settings)["keks"] == [report["current"]]


def test_interrupted_rotation_resumes(registry) -> None:
    enrol(registry, [304, 305])
    settings = registry.settings
    ring = KekRing.parse(settings.template_key_path.read_bytes())
    new_ring = ring.with_current(FileKek.generate())
    # Simulate a crash after the ring changed and one batch of one key was committed.
    replace_private_file(settings.template_key_path, new_ring.dump())
    from sanad.registry.sealing import rewrap_batch

    with pytest.raises(SealError, match="still wrapped"):
        retire(settings, ring.current)
    with transaction(registry.sessions) as session:
        assert rewrap_batch(session, new_ring, batch=1) == 1
    report = rotate(settings, new_kek=False)
    assert report["rewrapped"] == 1
    assert report["data_keys"] == {new_ring.current: 2}
    with registry.sessions() as session:
        assert all(r.rewrapped_at is not None for r in session.scalars(select(DataKey)))


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One SoftHSM2 token per test process (the library reads its configuration once)."""
    if not SOFTHSM.exists() or shutil.which("softhsm2-util") is None:
        pytest.skip("SoftHSM2 not installed (apt-get install softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    os.environ["SANAD_TEST_HSM_PIN"] = "1234"
    label = f"sanad-{os.getpid()}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", "1234",
         "--so-pin", "5678"], check=True, capture_output=True, env=os.environ,
    )
    return {"module": str(SOFTHSM), "token": label, "pin_env": "SANAD_TEST_HSM_PIN"}


def test_pkcs11_kek_in_softhsm(softhsm: dict[str, str]) -> None:
    kek = Pkcs11Kek.generate(label="kek-a", **softhsm)
    dek = os.urandom(32)
    wrapped = kek.wrap(dek)
    assert dek not in wrapped and kek.unwrap(wrapped) == dek
    # The ring names the token key, never holds its material; it survives a round trip.
    ring = KekRing.parse(KekRing.single(kek).dump())
    assert ring.keks[kek.identifier].unwrap(wrapped) == dek
    with pytest.raises(SealError):
        kek.unwrap(wrapped[:-1] + bytes([wrapped[-1] ^ 1]))


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_rotation_from_file_kek_into_the_hsm(registry, softhsm: dict[str, str]) -> None:
    enrol(registry, [306])
    kek = Pkcs11Kek.generate(label="kek-b", **softhsm)
    report = rotate(registry.settings, new_kek=kek)
    assert report["data_keys"] == {kek.identifier: 1}
    assert _open_all(registry, TemplateSealer.from_file(registry.settings.template_key_path)) == 1
    with registry.sessions() as session:
        row = session.scalars(select(DataKey)).one()
        assert row.kek_id == "pkcs11:" + softhsm["token"] + "/kek-b"


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_cli_rewrap_into_the_hsm(registry, db_env, softhsm: dict[str, str]) -> None:
    enrol(registry, [307])
    registry.close()
    env = {**db_env, "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"], "SANAD_TEST_HSM_PIN": "1234"}
    proc = subprocess.run(
        [sys.executable, "-m", "sanad", "keys", "rewrap", "--hsm-module", softhsm["module"],
         "--hsm-token", softhsm["token"], "--hsm-label", "kek-cli",
         "--hsm-pin-env", "SANAD_TEST_HSM_PIN"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    current = f"pkcs11:{softhsm['token']}/kek-cli"
    assert json.loads(proc.stdout)["data_keys"] == {current: 1}
    status = subprocess.run([sys.executable, "-m", "sanad", "keys", "kek-status"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert json.loads(status.stdout)["current"] == current
