import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sanad.credentials.mrz import (
    MrzError,
    TD1Data,
    check_digit,
    dob_field,
    mrz_name,
    parse_mrz,
    parse_td1,
    td1_lines,
    transliterate,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "mrz_td1.json").read_text())
SPECIMEN = VECTORS["icao_specimen"]


def specimen_data() -> TD1Data:
    d: dict[str, Any] = dict(SPECIMEN["data"])
    d["date_of_expiry"] = date.fromisoformat(d["date_of_expiry"])
    return TD1Data(**d)


def sanad_data(**overrides: Any) -> TD1Data:
    values: dict[str, Any] = {
        "document_number": "482057314",
        "issuing_state": "XXA",
        "nationality": "SYR",
        "date_of_birth": "900517",
        "sex": "F",
        "date_of_expiry": date(2031, 3, 1),
        "surname": "Al-Hassan",
        "given_names": "Amira Nour",
    }
    values.update(overrides)
    return TD1Data(**values)


@pytest.mark.parametrize("case", VECTORS["check_digits"], ids=lambda c: c["field"][:12])
def test_check_digit_worked_examples(case):
    assert check_digit(case["field"]) == case["check"]


def test_check_digit_rejects_characters_outside_the_alphabet():
    with pytest.raises(MrzError):
        check_digit("ab1")


def test_specimen_each_check_digit():
    line1, line2, _ = SPECIMEN["lines"]
    assert check_digit(line1[5:14]) == line1[14] == "7"
    assert check_digit(line2[0:6]) == line2[6] == "2"
    assert check_digit(line2[8:14]) == line2[14] == "9"
    composite = line1[5:30] + line2[0:7] + line2[8:15] + line2[18:29]
    assert check_digit(composite) == line2[29] == "6"


def test_specimen_parses_valid_with_fields():
    result = parse_td1(SPECIMEN["lines"])
    assert result.valid
    assert result.failed_checks == []
    assert result.fields == SPECIMEN["fields"]


def test_specimen_is_rebuilt_exactly():
    assert td1_lines(specimen_data()) == SPECIMEN["lines"]


def test_sanad_default_document_code_and_round_trip():
    lines = td1_lines(sanad_data())
    assert [len(line) for line in lines] == [30, 30, 30]
    assert lines[0].startswith("IDXXA482057314")
    assert lines[2] == "AL<HASSAN<<AMIRA<NOUR<<<<<<<<<"
    result = parse_td1(lines)
    assert result.valid, result.failed_checks
    assert result.fields["document_number"] == "482057314"
    assert result.fields["nationality"] == "SYR"
    assert result.fields["surname"] == "AL HASSAN"
    assert result.fields["given_names"] == "AMIRA NOUR"


@pytest.mark.parametrize("nationality", ["XXA", "XXB", "XXC", "XXX"])
def test_stateless_and_refugee_codes(nationality):
    result = parse_td1(td1_lines(sanad_data(nationality=nationality)))
    assert result.valid
    assert result.fields["nationality"] == nationality


def test_year_only_birth_date():
    field = dob_field(date(1985, 1, 1), "year")
    assert field == "85<<<<"
    lines = td1_lines(sanad_data(date_of_birth=field))
    assert lines[1][:7] == "85<<<<" + check_digit("85<<<<")
    assert parse_td1(lines).valid


def test_dob_field_precisions():
    assert dob_field(date(2003, 11, 9), "exact") == "031109"
    assert dob_field(date(2003, 11, 9), "estimated") == "031109"
    with pytest.raises(ValueError):
        dob_field(date(2003, 11, 9), "about")


@pytest.mark.parametrize(("sex", "written"), [("M", "M"), ("F", "F"), ("<", "<"), ("X", "<")])
def test_sex(sex, written):
    assert td1_lines(sanad_data(sex=sex))[1][7] == written


# Each check digit changed: its own check fails, and so does the composite, whose span covers
# the three other check digits too (line 1 pos 15, line 2 pos 7 and 15).
@pytest.mark.parametrize(
    ("line", "pos", "expected"),
    [
        (0, 14, ["document_number", "composite"]),
        (1, 6, ["date_of_birth", "composite"]),
        (1, 14, ["date_of_expiry", "composite"]),
        (1, 29, ["composite"]),
    ],
)
def test_each_check_digit_failure_is_named(line, pos, expected):
    lines = list(SPECIMEN["lines"])
    wrong = str((int(lines[line][pos]) + 1) % 10)
    lines[line] = lines[line][:pos] + wrong + lines[line][pos + 1 :]
    result = parse_td1(lines)
    assert not result.valid
    assert result.failed_checks == expected


@pytest.mark.parametrize(
    ("name", "line", "pos"),
    [
        ("document_number", 0, 7),
        ("date_of_birth", 1, 2),
        ("date_of_expiry", 1, 10),
    ],
)
def test_corrupted_field_is_named_alone_when_composite_recomputed(name, line, pos):
    lines = list(SPECIMEN["lines"])
    wrong = str((int(lines[line][pos]) + 3) % 10)
    lines[line] = lines[line][:pos] + wrong + lines[line][pos + 1 :]
    composite = lines[0][5:30] + lines[1][0:7] + lines[1][8:15] + lines[1][18:29]
    lines[1] = lines[1][:29] + check_digit(composite)
    assert parse_td1(lines).failed_checks == [name]


def test_optional_data_is_covered_by_the_composite_only():
    lines = list(SPECIMEN["lines"])
    # "B" (value 11), not "A": A's value 10 contributes nothing modulo 10 at any weight.
    lines[1] = lines[1][:18] + "B" + lines[1][19:]
    assert parse_td1(lines).failed_checks == ["composite"]


@pytest.mark.parametrize(
    "lines",
    [
        [],
        SPECIMEN["lines"][:2],
        [*SPECIMEN["lines"], SPECIMEN["lines"][2]],
        [SPECIMEN["lines"][0][:29], *SPECIMEN["lines"][1:]],
        [SPECIMEN["lines"][0] + "<", *SPECIMEN["lines"][1:]],
        [SPECIMEN["lines"][0].lower(), *SPECIMEN["lines"][1:]],
        [SPECIMEN["lines"][0][:29] + " ", *SPECIMEN["lines"][1:]],
        [SPECIMEN["lines"][0][:29] + "É", *SPECIMEN["lines"][1:]],
        "I<UTO",
    ],
)
def test_wrong_shape_raises(lines):
    with pytest.raises(MrzError) as info:
        parse_td1(lines)
    assert info.value.code == "invalid_mrz"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Eriksson", "ERIKSSON"),
        ("Anna Maria", "ANNA<MARIA"),
        ("Ülkü Şahin-Özdemir", "ULKU<SAHIN<OZDEMIR"),
        ("O'Brien", "OBRIEN"),
        ("O’Brien", "OBRIEN"),
        ("van  der - Berg", "VAN<DER<BERG"),
        ("  Nour ", "NOUR"),
        ("Straße", "STRASSE"),
        ("Øre Æsir", "OERE<AESIR"),
        ("Nguyễn Thị", "NGUYEN<THI"),
        ("Jean-Luc II.", "JEAN<LUC<II"),
        ("محمد", ""),
        ("Ahmad محمد", "AHMAD"),
        ("ANNA<MARIA", "ANNA<MARIA"),
        ("", ""),
    ],
)
def test_transliterate(name, expected):
    assert transliterate(name) == expected


def test_name_line_truncation_and_mononym():
    long = mrz_name("Abdulrahman-Al-Hashemi", "Mohammed Khaled Ibrahim")
    assert len(long) == 30
    assert long == "ABDULRAHMAN<AL<HASHEMI<<MO<K<I"
    assert mrz_name("", "Nour") == "NOUR" + "<" * 26
    assert mrz_name("Nour", "") == "NOUR" + "<" * 26
    assert mrz_name("محمد", "Nour") == "NOUR" + "<" * 26


@pytest.mark.parametrize(
    "overrides",
    [
        {"document_number": "4820573140"},
        {"document_number": "48205731a"},
        {"document_number": ""},
        {"issuing_state": "XX"},
        {"issuing_state": "X1A"},
        {"nationality": "syr"},
        {"date_of_birth": "1990-05-17"},
        {"date_of_birth": "9005"},
        {"sex": "male"},
        {"document_code": "IDX"},
        {"document_code": "1D"},
        {"optional_data_1": "A" * 16},
        {"optional_data_2": "A" * 12},
        {"optional_data_2": "a"},
    ],
)
def test_fields_that_do_not_fit_raise(overrides):
    with pytest.raises(MrzError):
        td1_lines(sanad_data(**overrides))


def test_optional_data_round_trips():
    lines = td1_lines(sanad_data(optional_data_1="REG12345", optional_data_2="X1"))
    result = parse_td1(lines)
    assert result.valid
    assert result.fields["optional_data_1"] == "REG12345"
    assert result.fields["optional_data_2"] == "X1"


@pytest.mark.parametrize(
    ("surname", "given", "length", "expected"),
    [
        # Fits: no truncation, filler to the end.
        ("Eriksson", "Anna Maria", 30, "ERIKSSON<<ANNA<MARIA" + "<" * 10),
        # Secondary components shortened, last first, down to initials; ends with a letter.
        ("Abdulrahman-Al-Hashemi", "Mohammed Khaled Ibrahim", 30,
         "ABDULRAHMAN<AL<HASHEMI<<MO<K<I"),
        ("Al-Hassan", "Mohammed Khaled Ibrahim Yusuf", 30, "AL<HASSAN<<MOHAMMED<KHALED<I<Y"),
        # Secondary dropped entirely when even its initials do not fit; then the primary.
        ("Wolfeschlegelsteinhausenbergerdorff", "Hubert Blaine", 30,
         "WOLFESCHLEGELSTEINHAUSENBERGER"),
        # TD3 field is 39 wide.
        ("Eriksson", "Anna Maria", 39, "ERIKSSON<<ANNA<MARIA" + "<" * 19),
    ],
)
def test_icao_truncation(surname, given, length, expected):
    name = mrz_name(surname, given, length)
    assert len(name) == length
    assert name == expected.ljust(length, "<")


def test_truncated_names_end_with_a_letter():
    name = mrz_name("Abdulrahman-Al-Hashemi", "Mohammed Khaled Ibrahim Yusuf Ali")
    # Five initials do not fit: the last two are dropped and their room goes back to the first.
    assert name == "ABDULRAHMAN<AL<HASHEMI<<MO<K<I"


@pytest.mark.parametrize(
    "lines",
    [["P<UTO" + "A" * 39, "L898902C3"], ["A" * 36], [], "I<UTO", ["a" * 36, "b" * 36],
     ["I" * 36, "I" * 44]],
)
def test_parse_mrz_refuses_what_is_not_an_mrz(lines):
    with pytest.raises(MrzError):
        parse_mrz(lines)


def test_parse_mrz_td3_personal_number_filler_check_digit():
    line1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
    body = "L898902C36UTO7408122F1204159" + "<" * 14
    composite = check_digit(body[0:10] + body[13:20] + body[21:42] + "<")
    result = parse_mrz([line1, body + "<" + composite])
    assert result.valid, result.failed_checks
    assert result.format == "TD3" and result.fields["personal_number"] == ""
