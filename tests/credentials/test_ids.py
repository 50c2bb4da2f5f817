import json
from pathlib import Path

import pytest

from sanad.credentials.ids import (
    new_card_number,
    new_registration_number,
    verhoeff_check_digit,
    verhoeff_valid,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "verhoeff.json").read_text())


@pytest.mark.parametrize("case", VECTORS["check_digit"], ids=lambda c: c["digits"])
def test_check_digit_known_answers(case):
    assert verhoeff_check_digit(case["digits"]) == case["check"]


@pytest.mark.parametrize("number", VECTORS["valid"])
def test_valid_numbers(number):
    assert verhoeff_valid(number)


@pytest.mark.parametrize("number", VECTORS["invalid"])
def test_invalid_numbers(number):
    assert not verhoeff_valid(number)


@pytest.mark.parametrize("bad", ["", "12a", "١٢٣", " 12", "1.5"])
def test_check_digit_rejects_non_digits(bad):
    with pytest.raises(ValueError):
        verhoeff_check_digit(bad)


def test_catches_every_single_digit_error_and_adjacent_transposition():
    number = "48205731" + verhoeff_check_digit("48205731")
    for i, ch in enumerate(number):
        for other in "0123456789":
            if other != ch:
                assert not verhoeff_valid(number[:i] + other + number[i + 1 :])
    for i in range(len(number) - 1):
        if number[i] != number[i + 1]:
            swapped = number[:i] + number[i + 1] + number[i] + number[i + 2 :]
            assert not verhoeff_valid(swapped)


@pytest.mark.parametrize(("make", "length"), [(new_card_number, 9), (new_registration_number, 12)])
def test_new_numbers_shape(make, length):
    numbers = {make() for _ in range(200)}
    assert len(numbers) == 200  # random, not sequential or repeated
    for n in numbers:
        assert len(n) == length
        assert n.isascii() and n.isdigit()
        assert n[0] != "0"
        assert verhoeff_valid(n)


def test_new_numbers_are_not_sequential():
    a, b = sorted(int(new_card_number()) for _ in range(2))
    assert b - a != 1 or int(new_card_number()) - b != 1
