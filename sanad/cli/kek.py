"""`sanad keys rewrap|kek-status|kek-retire`: the key-encryption key that wraps data keys.

Attached to the credentials' `keys` group (one `keys` namespace for every key an operator
manages); the KEK ring itself is `sanad.registry.sealing`, its rotation `sanad.ops.kek`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sanad.cli._common import err, print_json, settings
from sanad.cli.keys import keys_app


@keys_app.command("kek-status")
def kek_status() -> None:
    """The ring's keys, the current one, and how many data keys each wraps."""
    from sanad.ops.kek import kek_status as status

    print_json(status(settings()))


@keys_app.command("rewrap")
def kek_rewrap(
    new: Annotated[
        bool, typer.Option("--new/--resume", help="Make a new KEK current first "
                           "(--resume only finishes an interrupted rotation).")
    ] = True,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Data keys per transaction.")]
    = 1000,
    hsm_module: Annotated[
        str | None, typer.Option(help="PKCS#11 module: the new KEK is generated in the HSM.")
    ] = None,
    hsm_token: Annotated[str, typer.Option(help="HSM token label.")] = "sanad",
    hsm_label: Annotated[str | None, typer.Option(help="Label of the new HSM key.")] = None,
    hsm_pin_env: Annotated[
        str, typer.Option(help="Environment variable holding the token's user PIN.")
    ] = "SANAD_PKCS11_PIN",
) -> None:
    """Rotate the KEK without downtime: re-wrap every data key in batches (resumable)."""
    import datetime as dt

    from sanad.ops.kek import rotate
    from sanad.registry.sealing import KeyEncryptionKey, Pkcs11Kek

    new_kek: bool | KeyEncryptionKey = new
    if new and hsm_module:
        label = hsm_label or f"sanad-kek-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
        new_kek = Pkcs11Kek.generate(module=hsm_module, token=hsm_token, label=label,
                                     pin_env=hsm_pin_env)
    report = rotate(settings(), new_kek=new_kek, batch=batch,
                    progress=lambda n: err.print(f"re-wrapped {n} data keys"))
    print_json(report)


@keys_app.command("kek-retire")
def kek_retire(
    kek_id: Annotated[str, typer.Argument(help="Identifier of the KEK to drop from the ring.")],
) -> None:
    """Drop an old KEK from the ring once no data key is wrapped under it."""
    from sanad.ops.kek import retire

    print_json(retire(settings(), kek_id))
