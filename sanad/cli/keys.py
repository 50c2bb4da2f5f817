"""`sanad keys …`: the two-level PKI (root → document signers) and the trust bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sanad.cli._common import err, group, print_json, settings

keys_app = group("keys", "Issuer keys, certificates and the trust bundle for checkpoints.")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Make a new document-signer key (new kid), certified by the root, and make it current.

    Old keys stay trusted until the last card they signed expires.
    """
    from sanad.credentials.pki import rotate_signer

    s = settings()
    key = rotate_signer(s.keys_dir, issuer=s.issuer)
    err.print(f"new signing key {key.kid.hex()} is current; restart running servers")
    cert = s.keys_dir / f"issuer-{key.kid.hex()}.crt"
    print_json({"kid": key.kid.hex(), "certificate": str(cert)})


@keys_app.command("list")
def keys_list() -> None:
    """The root fingerprint and every signer key with its certificate validity."""
    from sanad.credentials.pki import ensure_pki, fingerprint

    s = settings()
    pki = ensure_pki(s.keys_dir, issuer=s.issuer)
    print_json({
        "root_sha256": fingerprint(pki.root_cert),
        "current": pki.current_kid.hex(),
        "signers": [
            {"kid": kid.hex(), "not_after": cert.not_valid_after_utc.isoformat()}
            for kid, cert in sorted(pki.signer_certs.items())
        ],
    })


@keys_app.command("export-trust")
def keys_export_trust(
    out: Annotated[Path, typer.Option("--out", help="Where to write the trust bundle (JSON).")],
) -> None:
    """Write the signed trust bundle checkpoints download: root certificate, signer
    certificates still needed (also as JWKS) and the current signed status list."""
    from sanad.cli._common import registry
    from sanad.credentials.pki import write_public
    from sanad.registry.db import transaction
    from sanad.registry.status_list import trust_bundle

    reg = registry()
    try:
        with transaction(reg.sessions) as session:
            bundle, summary = trust_bundle(session, settings=reg.settings, key=reg.issuer_key)
        write_public(out, bundle)
        print_json({"out": str(out), **summary})
    finally:
        reg.close()
