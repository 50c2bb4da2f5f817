"""Exports with safeguards: suppressed aggregates, and record exports under sharing agreements."""
