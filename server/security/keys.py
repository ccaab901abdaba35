"""API keys the service issues: `sck_<key id>_<secret>`, shown once, stored as the key id and
the SHA-256 of the secret (the secret is 32 random bytes: no salt or slow hash is needed for a
secret nobody chose), compared in constant time; with an expiry and revocation.

`ApiKeys` reads and writes the `api_keys` table (blocking calls; the server runs them in a
thread). The server caches a looked-up key for `CACHE_SECONDS`, so a key revoked by another
process (`sector-credit-server keys revoke`) stops working within that time, and at once when
revoked through this process's API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ..db.engine import create_engine
from ..db.models import ApiKeyRow

PREFIX = "sck_"
CACHE_SECONDS = 2.0
_TOKEN = re.compile(r"^sck_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    caller: str
    description: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def state(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    token: str  # the only time the secret exists outside the caller's hands


def split(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a token in the service's format, else None."""
    m = _TOKEN.match(token)
    return (m.group(1), m.group(2)) if m else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        row.key_id, row.caller, row.description, row.created_at, row.expires_at, row.revoked_at
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ApiKeys:
    def __init__(self, database_url: str, engine: Engine | None = None):
        self.engine = engine or create_engine(database_url, pool_size=2)
        self._cache: dict[str, tuple[float, ApiKeyRow | None]] = {}

    def close(self) -> None:
        self.engine.dispose()

    def create(
        self, caller: str, description: str = "", expires_at: dt.datetime | None = None
    ) -> IssuedKey:
        if not caller.strip():
            raise ValueError("an API key needs the caller name it identifies")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = ApiKeyRow(
            key_id=key_id,
            caller=caller.strip(),
            secret_sha256=_digest(secret),
            description=description,
            created_at=_now(),
            expires_at=expires_at,
            revoked_at=None,
        )
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(ApiKeyRow).values(
                    key_id=row.key_id,
                    caller=row.caller,
                    secret_sha256=row.secret_sha256,
                    description=row.description,
                    created_at=row.created_at,
                    expires_at=row.expires_at,
                )
            )
        return IssuedKey(_key(row), f"{PREFIX}{key_id}_{secret}")

    def list(self) -> list[ApiKey]:
        with Session(self.engine) as session:
            return [
                _key(r)
                for r in session.scalars(sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at))
            ]

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke a key (again: no change); None when there is no such key."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(ApiKeyRow)
                .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        self._cache.pop(key_id, None)
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id)
            return None if row is None else _key(row)

    def verify(self, token: str) -> tuple[ApiKey | None, str]:
        """(the key, "") for a valid token, else (None, why: malformed/unknown/revoked/expired).
        The secret's digest is compared in constant time."""
        parts = split(token)
        if parts is None:
            return None, "not an API key of this service"
        key_id, secret = parts
        row = self._lookup(key_id)
        if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
            return None, "unknown API key"
        key = _key(row)
        state = key.state(_now())
        if state != "active":
            return None, f"API key {key_id} is {state}"
        return key, ""

    def cached(self, token: str) -> bool:
        """Whether `verify(token)` would answer from the cache, without the database (so the
        server verifies on the event loop instead of a thread)."""
        parts = split(token)
        hit = self._cache.get(parts[0]) if parts else None
        return parts is None or (hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS)

    def _lookup(self, key_id: str) -> ApiKeyRow | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
        with Session(self.engine) as session:
            row = session.get(ApiKeyRow, key_id)
        if len(self._cache) > 10_000:  # unknown ids sent on purpose must not grow it forever
            self._cache.clear()
        self._cache[key_id] = (now, row)
        return row
