"""The `sanad` command line (Typer). One module, one sub-command group, per organ.

Every command calls the same services the API calls. Domain errors are translated in exactly
one place (`main`): a one-line message on stderr and exit status 1, never a traceback.
Typer's standalone mode handles usage errors itself (exit 2, a short message).
"""

from __future__ import annotations

import sys

from sanad.cli import (  # noqa: F401  (register commands)
    abis,
    adjudication,
    audit,
    backup,
    biometrics,
    card,
    core,
    erasure,
    export,
    importer,
    kek,
    keys,
    kit,
    mrz,
    person,
    sync,
    user,
    verify,
    worker,
)
from sanad.cli._common import app
from sanad.errors import SanadError

__all__ = ["app", "main"]


def _fail(code: str, message: str) -> None:
    sys.stderr.write(f"error [{code}]: {' '.join(message.split())}\n")
    sys.exit(1)


def main() -> None:
    """Entry point of the `sanad` command."""
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except SanadError as exc:
        _fail(exc.code, exc.message)
    except OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        _fail("database_unavailable", first)
    except OSError as exc:
        _fail("os_error", str(exc))
