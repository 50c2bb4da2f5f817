"""Machine-readable zone for ID-1 size cards (ICAO Doc 9303 Part 3 and Part 5, format TD1).

Three lines of 30 characters from the alphabet A-Z, 0-9 and the filler `<`:

    line 1: document code (2) issuing state (3) document number (9) check (1) optional (15)
    line 2: birth date (6) check (1) sex (1) expiry (6) check (1) nationality (3)
            optional (11) composite check (1)
    line 3: SURNAME<<GIVEN<NAMES, padded with `<`

Names are transliterated to the MRZ alphabet and, when too long, truncated per Doc 9303 Part 3
(see `mrz_name`). `parse_mrz` reads and checks TD1, TD2 (2×36) and TD3 (2×44) documents.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sanad.errors import SanadError

__all__ = [
    "MrzError",
    "MrzResult",
    "TD1Data",
    "check_digit",
    "dob_field",
    "mrz_name",
    "parse_mrz",
    "parse_td1",
    "td1_lines",
    "transliterate",
]

LINE_LENGTH = 30
_MRZ_CHARS = re.compile(r"[A-Z0-9<]*")
_WEIGHTS = (7, 3, 1)

# Latin letters that NFKD does not decompose into a base letter + combining marks; the
# replacements follow Doc 9303 Part 3's transliteration table.
_NON_DECOMPOSING = {
    "ß": "SS",
    "Æ": "AE",
    "æ": "AE",
    "Ø": "OE",
    "ø": "OE",
    "Œ": "OE",
    "œ": "OE",
    "Þ": "TH",
    "þ": "TH",
    "Ð": "D",
    "ð": "D",
    "Đ": "D",
    "đ": "D",
    "Ł": "L",
    "ł": "L",
    "Ħ": "H",
    "ħ": "H",
    "ı": "I",
    "Ŋ": "N",
    "ŋ": "N",
}
_APOSTROPHES = frozenset("'’‘ʼ`´")
_SEPARATORS = frozenset(" -‐‑‒–—<,\t")


class MrzError(SanadError):
    """An MRZ cannot be built or parsed: wrong shape, wrong alphabet or a field that won't fit."""

    code = "invalid_mrz"
    status = 422


def _char_value(ch: str) -> int:
    if "0" <= ch <= "9":
        return ord(ch) - ord("0")
    if "A" <= ch <= "Z":
        return ord(ch) - ord("A") + 10
    if ch == "<":
        return 0
    raise MrzError(f"character {ch!r} is not allowed in an MRZ")


def check_digit(field: str) -> str:
    """ICAO 9303 Part 3 check digit of `field`: weights 7,3,1 repeating, `<`=0, A=10 … Z=35."""
    total = sum(_char_value(ch) * _WEIGHTS[i % 3] for i, ch in enumerate(field))
    return str(total % 10)


def transliterate(name: str) -> str:
    """Render a name in the MRZ alphabet (A-Z and `<`).

    Diacritics are stripped (É → E, Ç → C), a few letters that have no decomposition follow the
    Doc 9303 table (ß → SS, Ø → OE), apostrophes vanish (O'Brien → OBRIEN), spaces and hyphens
    become one `<`, and everything else (digits, punctuation, non-Latin scripts) is dropped.
    A name in Arabic script therefore yields "", and the caller uses the Latin-script name.
    """
    out: list[str] = []
    pending_separator = False
    for raw in name:
        if raw in _APOSTROPHES:
            continue
        if raw in _SEPARATORS or raw.isspace():
            pending_separator = bool(out)
            continue
        text = _NON_DECOMPOSING.get(raw)
        if text is None:
            text = "".join(
                c for c in unicodedata.normalize("NFKD", raw) if not unicodedata.combining(c)
            ).upper()
        letters = "".join(c for c in text if "A" <= c <= "Z")
        if not letters:
            continue
        if pending_separator:
            # Runs of separators collapse to one `<`: `<<` is reserved for surname|given names.
            out.append("<")
            pending_separator = False
        out.append(letters)
    return "".join(out)


def _shorten(components: list[str], excess: int) -> int:
    """Cut characters from the end of the components, last component first, each down to its
    initial; returns the excess still left."""
    for i in range(len(components) - 1, -1, -1):
        if excess <= 0:
            break
        cut = min(excess, len(components[i]) - 1)
        if cut > 0:
            components[i] = components[i][: len(components[i]) - cut]
            excess -= cut
    return excess


def mrz_name(surname: str, given_names: str, length: int = LINE_LENGTH) -> str:
    """The MRZ name field: `SURNAME<<GIVEN<NAMES`, padded with `<` to `length` (30 for TD1,
    31 for TD2, 39 for TD3), truncated per ICAO Doc 9303 Part 3 when too long.

    Truncation, in order, until the name fits: (1) the secondary identifier's components are
    shortened from the end, last component first, each to no less than its initial; (2) whole
    secondary components are dropped from the end, the room they free going back to the
    remaining ones; (3) the primary identifier's components are shortened the same way;
    (4) a hard cut. Steps (1)–(3) use every position, so a truncated name ends with a letter
    in the last position, the signal Doc 9303 gives readers that truncation took place.

    A person with a single name (mononym) has it in the primary identifier position, as Doc
    9303 requires, whichever argument it came in.
    """
    primary = [c for c in transliterate(surname).split("<") if c]
    secondary = [c for c in transliterate(given_names).split("<") if c]
    if not primary:
        primary, secondary = secondary, []

    def joined() -> str:
        head = "<".join(primary)
        return head + "<<" + "<".join(secondary) if secondary else head

    original = list(secondary)
    excess = len(joined()) - length
    if excess > 0:
        excess = _shorten(secondary, excess)
    keep = len(original)
    while excess > 0 and keep > 0:
        # Drop the last component and shorten the rest again from their full length, so the
        # space the dropped one frees goes back to the names that remain.
        keep -= 1
        secondary[:] = original[:keep]
        excess = _shorten(secondary, len(joined()) - length)
    if excess > 0:
        excess = _shorten(primary, excess)
    return joined()[:length].ljust(length, "<")


def dob_field(dob: date, precision: str) -> str:
    """The 6-character MRZ birth date: YYMMDD, or YY<<<< when only the year is known.

    `precision` is "exact", "estimated" (both give YYMMDD: Doc 9303 has no marker for an
    estimate) or "year" (month and day become fillers, as Doc 9303 Part 3 allows).
    """
    if precision in ("exact", "estimated"):
        return dob.strftime("%y%m%d")
    if precision == "year":
        return f"{dob.year % 100:02d}<<<<"
    raise ValueError(f"unknown date-of-birth precision {precision!r}")


@dataclass(frozen=True)
class TD1Data:
    """The printed facts that go into a TD1 MRZ; strings in MRZ form except the names."""

    document_number: str
    issuing_state: str
    nationality: str
    date_of_birth: str
    sex: str
    date_of_expiry: date
    surname: str
    given_names: str
    document_code: str = "ID"
    optional_data_1: str = ""
    optional_data_2: str = ""


def _fixed(name: str, value: str, length: int, *, pattern: str = r"[A-Z0-9<]*") -> str:
    if len(value) > length or not re.fullmatch(pattern, value):
        raise MrzError(f"{name} {value!r} does not fit the MRZ ({length} of A-Z, 0-9, <)")
    return value.ljust(length, "<")


def td1_lines(data: TD1Data) -> list[str]:
    """Build the three 30-character TD1 lines, check digits included.

    Raises `MrzError` when a field does not fit its position or uses characters outside the MRZ
    alphabet (names are transliterated first, so they never fail).
    """
    code = _fixed("document_code", data.document_code, 2, pattern=r"[A-Z][A-Z<]")
    state = _fixed("issuing_state", data.issuing_state, 3, pattern=r"[A-Z<]{3}")
    # Longer document numbers would need the Doc 9303 overflow into optional data; sanad card
    # numbers are exactly 9 characters, so that case is refused rather than half-supported.
    number = _fixed("document_number", data.document_number, 9, pattern=r"[A-Z0-9<]+")
    opt1 = _fixed("optional_data_1", data.optional_data_1, 15)
    dob = _fixed("date_of_birth", data.date_of_birth, 6, pattern=r"[0-9<]{6}")
    # "X" (unspecified, as printed in the visual zone) is written as the filler in the MRZ.
    sex = _fixed("sex", "<" if data.sex == "X" else data.sex, 1, pattern=r"[MF<]")
    expiry = data.date_of_expiry.strftime("%y%m%d")
    nationality = _fixed("nationality", data.nationality, 3, pattern=r"[A-Z<]{3}")
    opt2 = _fixed("optional_data_2", data.optional_data_2, 11)

    line1 = code + state + number + check_digit(number) + opt1
    head2 = dob + check_digit(dob) + sex + expiry + check_digit(expiry) + nationality + opt2
    line2 = head2 + check_digit(_composite_input(line1, head2))
    line3 = mrz_name(data.surname, data.given_names)
    return [line1, line2, line3]


def _composite_input(line1: str, line2: str) -> str:
    # Doc 9303 Part 5 §4.2.4: upper line positions 6-30, middle line 1-7, 9-15 and 19-29
    # (1-based, inclusive): everything on line 2 except sex, nationality and the digit itself.
    return line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]


@dataclass(frozen=True)
class MrzResult:
    """Outcome of `parse_td1`/`parse_mrz`: the fields read, the names of the check digits that
    failed, and for every check digit what it should be and what the MRZ has."""

    valid: bool
    fields: dict[str, str] = field(default_factory=dict)
    failed_checks: list[str] = field(default_factory=list)
    format: str = "TD1"
    check_digits: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """JSON for `sanad mrz check`."""
        return {
            "valid": self.valid,
            "format": self.format,
            "fields": self.fields,
            "failed_checks": [
                {"check": name, **self.check_digits[name]} for name in self.failed_checks
            ],
            "check_digits": self.check_digits,
        }


def _run_checks(
    checks: Sequence[tuple[str, str, str]],
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    failed: list[str] = []
    details: dict[str, dict[str, Any]] = {}
    for name, data, digit in checks:
        expected = check_digit(data)
        # Doc 9303 Part 4: an empty optional field may carry `<` as its check digit.
        ok = digit == expected or (digit == "<" and name == "personal_number" and
                                   set(data) <= {"<"})
        details[name] = {"expected": expected, "found": digit, "ok": ok}
        if not ok:
            failed.append(name)
    return failed, details


def _names(field_text: str) -> tuple[str, str]:
    surname, _, given = field_text.partition("<<")
    return surname.replace("<", " ").strip(), given.replace("<", " ").strip()


def _parse_two_line(lines: Sequence[str], width: int, fmt: str) -> MrzResult:
    line1, line2 = lines
    surname, given = _names(line1[5:])
    fields = {
        "document_code": line1[0:2],
        "issuing_state": line1[2:5],
        "surname": surname,
        "given_names": given,
        "document_number": line2[0:9].rstrip("<"),
        "nationality": line2[10:13],
        "date_of_birth": line2[13:19],
        "sex": line2[20],
        "date_of_expiry": line2[21:27],
    }
    checks = [
        ("document_number", line2[0:9], line2[9]),
        ("date_of_birth", line2[13:19], line2[19]),
        ("date_of_expiry", line2[21:27], line2[27]),
    ]
    if fmt == "TD3":
        fields["personal_number"] = line2[28:42].rstrip("<")
        checks.append(("personal_number", line2[28:42], line2[42]))
        composite = line2[0:10] + line2[13:20] + line2[21:43]
    else:
        fields["optional_data"] = line2[28:35].rstrip("<")
        composite = line2[0:10] + line2[13:20] + line2[21:35]
    checks.append(("composite", composite, line2[width - 1]))
    failed, details = _run_checks(checks)
    return MrzResult(valid=not failed, fields=fields, failed_checks=failed, format=fmt,
                     check_digits=details)


_FORMATS = {(3, 30): "TD1", (2, 36): "TD2", (2, 44): "TD3"}


def parse_mrz(lines: Sequence[str]) -> MrzResult:
    """Read a TD1 (3×30), TD2 (2×36) or TD3 (2×44) MRZ, told apart by its shape, and verify
    every check digit. `MrzError` when the lines fit none of the three shapes or use characters
    outside A-Z, 0-9 and `<`."""
    if isinstance(lines, str) or not lines:
        raise MrzError("an MRZ is two or three lines")
    for i, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            raise MrzError(f"MRZ line {i} is not text")
        if not _MRZ_CHARS.fullmatch(line):
            raise MrzError(f"MRZ line {i} has characters outside A-Z, 0-9 and <")
    widths = {len(line) for line in lines}
    fmt = _FORMATS.get((len(lines), widths.pop())) if len(widths) == 1 else None
    if fmt is None:
        raise MrzError(
            "not an MRZ shape: TD1 is 3 lines of 30, TD2 2 lines of 36, TD3 2 lines of 44 "
            f"characters (got {len(lines)} lines of {sorted(len(x) for x in lines)})"
        )
    if fmt == "TD1":
        return parse_td1(lines)
    return _parse_two_line(lines, 36 if fmt == "TD2" else 44, fmt)


def parse_td1(lines: Sequence[str]) -> MrzResult:
    """Read a TD1 MRZ and verify its four check digits.

    Raises `MrzError` only when the input is not shaped like a TD1 (not three lines of 30
    characters from A-Z, 0-9, `<`). A well-shaped MRZ whose check digits disagree gives
    `valid=False` with `failed_checks` naming them: `document_number`, `date_of_birth`,
    `date_of_expiry`, `composite`.
    """
    if isinstance(lines, str) or len(lines) != 3:
        raise MrzError("a TD1 MRZ has exactly three lines")
    for i, line in enumerate(lines, start=1):
        if not isinstance(line, str) or len(line) != LINE_LENGTH:
            raise MrzError(f"TD1 line {i} must be {LINE_LENGTH} characters")
        if not _MRZ_CHARS.fullmatch(line):
            raise MrzError(f"TD1 line {i} has characters outside A-Z, 0-9 and <")
    line1, line2, line3 = lines

    surname, _, given = line3.partition("<<")
    fields = {
        "document_code": line1[0:2],
        "issuing_state": line1[2:5],
        "document_number": line1[5:14].rstrip("<"),
        "optional_data_1": line1[15:30].rstrip("<"),
        "date_of_birth": line2[0:6],
        "sex": line2[7],
        "date_of_expiry": line2[8:14],
        "nationality": line2[15:18],
        "optional_data_2": line2[18:29].rstrip("<"),
        "surname": surname.replace("<", " ").strip(),
        "given_names": given.replace("<", " ").strip(),
    }
    checks = (
        ("document_number", line1[5:14], line1[14]),
        ("date_of_birth", line2[0:6], line2[6]),
        ("date_of_expiry", line2[8:14], line2[14]),
        ("composite", _composite_input(line1, line2), line2[29]),
    )
    failed, details = _run_checks(checks)
    return MrzResult(valid=not failed, fields=fields, failed_checks=failed, format="TD1",
                     check_digits=details)
