"""Biographic deduplication: names normalised across transliteration and script variants.

Names of the same person arrive spelled differently (Muhammad / Mohammad / Mohammed; Arabic
script with or without hamza, diacritics or tatweel). We compare *skeletons*: Latin names are
folded to ASCII, lower-cased, common transliteration digraphs collapsed and vowels after the
first letter dropped (the consonant skeleton survives vowel variation, the first letter anchors
it; a first vowel keeps only its class, e/i or o/u: Omar / Umar, Osama / Usama, Ibrahim /
Ebrahim, Ilyas / Elias — one Arabic letter, romanised either way); Arabic names lose diacritics
and tatweel and have letter variants unified. A blocking key (given + family skeleton) finds
candidates in the database through an index; a similarity score (RapidFuzz on the skeletons,
date of birth within the tolerance its precision allows, father's name) ranks them.

The skeletons are pure functions of the name and cached (registers repeat a few thousand names
millions of times; bulk import scores every probable pair).

Biographic similarity alone never decides `duplicate`: it only adds candidates to an
adjudication case, or drives a mandatory case when biometrics were refused.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from rapidfuzz.distance import JaroWinkler

_ARABIC_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_VARIANTS = str.maketrans(
    {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي", "ؤ": "و", "ئ": "ي", "ء": ""}
)
# Order matters: longer digraphs first. These collapse common romanisations of one sound.
_LATIN_FOLDS = (
    ("kh", "k"), ("gh", "g"), ("sh", "s"), ("ch", "s"), ("th", "t"), ("dh", "d"), ("ph", "f"),
    ("q", "k"), ("ck", "k"), ("z", "s"), ("ou", "u"), ("ee", "i"), ("oo", "u"), ("w", "u"),
    ("y", "i"), ("j", "g"),
)
_PARTICLES = frozenset({"al", "el", "ul", "bin", "ibn", "bint"})
# A first vowel anchors the skeleton by its class only: ع/ا + damma is written O or U, + kasra
# E or I. `a` stays apart (Amr ≠ Omar). Changing this changes every stored `name_key`: add a
# migration that recomputes them (as 0012_name_key_vowel_classes does).
_FIRST_VOWEL = {"e": "i", "o": "u"}
_ABD = re.compile(r"^abd(ul|al|el|ol)")


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


@functools.lru_cache(maxsize=100_000)
def latin_skeleton(name: str) -> str:
    """Consonant skeleton of a Latin-script name: 'Mohammed' and 'Muhammad' both give 'mhmd'."""
    words = []
    for raw in re.split(r"[\s\-']+", _ascii(name)):
        if raw in _PARTICLES:
            continue  # "Abd-ul-Rahman", "Abd al Rahman": linking particles carry no identity
        word = re.sub(r"[^a-z]", "", _ABD.sub("abd", raw))
        if not word:
            continue
        for old, new in _LATIN_FOLDS:
            word = word.replace(old, new)
        head, tail = _FIRST_VOWEL.get(word[0], word[0]), re.sub(r"[aeiou]", "", word[1:])
        word = re.sub(r"(.)\1+", r"\1", head + tail)  # doubled letters are spelling noise
        words.append(word)
    return "".join(words)


@functools.lru_cache(maxsize=100_000)
def arabic_skeleton(name: str) -> str:
    """Arabic-script name without diacritics/tatweel, letter variants unified, no article."""
    text = _ARABIC_DIACRITICS.sub("", unicodedata.normalize("NFKC", name)).translate(
        _ARABIC_VARIANTS
    )
    words = [re.sub(r"^ال", "", w) for w in text.split()]
    return "".join(words)


def name_key(given_name: str, family_name: str) -> str:
    """Blocking key stored on each person (indexed): given + family Latin skeletons."""
    return f"{latin_skeleton(given_name)}|{latin_skeleton(family_name)}"[:120]


@dataclass(frozen=True)
class BioRecord:
    """The biographic fields deduplication looks at."""

    given_name: str
    family_name: str
    father_name: str
    given_name_ar: str
    family_name_ar: str
    date_of_birth: date
    dob_precision: str
    sex: str


def dob_tolerance_years(precision_a: str, precision_b: str) -> int:
    """How far apart two recorded birth years may be and still be one person."""
    if "estimated" in (precision_a, precision_b):
        return 3
    return 0


def dob_compatible(a: BioRecord, b: BioRecord) -> bool:
    """Dates of birth agree within what their precision allows."""
    if a.dob_precision == "exact" and b.dob_precision == "exact":
        return a.date_of_birth == b.date_of_birth
    tol = dob_tolerance_years(a.dob_precision, b.dob_precision)
    return abs(a.date_of_birth.year - b.date_of_birth.year) <= tol


def _sim(x: str, y: str) -> float:
    if not x or not y:
        return 0.0
    return float(JaroWinkler.normalized_similarity(x, y))


def similarity(a: BioRecord, b: BioRecord) -> float:
    """Biographic similarity in [0, 1]; 0 when sex differs or birth dates are incompatible."""
    if a.sex != b.sex or not dob_compatible(a, b):
        return 0.0
    latin = (_sim(latin_skeleton(a.given_name), latin_skeleton(b.given_name))
             + _sim(latin_skeleton(a.family_name), latin_skeleton(b.family_name))) / 2
    arabic_pairs = [(arabic_skeleton(x), arabic_skeleton(y))
                    for x, y in ((a.given_name_ar, b.given_name_ar),
                                 (a.family_name_ar, b.family_name_ar)) if x and y]
    names = latin
    if arabic_pairs:
        names = max(latin, sum(_sim(x, y) for x, y in arabic_pairs) / len(arabic_pairs))
    father = 1.0
    if a.father_name and b.father_name:
        father = _sim(latin_skeleton(a.father_name), latin_skeleton(b.father_name))
    # Father's name is weaker evidence (often missing or recorded differently): it only damps.
    return round(names * (0.8 + 0.2 * father), 4)
