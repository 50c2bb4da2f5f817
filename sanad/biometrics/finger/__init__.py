"""Fingerprints as minutiae: ISO/IEC 19794-2:2005 records, a matcher, synthetic captures.

Public API (what enrolment and the ABIS use):

* `FingerMinutiaeRecord`, `FingerView`, `Minutia`, `FingerPosition` — the template model;
* `encode_record` / `decode_record` — the ISO/IEC 19794-2:2005 binary layout
  (`FingerTemplateError`, code ``invalid_finger_template``, for anything malformed);
* `prepare`, `prepare_fingers`, `match`, `match_many`, `compare_fingers` — the minutiae
  matcher (scores in [0, 1]).
"""

from sanad.biometrics.finger.iso19794 import EDITION, decode_record, encode_record
from sanad.biometrics.finger.matcher import (
    DEFAULT_PARAMS,
    FingerComparison,
    MatcherParams,
    PreparedFinger,
    compare_fingers,
    match,
    match_many,
    prepare,
    prepare_fingers,
)
from sanad.biometrics.finger.template import (
    TEN_FINGERS,
    FingerMinutiaeRecord,
    FingerPosition,
    FingerTemplateError,
    FingerView,
    ImpressionType,
    Minutia,
    MinutiaType,
)

__all__ = [
    "DEFAULT_PARAMS",
    "EDITION",
    "TEN_FINGERS",
    "FingerComparison",
    "FingerMinutiaeRecord",
    "FingerPosition",
    "FingerTemplateError",
    "FingerView",
    "ImpressionType",
    "MatcherParams",
    "Minutia",
    "MinutiaType",
    "PreparedFinger",
    "compare_fingers",
    "decode_record",
    "encode_record",
    "match",
    "match_many",
    "prepare",
    "prepare_fingers",
]
