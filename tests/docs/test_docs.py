"""Docs that tests keep true: every setting, CLI command and error code is documented.

Regenerate with ``scripts/gen_cli_docs.py`` (docs/cli.md) and ``scripts/gen_reference_docs.py``
(docs/errors.md and the settings table of docs/operations.md).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import typer

from sanad.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_operations_md(name: str) -> None:
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    env = f"SANAD_{name.upper()}"
    assert re.search(rf"`{env}`", text), f"{env} is not documented in docs/operations.md"


def test_every_cli_command_is_in_cli_md() -> None:
    from sanad.cli import app

    headings = set(re.findall(r"^## (sanad.*)$", (DOCS / "cli.md").read_text(encoding="utf-8"),
                              re.M))
    walk = _script("gen_cli_docs").walk
    commands = {" ".join(("sanad", *p)) for p in walk(typer.main.get_command(app))}
    assert len(commands) > 10
    missing = sorted(commands - headings)
    assert not missing, f"undocumented commands (run scripts/gen_cli_docs.py): {missing}"


def test_every_error_code_is_in_errors_md() -> None:
    classes = _script("gen_reference_docs").error_classes()
    codes = {c.code for c in classes}
    assert {"not_found", "data_key_destroyed", "backup_invalid"} <= codes
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    missing = sorted(code for code in codes if f"`{code}`" not in text)
    assert not missing, f"undocumented error codes (run scripts/gen_reference_docs.py): {missing}"


def test_the_walk_finds_nested_subclasses() -> None:
    # The check is only as good as the walk: a sub-subclass (DataKeyDestroyed < SealError <
    # SanadError) must be found.
    from sanad.registry.sealing import DataKeyDestroyed

    assert DataKeyDestroyed in _script("gen_reference_docs").error_classes()
