"""Offline verifier: ships with `sanad.credentials` alone (no database, no registry)."""

from sanad.verify.verifier import REASONS, VerificationResult, verify

__all__ = ["REASONS", "VerificationResult", "verify"]
