"""Top-level commands: init, demo, serve, bench (`verify` lives in sanad/cli/verify.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from sanad.cli._common import app, err, print_json, registry, settings
from sanad.errors import InvalidInput


@app.command()
def init() -> None:
    """Create SANAD_HOME, the database schema, keys and the first admin (idempotent)."""
    from sanad.registry.runtime import ADMIN_USERNAME, init_registry

    s = settings()
    report = init_registry(s)
    err.print(f"sanad home: {s.home.resolve()}  database: {s.db_url.split('@')[-1]}")
    err.print(f"issuer key id: {report.kid}{' (new)' if report.created_issuer_key else ''}")
    if report.created_admin_password:
        err.print(
            f"[bold]created user {ADMIN_USERNAME!r} with one-time password: "
            f"{report.created_admin_password}[/bold]  (shown once; change it)",
            soft_wrap=True,
        )


@app.command()
def demo(
    people: Annotated[int, typer.Option(min=1, help="New synthetic people to enrol.")] = 2000,
    duplicates: Annotated[int, typer.Option(min=0, help="Re-enrolment attempts to inject.")] = 40,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic population.")] = 7,
) -> None:
    """Enrol a synthetic demo population; prints one JSON report on stdout."""
    from sanad.registry.demo import run_demo

    reg = registry()
    try:
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err,
        ) as progress:
            task = progress.add_task("enrolling", total=people)
            report = run_demo(
                reg, people=people, duplicates=duplicates, seed=seed,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        reg.close()
    print_json(report.to_json())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(
        min=1, help="Worker processes (about one per core; each has its own caches and rate "
        "limits, see docs/api.md).")] = 1,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = True,
) -> None:
    """Serve the web UI and the REST API (OpenAPI at /docs)."""
    import uvicorn

    from sanad.app import create_app

    err.print(f"serving http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    # uvloop and httptools (dependencies) are picked by uvicorn's "auto" loop and parser.
    if workers == 1:
        uvicorn.run(create_app(settings()), host=host, port=port, log_level="info",
                    access_log=access_log)
    else:
        # Each worker process builds its own app from the same environment.
        uvicorn.run("sanad.app:create_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", access_log=access_log)


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="Benchmark name (e.g. dedup).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="key=value (repeatable).")
    ] = None,
    results_dir: Annotated[Path, typer.Option(help="Where JSON results go.")] = Path(
        "bench/results"
    ),
) -> None:
    """Run a named benchmark; prints a table (or JSON) and writes JSON under bench/results/."""
    from sanad.bench.runner import run_benchmark

    params: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param expects key=value, got {item!r}", field="param")
        params[key] = value  # the runner converts to each parameter's type
    run_benchmark(name, params=params, json_output=json_output, results_dir=results_dir)
