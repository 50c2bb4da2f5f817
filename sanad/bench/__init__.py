"""Benchmarks behind ``sanad bench <name>``: the shared result type and error vocabulary.

`sanad.bench.runner` holds the registry and the harness; each benchmark is a module with one
function taking keyword parameters (all with defaults) and returning a `BenchResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sanad.errors import SanadError


@dataclass
class BenchResult:
    """What one benchmark run measured.

    ``figures`` are the numbers (finite floats) a reader compares across runs; ``notes``
    say how to read them (method, caveats).
    """

    name: str
    params: dict[str, Any]
    figures: dict[str, float]
    notes: dict[str, str] = field(default_factory=dict)


class UnknownBenchmark(SanadError):
    """No benchmark has this name."""

    code = "unknown_benchmark"
    status = 404


class BenchmarkParamError(SanadError):
    """A benchmark parameter is unknown or has a value of the wrong type or range."""

    code = "invalid_benchmark_param"
    status = 422
