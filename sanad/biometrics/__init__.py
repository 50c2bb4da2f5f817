"""Biometrics: face and finger templates, and synthetic populations for tests and benchmarks."""
