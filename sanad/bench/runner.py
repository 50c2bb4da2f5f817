"""The benchmark harness: registry, parameter resolution, result files and output.

Every run leaves ``<results_dir>/<name>-<UTC timestamp>.json`` holding the parameters, the
figures, the notes and the machine, so numbers quoted in docs/benchmarks.md can be traced to
a file.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from sanad.bench import BenchmarkParamError, BenchResult, UnknownBenchmark
from sanad.bench.abis import run_abis
from sanad.bench.accuracy import run_accuracy
from sanad.bench.api import run_api
from sanad.bench.crash import run_crash
from sanad.bench.dedup import run_dedup
from sanad.bench.import_bench import run_import
from sanad.bench.prefilter import run_prefilter
from sanad.bench.soak import run_soak
from sanad.bench.verify import run_verify

__all__ = [
    "BENCHMARKS",
    "BenchResult",
    "BenchmarkParamError",
    "UnknownBenchmark",
    "machine_info",
    "run_benchmark",
]

BENCHMARKS: dict[str, Callable[..., BenchResult]] = {
    "dedup": run_dedup,
    "crash": run_crash,
    "soak": run_soak,
    "api": run_api,
    "accuracy": run_accuracy,
    "import": run_import,
    "verify": run_verify,
    "abis": run_abis,
    "prefilter": run_prefilter,
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Convert ``value`` to the type of ``default``; strings come from the command line."""
    kind = type(default)
    try:
        if isinstance(value, str) and kind is not str:
            if kind is bool:
                lowered = value.strip().lower()
                if lowered not in _TRUE | _FALSE:
                    raise ValueError(value)
                return lowered in _TRUE
            return kind(value)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    except ValueError:
        raise BenchmarkParamError(
            f"parameter {name!r} expects {kind.__name__}, got {value!r}"
        ) from None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise BenchmarkParamError(f"parameter {name!r} expects {kind.__name__}, got {value!r}")
    return value


def _resolve_params(
    name: str, fn: Callable[..., BenchResult], given: dict[str, Any]
) -> dict[str, Any]:
    defaults = {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.default is not inspect.Parameter.empty
    }
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise BenchmarkParamError(
            f"benchmark {name!r} has no parameter {', '.join(unknown)}; "
            f"known: {', '.join(sorted(defaults))}"
        )
    return {
        key: _coerce(key, given.get(key, default), default) for key, default in defaults.items()
    }


def machine_info() -> dict[str, Any]:
    """Versions and CPU facts that a benchmark figure depends on."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
        "cpu_count": os.cpu_count(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "machine": platform.machine(),
        "system": platform.system(),
    }


def _write_record(results_dir: Path, name: str, stamp: dt.datetime, record: dict[str, Any]) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    base = f"{name}-{stamp.strftime('%Y%m%dT%H%M%SZ')}"
    text = json.dumps(record, indent=2, allow_nan=False) + "\n"
    for attempt in range(1, 1000):
        path = results_dir / (f"{base}.json" if attempt == 1 else f"{base}-{attempt}.json")
        try:
            # Exclusive create: two runs within one second must not overwrite each other.
            with path.open("x", encoding="utf-8") as f:
                f.write(text)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"too many results named {base}*.json in {results_dir}")


def _print_table(result: BenchResult, path: Path) -> None:
    console = Console(file=sys.stdout)
    table = Table(title=f"sanad bench {result.name}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.figures.items():
        table.add_row(key, f"{value:.4g}")
    console.print(table)
    for key, note in result.notes.items():
        console.print(f"[bold]{key}[/bold]: {note}")
    console.print(f"results: {path}")


def run_benchmark(
    name: str, *, params: dict[str, Any], json_output: bool, results_dir: Path
) -> BenchResult:
    """Run benchmark ``name`` with ``params`` (missing ones take their defaults).

    Writes the result file, then prints a Rich table or, with ``json_output``, exactly one
    JSON object (the file's content plus ``results_file``) on stdout. Raises `UnknownBenchmark`
    for an unknown name and `BenchmarkParamError` for a bad parameter.
    """
    fn = BENCHMARKS.get(name)
    if fn is None:
        raise UnknownBenchmark(
            f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}"
        )
    result = fn(**_resolve_params(name, fn, params))
    for key, value in result.figures.items():
        if not np.isfinite(value):
            raise ValueError(f"benchmark {name!r} produced a non-finite figure {key}={value}")

    stamp = dt.datetime.now(dt.UTC)
    record: dict[str, Any] = {
        "name": result.name,
        "params": result.params,
        "figures": {key: float(value) for key, value in result.figures.items()},
        "notes": result.notes,
        "machine": machine_info(),
        "timestamp": stamp.isoformat(timespec="seconds"),
    }
    path = _write_record(Path(results_dir), name, stamp, record)
    if json_output:
        sys.stdout.write(json.dumps({**record, "results_file": str(path)}, allow_nan=False) + "\n")
    else:
        _print_table(result, path)
    return result
