"""`sanad sync`: upload the station's queued packets to the centre."""

from __future__ import annotations

from typing import Annotated

import typer

from sanad.cli._common import app, err, print_json, registry


@app.command("sync")
def sync(
    url: Annotated[str | None, typer.Option(help="Centre API base URL (SANAD_SYNC_URL).")] = None,
    token: Annotated[str | None, typer.Option(
        help="Bearer token of a central officer (SANAD_SYNC_TOKEN).")] = None,
) -> None:
    """(Station) send queued packets when a link exists; resumable; prints per-packet results."""
    import httpx

    from sanad.errors import InvalidInput
    from sanad.sync.client import sync_station

    reg = registry()
    try:
        target = url or reg.settings.sync_url
        if not target:
            raise InvalidInput("no centre URL: --url or SANAD_SYNC_URL", field="url")
        with httpx.Client(timeout=reg.settings.sync_timeout_seconds) as client:
            report = sync_station(reg, client=client, url=target,
                                  token=token or reg.settings.sync_token)
    finally:
        reg.close()
    err.print(f"sent {report.sent}, receipted {report.receipted}, rejected {report.rejected}, "
              f"pending {report.pending}")
    print_json(report.to_json())
    if report.rejected:
        raise typer.Exit(1)
