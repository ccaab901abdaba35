"""`sector-credit-server keys create|list|revoke`: API keys, on the audit database directly
(run it where the server's database is; an admin elsewhere uses `credit keys ...`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence

from ..settings import DEFAULT_DATABASE_URL, ENV_PREFIX, _env
from .keys import ApiKey, ApiKeys


def key_json(key: ApiKey, now: dt.datetime) -> dict[str, str | None]:
    return {
        "key_id": key.key_id,
        "caller": key.caller,
        "description": key.description,
        "state": key.state(now),
        "create_time": key.created_at.isoformat(),
        "expire_time": key.expires_at.isoformat() if key.expires_at else None,
        "revoke_time": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=_env("DATABASE_URL", DEFAULT_DATABASE_URL),
        help=f"the server's audit database [{ENV_PREFIX}DATABASE_URL]",
    )
    common.add_argument("--json", action="store_true", help="JSON output")
    ap = argparse.ArgumentParser(
        prog="sector-credit-server keys",
        description="Issue, list and revoke the service's API keys.",
    )
    sub = ap.add_subparsers(dest="action", required=True)
    c = sub.add_parser(
        "create", parents=[common], help="issue a key; its secret is printed once and never stored"
    )
    c.add_argument(
        "--caller",
        "--for",
        dest="caller",
        required=True,
        help="the caller name the key proves (its roles are in the security configuration)",
    )
    c.add_argument("--description", default="", help="what the key is for")
    c.add_argument(
        "--expires-in-days",
        type=float,
        default=90.0,
        help="days until it expires (0: never; default 90)",
    )
    sub.add_parser("list", parents=[common], help="every key: id, caller, state; never a secret")
    r = sub.add_parser("revoke", parents=[common], help="revoke a key at once")
    r.add_argument("key_id")
    return ap


def main(argv: Sequence[str]) -> int:
    from ..db.migrate import upgrade

    a = build_parser().parse_args(argv)
    upgrade(a.database_url)
    keys = ApiKeys(a.database_url)
    now = dt.datetime.now(dt.UTC)
    try:
        if a.action == "create":
            if a.expires_in_days < 0:
                print("--expires-in-days must not be negative", file=sys.stderr)
                return 2
            expires = now + dt.timedelta(days=a.expires_in_days) if a.expires_in_days else None
            issued = keys.create(a.caller, a.description, expires)
            if a.json:
                print(json.dumps({**key_json(issued.key, now), "token": issued.token}))
            else:
                print(
                    f"key {issued.key.key_id} for caller {issued.key.caller}, expires "
                    f"{issued.key.expires_at.isoformat() if issued.key.expires_at else 'never'}"
                )
                print(
                    "token (shown once, store it now; send it as `authorization: Bearer <token>`):"
                )
                print(issued.token)
            return 0
        if a.action == "list":
            listed = [key_json(k, now) for k in keys.list()]
            if a.json:
                print(json.dumps(listed))
            else:
                for k in listed:
                    print(
                        f"{k['key_id']}  {k['state']:8}  {k['caller']}  expires"
                        f" {k['expire_time'] or 'never'}"
                        f"  {k['description']}"
                    )
            return 0
        revoked = keys.revoke(a.key_id)
        if revoked is None:
            print(f"no API key {a.key_id}", file=sys.stderr)
            return 1
        print(json.dumps(key_json(revoked, now)) if a.json else f"key {revoked.key_id} revoked")
        return 0
    finally:
        keys.close()
