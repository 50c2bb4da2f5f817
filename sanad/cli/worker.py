"""`sanad worker`: deliver events (webhooks, notifications) and run import jobs."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from sanad.cli._common import app, err, print_json, registry


@app.command("worker")
def worker(
    until_idle: Annotated[bool, typer.Option(help="Exit when nothing is pending.")] = False,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this long idle-ish.")
                           ] = None,
) -> None:
    """Run the background worker (SIGTERM/Ctrl-C stop it; deliveries are at-least-once)."""
    from sanad.notify.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    reg = registry()
    try:
        err.print("worker started")
        stats = run_worker(reg, until_idle=until_idle, max_seconds=max_seconds)
    except KeyboardInterrupt:
        err.print("worker stopped")
        return
    finally:
        reg.close()
    print_json(stats.__dict__)
