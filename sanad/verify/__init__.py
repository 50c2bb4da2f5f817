"""Offline verifier: ships with `sanad.credentials` alone (no database, no registry)."""

from sanad.verify.face import FaceEncoder, FaceProbe, face_matches, probe_from_image
from sanad.verify.verifier import REASONS, VerificationResult, verify

__all__ = [
    "REASONS",
    "FaceEncoder",
    "FaceProbe",
    "VerificationResult",
    "face_matches",
    "probe_from_image",
    "verify",
]
