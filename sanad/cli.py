"""The `sanad` command line (Typer). One sub-command group per organ.

Every command calls the same services the API calls. Domain errors are translated in exactly
one place (`main`): a one-line message on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from sanad.config import Settings
from sanad.errors import InvalidInput, SanadError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
person_app = typer.Typer(no_args_is_help=True, help="Read persons.")
card_app = typer.Typer(no_args_is_help=True, help="Issue cards.")
audit_app = typer.Typer(no_args_is_help=True, help="Check the audit log.")
user_app = typer.Typer(no_args_is_help=True, help="Manage users.")
app.add_typer(person_app, name="person")
app.add_typer(card_app, name="card")
app.add_typer(audit_app, name="audit")
app.add_typer(user_app, name="user")

err = Console(stderr=True)


def _settings() -> Settings:
    return Settings()


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


def _registry() -> Any:
    from sanad.registry.runtime import open_registry

    return open_registry(_settings())


@app.command()
def init() -> None:
    """Create SANAD_HOME, the database schema, keys and the first admin (idempotent)."""
    from sanad.registry.runtime import ADMIN_USERNAME, init_registry

    settings = _settings()
    report = init_registry(settings)
    err.print(f"sanad home: {settings.home.resolve()}  database: {settings.db_url.split('@')[-1]}")
    err.print(f"issuer key id: {report.kid}{' (new)' if report.created_issuer_key else ''}")
    if report.created_admin_password:
        err.print(
            f"[bold]created user {ADMIN_USERNAME!r} with one-time password: "
            f"{report.created_admin_password}[/bold]  (shown once; change it)"
        )


@app.command()
def demo(
    people: Annotated[int, typer.Option(min=1, help="New synthetic people to enrol.")] = 2000,
    duplicates: Annotated[int, typer.Option(min=0, help="Re-enrolment attempts to inject.")] = 40,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the synthetic population.")] = 7,
) -> None:
    """Enrol a synthetic demo population; prints one JSON report on stdout."""
    from sanad.registry.demo import run_demo

    registry = _registry()
    try:
        with Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=err,
        ) as progress:
            task = progress.add_task("enrolling", total=people)
            report = run_demo(
                registry, people=people, duplicates=duplicates, seed=seed,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        registry.close()
    _print_json(report.to_json())


@person_app.command("list")
def person_list(
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """Persons, newest first, as JSON lines."""
    from sanad.registry.db import transaction
    from sanad.registry.persons import display_dob, list_persons

    registry = _registry()
    try:
        with transaction(registry.sessions) as session:
            for p in list_persons(session, actor=_actor(), limit=limit, offset=offset):
                _print_json({
                    "id": str(p.id), "registration_number": p.registration_number,
                    "given_name": p.given_name, "family_name": p.family_name,
                    "date_of_birth": display_dob(p.date_of_birth, p.dob_precision),
                    "sex": p.sex, "province": p.province, "status": p.status,
                })
    finally:
        registry.close()


@person_app.command("count")
def person_count() -> None:
    """Number of persons in the registry (prints one integer)."""
    from sanad.registry.db import transaction
    from sanad.registry.persons import population_summary

    registry = _registry()
    try:
        with transaction(registry.sessions) as session:
            typer.echo(population_summary(session, recent=0).persons)
    finally:
        registry.close()


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"{field} is not a UUID: {value!r}", field=field) from None


@card_app.command("issue")
def card_issue(person_id: Annotated[str, typer.Argument(help="The person's id (UUID).")]) -> None:
    """Issue a card; prints card_number, mrz and qr, and writes the QR as PNG."""
    from sanad.credentials.qr import qr_png
    from sanad.registry.cards import issue_card
    from sanad.registry.db import transaction

    pid = _uuid(person_id, "person_id")
    registry = _registry()
    try:
        with transaction(registry.sessions) as session:
            issued = issue_card(
                session, person_id=pid, officer=_actor(), key=registry.issuer_key,
                sealer=registry.sealer, settings=registry.settings,
            )
        png = registry.settings.cards_dir / f"{issued.card.card_number}.png"
        registry.settings.cards_dir.mkdir(parents=True, exist_ok=True)
        qr_png(issued.qr, png)
        _print_json({
            "card_id": str(issued.card.id), "card_number": issued.card.card_number,
            "expires_at": issued.card.expires_at.isoformat(), "mrz": issued.mrz,
            "qr": issued.qr, "qr_png": str(png),
        })
    finally:
        registry.close()


@app.command()
def verify(
    qr_text: Annotated[str, typer.Argument(help="The QR text (e.g. SND1:...).")],
    trust: Annotated[
        Path | None,
        typer.Option(help="Trust list (JWKS) file; default: the keys under SANAD_HOME."),
    ] = None,
) -> None:
    """Verify a card QR offline. Exit 0 valid, 1 invalid, 2 usage error."""
    from sanad.credentials.keys import TrustList, trust_list_from_keys_dir
    from sanad.verify import verify as verify_qr

    settings = _settings()
    trust_list = TrustList.load(trust) if trust else trust_list_from_keys_dir(settings.keys_dir)
    result = verify_qr(qr_text, trust=trust_list, prefixes=(settings.qr_prefix,))
    _print_json(result.to_json())
    raise typer.Exit(0 if result.valid else 1)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit hash chain. Exit 0 intact, 1 with the first broken row."""
    from sanad.audit import verify_chain

    registry = _registry()
    try:
        with registry.sessions() as session:
            report = verify_chain(session)
    finally:
        registry.close()
    _print_json({"ok": report.ok, "events": report.events,
                 "first_broken_seq": report.first_broken_seq, "problem": report.problem})
    raise typer.Exit(0 if report.ok else 1)


@user_app.command("create")
def user_create(
    username: str,
    role: Annotated[list[str], typer.Option(help="Role (repeatable).")],
) -> None:
    """Create a user with roles; prints a generated one-time password once."""
    import secrets

    from sanad.registry.db import transaction
    from sanad.registry.users import create_user

    password = secrets.token_urlsafe(12)
    registry = _registry()
    try:
        with transaction(registry.sessions) as session:
            create_user(session, username=username, password=password, roles=role,
                        actor=_actor())
    finally:
        registry.close()
    _print_json({"username": username, "roles": role, "password": password})


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """Serve the web UI and the REST API (OpenAPI at /docs)."""
    import uvicorn

    from sanad.app import create_app

    err.print(f"serving http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(_settings()), host=host, port=port, log_level="info")


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
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    run_benchmark(name, params=params, json_output=json_output, results_dir=results_dir)


def _fail(code: str, message: str) -> None:
    sys.stderr.write(f"error [{code}]: {' '.join(message.split())}\n")
    sys.exit(1)


def main() -> None:
    """Entry point: translate domain errors into one line and a non-zero exit.

    Typer's standalone mode handles usage errors itself (exit 2, a short message).
    """
    from sqlalchemy.exc import OperationalError

    try:
        app()
    except SanadError as exc:
        _fail(exc.code, exc.message)
    except OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
        _fail("database_unavailable", first)
    except OSError as exc:
        _fail("os_error", str(exc))
