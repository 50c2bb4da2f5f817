"""`sanad verify`: check a card's QR offline, exactly as a checkpoint does (no database
needed when a trust file is given)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sanad.cli._common import app, print_json, settings
from sanad.errors import InvalidInput

if TYPE_CHECKING:
    from sanad.credentials.pki import LoadedTrust


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"--at is not an ISO 8601 instant: {value!r}", field="at") from None
    # A date or a time without zone is read as UTC: the auditor's "on that day".
    return at if at.utcoffset() is not None else at.replace(tzinfo=UTC)


@app.command()
def verify(
    qr_text: Annotated[str, typer.Argument(help="The QR text (e.g. SND1:..., HC1:...).")],
    trust: Annotated[Path | None, typer.Option(
        help="Trust file: a sanad trust bundle, a JWKS, or PEM X.509 signer certificates. "
        "Default: the keys and the current status list of SANAD_HOME.")] = None,
    status: Annotated[Path | None, typer.Option(
        help="Signed status list file (default: the one inside the trust bundle).")] = None,
    prefix: Annotated[list[str] | None, typer.Option(
        "--prefix", help="Accepted context prefix (repeatable; default SANAD_QR_PREFIX).")] = None,
    photo: Annotated[Path | None, typer.Option(
        help="Photo of the holder for a 1:1 face check against the QR's template.")] = None,
    at: Annotated[str | None, typer.Option(
        help="Verify as of this ISO 8601 instant (default: now).")] = None,
    root_sha256: Annotated[str | None, typer.Option(
        help="Pin the trust bundle's root certificate (SHA-256 of its DER, hex).")] = None,
    no_status: Annotated[bool, typer.Option(
        "--no-status", help="Skip the revocation check (reported as not checked).")] = False,
) -> None:
    """Verify a card QR offline; prints JSON (`valid`, `reasons`, `claims`).
    Exit 0 valid, 1 invalid, 2 usage."""
    from sanad.credentials.pki import load_trust
    from sanad.credentials.status import parse_status_list
    from sanad.verify import verify as verify_qr
    from sanad.verify.face import probe_from_image

    s = settings()
    when = _parse_at(at)
    if trust is not None:
        loaded = load_trust(trust, pinned_root_sha256=root_sha256)
    else:
        loaded = _home_trust()
    status_bytes = loaded.status_list
    if status is not None:
        try:
            status_bytes = status.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read status list {status}: {exc.strerror}",
                               field="status") from exc
    status_list = (
        parse_status_list(status_bytes, trust=loaded.trust)
        if status_bytes is not None and not no_status else None
    )
    probe = None
    if photo is not None:
        try:
            image = photo.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read photo {photo}: {exc.strerror}",
                               field="photo") from exc
        probe = probe_from_image(image, threshold=s.verify_face_threshold)
    result = verify_qr(
        qr_text, trust=loaded.trust, at=when, prefixes=tuple(prefix or [s.qr_prefix]),
        status=status_list, require_status=not no_status,
        status_max_age=timedelta(hours=s.status_max_age_hours), face=probe,
    )
    print_json(result.to_json())
    raise typer.Exit(0 if result.valid else 1)


def _home_trust() -> LoadedTrust:
    """Trust and status list of this registry (the operator's own machine)."""
    from sanad.cli._common import registry
    from sanad.credentials.pki import LoadedTrust
    from sanad.registry.db import transaction
    from sanad.registry.status_list import current_status_list

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            status = current_status_list(
                session, key=reg.issuer_key, issuer=reg.settings.issuer,
                resign_after=timedelta(hours=reg.settings.status_resign_hours),
            )
        return LoadedTrust(trust=reg.trust_list, status_list=status)
    finally:
        reg.close()
