"""`credit keys create|list|revoke`: the service's API keys (admin role)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from .session import EXIT_OK, TOKEN_ENV, Session, UsageError, json_option


@click.group("keys")
def keys() -> None:
    """Issue, list and revoke the service's API keys (admin role)."""


def _key_line(key: dict[str, Any]) -> str:
    state = str(key.get("state", "")).removeprefix("API_KEY_STATE_").lower()
    return (
        f"{key['name'].removeprefix('apiKeys/')}  {state:8}  {key.get('caller', '')}  "
        f"expires {key.get('expire_time', 'never')}  {key.get('description', '')}"
    ).rstrip()


@keys.command("create")
@click.option(
    "--for",
    "for_caller",
    required=True,
    metavar="CALLER",
    help="the caller name the key proves (its roles are in the server's security configuration)",
)
@click.option("--description", default="", help="what the key is for")
@click.option("--expires-in-days", type=float, default=90.0, metavar="DAYS", help="default 90")
@json_option
@click.pass_obj
def keys_create(
    session: Session, for_caller: str, description: str, expires_in_days: float, as_json: bool
) -> int:
    """Issue a key; its token is printed once."""
    if expires_in_days <= 0:
        raise UsageError("--expires-in-days must be positive")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_in_days)
    with session.client() as client:
        key = client.create_api_key(for_caller, description=description, expire_time=expires)
    if as_json:
        session.out.json(key)
    else:
        session.out.lines(
            [
                _key_line(key),
                f"token (shown once, store it now; send it with --token or {TOKEN_ENV}):",
                key["token"],
            ]
        )
    return EXIT_OK


@keys.command("list")
@json_option
@click.pass_obj
def keys_list(session: Session, as_json: bool) -> int:
    """Every key and its state; never a secret."""
    with session.client() as client:
        found = client.list_api_keys()
    if as_json:
        session.out.json(found)
    else:
        session.out.lines([_key_line(k) for k in found] or ["no API keys"])
    return EXIT_OK


@keys.command("revoke")
@click.argument("key_name", metavar="KEY_ID")
@json_option
@click.pass_obj
def keys_revoke(session: Session, key_name: str, as_json: bool) -> int:
    """Revoke a key at once.

    KEY_ID: apiKeys/{key_id} or the key id.
    """
    with session.client() as client:
        key = client.revoke_api_key(key_name)
    if as_json:
        session.out.json(key)
    else:
        session.out.lines([_key_line(key)])
    return EXIT_OK
