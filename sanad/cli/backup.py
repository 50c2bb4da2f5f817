"""`sanad backup` and `sanad restore`: encrypted archives of database, keys and index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sanad.cli._common import app, err, print_json, settings
from sanad.errors import InvalidInput

_PASSPHRASE_ENV = "SANAD_BACKUP_PASSPHRASE"


def _secret(passphrase_file: Path | None, key_file: Path | None) -> tuple[bytes | None,
                                                                          bytes | None]:
    """(passphrase, key): exactly one is set."""
    import os

    if key_file is not None:
        return None, key_file.read_bytes()
    if passphrase_file is not None:
        return passphrase_file.read_bytes().rstrip(b"\r\n"), None
    value = os.environ.get(_PASSPHRASE_ENV)
    if not value:
        raise InvalidInput(
            f"give --passphrase-file, --key-file or set {_PASSPHRASE_ENV}", field="passphrase"
        )
    return value.encode(), None


PassphraseFile = Annotated[
    Path | None,
    typer.Option(help=f"File holding the passphrase (else ${_PASSPHRASE_ENV}).", exists=True,
                 dir_okay=False),
]
KeyFile = Annotated[
    Path | None,
    typer.Option(help="File holding a 32-byte backup key (instead of a passphrase).",
                 exists=True, dir_okay=False),
]


@app.command()
def backup(
    out: Annotated[Path, typer.Option("--out", help="Archive to write (replaced atomically).")],
    passphrase_file: PassphraseFile = None,
    key_file: KeyFile = None,
) -> None:
    """Write an encrypted backup: database (consistent snapshot), keys, index snapshot."""
    from sanad.ops.backup import create_backup

    passphrase, key = _secret(passphrase_file, key_file)
    report = create_backup(settings(), out, passphrase=passphrase, key=key)
    err.print(f"backup written: {report.path} ({report.bytes_written} bytes)")
    print_json({"path": str(report.path), "tables": report.tables,
                "key_files": report.key_files, "index_snapshot": report.index_snapshot})


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="Archive written by `sanad backup`.",
                                            exists=True, dir_okay=False)],
    passphrase_file: PassphraseFile = None,
    key_file: KeyFile = None,
) -> None:
    """Restore a backup into an empty SANAD_HOME and database (refuses to overwrite)."""
    from sanad.ops.backup import restore_backup

    passphrase, key = _secret(passphrase_file, key_file)
    report = restore_backup(settings(), archive, passphrase=passphrase, key=key)
    print_json({"tables": report.tables, "key_files": report.key_files,
                "index_snapshot": report.index_snapshot, "source": report.source_dialect,
                "created_at": report.created_at})
