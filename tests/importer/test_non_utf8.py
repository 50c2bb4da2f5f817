"""A legacy file that is not UTF-8 is refused with a clear, coded error (nothing imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sanad.errors import InvalidInput
from sanad.registry.importer import read_rows


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_latin1_file_is_refused_naming_the_file(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"legacy.{fmt}"
    header = "given_name,family_name\n" if fmt == "csv" else ""
    body = "Jos\xe9,Garc\xeda\n" if fmt == "csv" else '{"given_name": "Jos\xe9"}\n'
    path.write_bytes((header + body).encode("latin-1"))
    with pytest.raises(InvalidInput) as err:
        list(read_rows(path, fmt))
    assert err.value.field == "file" and "legacy." in err.value.message
