"""Biographic normalisation and similarity."""

from __future__ import annotations

from datetime import date

import pytest

from sanad.abis.biographic import (
    BioRecord,
    arabic_skeleton,
    dob_compatible,
    latin_skeleton,
    name_key,
    similarity,
)


@pytest.mark.parametrize("variants", [
    ["Mohammad", "Muhammad", "Mohammed", "Mohamed", "Muhammed"],
    ["Ahmad", "Ahmed"],
    ["Al-Hassan", "El Hassan", "Hassan", "al hasan"],
    ["Abdul Rahman", "Abdulrahman", "Abd-ul-Rahman"],
    ["Yusuf", "Youssef", "Yousef"],
    ["Khalid", "Khaled"],
    ["Omar", "Umar", "Oumar"],
    ["Osama", "Usama", "Ousama"],
    ["Ibrahim", "Ebrahim", "Ibraheem"],
    ["Ilyas", "Elias", "Elyas"],
    ["Othman", "Uthman"],
])
def test_transliteration_variants_share_a_skeleton(variants: list[str]) -> None:
    assert len({latin_skeleton(v) for v in variants}) == 1, [latin_skeleton(v) for v in variants]


def test_different_names_differ() -> None:
    assert latin_skeleton("Omar") != latin_skeleton("Amir")
    assert latin_skeleton("Omar") != latin_skeleton("Amr")  # عمر and عمرو: two names
    assert latin_skeleton("Iman") != latin_skeleton("Aman")
    assert name_key("Ali", "Haidari") != name_key("Ali", "Karimi")


def test_arabic_letter_variants_and_diacritics() -> None:
    assert arabic_skeleton("أَحْمَد") == arabic_skeleton("احمد")
    assert arabic_skeleton("فاطمة") == arabic_skeleton("فاطمه")
    assert arabic_skeleton("الحسن") == arabic_skeleton("حسن")
    assert arabic_skeleton("مـحـمـد") == arabic_skeleton("محمد")  # tatweel


def _rec(**kw: object) -> BioRecord:
    base: dict[str, object] = dict(given_name="Mohammad", family_name="Karimi", father_name="Ali",
                                   given_name_ar="محمد", family_name_ar="كريمي",
                                   date_of_birth=date(1990, 5, 1), dob_precision="exact", sex="M")
    base.update(kw)
    return BioRecord(**base)  # type: ignore[arg-type]


def test_dob_tolerance_follows_precision() -> None:
    assert dob_compatible(_rec(), _rec())
    assert not dob_compatible(_rec(), _rec(date_of_birth=date(1990, 5, 2)))
    assert dob_compatible(_rec(dob_precision="year", date_of_birth=date(1990, 1, 1)), _rec())
    assert not dob_compatible(_rec(dob_precision="year", date_of_birth=date(1991, 1, 1)), _rec())
    assert dob_compatible(_rec(dob_precision="estimated", date_of_birth=date(1987, 1, 1)), _rec())
    assert not dob_compatible(
        _rec(dob_precision="estimated", date_of_birth=date(1985, 1, 1)), _rec()
    )


def test_similarity() -> None:
    assert similarity(_rec(), _rec(given_name="Muhammad")) == 1.0
    assert similarity(_rec(), _rec(sex="F")) == 0.0
    assert similarity(_rec(), _rec(given_name="Omar", given_name_ar="عمر")) < 0.85
    damped = similarity(_rec(), _rec(father_name="Zabihullah"))
    assert 0.8 <= damped < 1.0
