"""Card and registration numbers: random digits protected by a Verhoeff check digit.

Numbers are drawn from `secrets`, never sequential and never derived from personal data, so a
number reveals nothing about the person or the order of registration. Verhoeff (rather than
Luhn) catches every single-digit error and every adjacent transposition, the two mistakes a
clerk typing a number from a card makes most.
"""

from __future__ import annotations

import secrets

__all__ = [
    "new_card_number",
    "new_registration_number",
    "verhoeff_check_digit",
    "verhoeff_valid",
]

# The dihedral group D5 multiplication table, the permutation table and the inverse table from
# Verhoeff (1969), as published in every reference implementation.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)

CARD_NUMBER_LENGTH = 9
"""8 random digits + 1 check digit: fills the 9-character TD1 document-number field exactly."""

REGISTRATION_NUMBER_LENGTH = 12
"""11 random digits + 1 check digit."""


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit() also accepts e.g. Arabic-Indic and superscript digits; the tables need 0-9.
    return bool(text) and text.isascii() and text.isdigit()


def _checksum(digits: str, *, offset: int) -> int:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _D[c][_P[(i + offset) % 8][int(ch)]]
    return c


def verhoeff_check_digit(digits: str) -> str:
    """Return the Verhoeff check digit to append to `digits` (ASCII digits only).

    Raises `ValueError` for an empty string or any character other than 0-9.
    """
    if not _is_ascii_digits(digits):
        raise ValueError("verhoeff_check_digit needs a non-empty string of ASCII digits")
    # offset 1: the check digit itself will occupy position 0 once appended.
    return str(_INV[_checksum(digits, offset=1)])


def verhoeff_valid(number: str) -> bool:
    """True when `number` (payload digits followed by their check digit) passes Verhoeff.

    Anything that is not a string of at least two ASCII digits is simply not valid.
    """
    if not isinstance(number, str) or len(number) < 2 or not _is_ascii_digits(number):
        return False
    return _checksum(number, offset=0) == 0


def _random_digits(count: int) -> str:
    # First digit non-zero so the number keeps its length when someone stores it as an integer.
    first = secrets.choice("123456789")
    rest = "".join(secrets.choice("0123456789") for _ in range(count - 1))
    return first + rest


def new_card_number() -> str:
    """A fresh random card number: 8 random digits (first non-zero) + Verhoeff digit."""
    body = _random_digits(CARD_NUMBER_LENGTH - 1)
    return body + verhoeff_check_digit(body)


def new_registration_number() -> str:
    """A fresh random registration number: 11 random digits (first non-zero) + Verhoeff digit."""
    body = _random_digits(REGISTRATION_NUMBER_LENGTH - 1)
    return body + verhoeff_check_digit(body)
