"""Credentials: identifiers, the TD1 MRZ, issuer keys and trust lists, the signed QR.

Everything here is pure (no database), so `sanad.verify` can ship with this package alone.
The recipe most callers need: `load_or_create_issuer_key` → `CardClaims` → `issue_qr`, and on
the other side `TrustList` → `sanad.verify.verify`.
"""

from sanad.credentials.card import CardClaims, issue_qr, td1_data
from sanad.credentials.ids import (
    new_card_number,
    new_registration_number,
    verhoeff_check_digit,
    verhoeff_valid,
)
from sanad.credentials.keys import (
    IssuerKey,
    KeyStoreError,
    PublicKey,
    TrustList,
    TrustListError,
    load_or_create_issuer_key,
    trust_list_from_keys_dir,
)
from sanad.credentials.mrz import MrzError, MrzResult, TD1Data, parse_td1, td1_lines
from sanad.credentials.qr import (
    DEFAULT_PREFIX,
    CredentialFormatError,
    MalformedClaims,
    qr_png,
    qr_version,
    sign_claims,
)

__all__ = [
    "DEFAULT_PREFIX",
    "CardClaims",
    "CredentialFormatError",
    "IssuerKey",
    "KeyStoreError",
    "MalformedClaims",
    "MrzError",
    "MrzResult",
    "PublicKey",
    "TD1Data",
    "TrustList",
    "TrustListError",
    "issue_qr",
    "load_or_create_issuer_key",
    "new_card_number",
    "new_registration_number",
    "parse_td1",
    "qr_png",
    "qr_version",
    "sign_claims",
    "td1_data",
    "td1_lines",
    "trust_list_from_keys_dir",
    "verhoeff_check_digit",
    "verhoeff_valid",
]
