"""The static text of results, by scorecard digest (format 2, rowjson.py; table
`scorecard_parts`).

Results of the scorecards the server was started with are stored in format 2, without their
scorecard's static text, which is stored once per digest here; results of other scorecards'
digests are read with the parts stored in the table (cached once read).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sector_credit.scorecards.model import Scorecard
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .failures import unavailable
from .rowjson import (
    JsonText,
    ResultParts,
    result_parts,
    result_parts_from_document,
    result_parts_json,
)
from .rows import PARTS, PartsFor

log = logging.getLogger(__name__)


class ScorecardParts:
    """The parts this store writes format 2 with: its own scorecards', and those it read."""

    def __init__(self, scorecards: Iterable[Scorecard]) -> None:
        self._parts: dict[str, ResultParts] = {
            c.digest: result_parts(c) for c in scorecards if c.digest
        }

    @property
    def by_digest(self) -> dict[str, ResultParts]:
        """The parts results are written with, by digest (results of other digests are
        written whole, in format 1)."""
        return self._parts

    def store(self, engine: sa.Engine) -> None:
        """Add the parts of this store's scorecards to scorecard_parts where missing, before
        any row in format 2 refers to them (blocks). Parts stored earlier for the same digest
        are the authority: where they differ from this process's (the engine now derives a
        scorecard's static text differently, e.g. its best points), this process stores that
        scorecard's results whole (format 1) and reads its format-2 rows with the stored
        parts."""
        if not self._parts:
            return
        now = dt.datetime.now(dt.UTC)
        for attempt in (1, 2):
            try:
                # SQLite: take the write lock first (a read that turns into a write cannot
                # wait for another worker doing the same; it fails as "database is locked")
                with (
                    engine.connect() as conn,
                    conn.execution_options(sqlite_begin="IMMEDIATE").begin(),
                ):
                    self._store(conn, now)
                return
            except IntegrityError:  # another process added the same parts meanwhile
                if attempt == 2:
                    raise
            except SQLAlchemyError as exc:
                raise unavailable(exc) from exc

    def _store(self, conn: Connection, now: dt.datetime) -> None:
        stored = dict(
            conn.execute(
                sa.select(PARTS.c.digest, PARTS.c.parts).where(
                    PARTS.c.digest.in_(list(self._parts))
                )
            ).all()
        )
        missing = []
        for digest, parts in list(self._parts.items()):
            text = result_parts_json(parts)
            if digest not in stored:
                missing.append(
                    {
                        "digest": digest,
                        "scorecard_id": parts.scorecard_id,
                        "version": parts.version,
                        "parts": JsonText(text),
                        "created_at": now,
                    }
                )
                continue
            found = result_parts_from_document(stored[digest])
            if "base" not in stored[digest]:
                # stored before parts recorded the base, which the digest fixes: add it
                found = dataclasses.replace(found, base=parts.base)
                if result_parts_json(found) == text:
                    conn.execute(
                        sa.update(PARTS)
                        .where(PARTS.c.digest == digest)
                        .values(parts=JsonText(text))
                    )
            if result_parts_json(found) != text:
                log.warning(
                    "scorecard %s %s: its stored result parts differ from this"
                    " server's; its results are stored whole (format 1)",
                    parts.scorecard_id,
                    parts.version,
                )
                del self._parts[digest]
        if missing:
            conn.execute(sa.insert(PARTS), missing)

    def get(self, digest: str, conn: Connection | Session | None = None) -> ResultParts | None:
        """The parts of a scorecard digest: known already, else those stored (then cached)."""
        parts = self._parts.get(digest)
        if parts is not None or conn is None:
            return parts
        data = conn.execute(
            sa.select(PARTS.c.parts).where(PARTS.c.digest == digest)
        ).scalar_one_or_none()
        if data is None:
            return None
        parts = result_parts_from_document(data)
        if parts.digest != digest:
            raise ValueError(f"scorecard_parts row {digest!r} holds the parts of {parts.digest!r}")
        self._parts.setdefault(digest, parts)
        return parts

    def reader(self, conn: Connection | Session) -> PartsFor:
        """`get` on this connection, for reading a page of rows."""
        return lambda digest: self.get(digest, conn)
