"""The query audit: the access records of `credit audit`, and a subject's own view of who
looked at it."""

from __future__ import annotations

from collections.abc import Sequence

from ..resources import AccessRecord, SubjectAccess
from .tables import Cell, CellLike, Column, Style, table


def access_table(records: Sequence[AccessRecord], style: Style) -> list[str]:
    """The query audit: one row per call that touched a subject (or was refused)."""
    columns = [
        Column("WHEN"),
        Column("CALLER"),
        Column("PROVEN"),
        Column("METHOD"),
        Column("SUBJECT"),
        Column("SCORECARD"),
        Column("PURPOSE"),
        Column("RETURNED", "r"),
        Column("CODE"),
        Column("REQUEST"),
    ]
    rows: list[list[CellLike]] = [
        [
            r.create_time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            r.caller,
            r.proven_by,
            r.method,
            r.subject_id,
            r.scorecard,
            r.purpose + (f" ({r.purpose_note})" if r.purpose_note else ""),
            str(r.evaluations_returned),
            Cell(r.code, () if r.code == "OK" else ("red",))
            if not r.reason
            else Cell(f"{r.code} {r.reason}", ("red",)),
            r.request_id,
        ]
        for r in records
    ]
    return table(columns, rows, style)


def subject_access_table(accesses: Sequence[SubjectAccess], style: Style) -> list[str]:
    """Who looked at a subject: what the subject may learn, nothing else."""
    columns = [Column("DATE"), Column("CALLER"), Column("PURPOSE")]
    rows: list[list[CellLike]] = [
        [a.date.isoformat(), a.caller, a.purpose or "evaluation"] for a in accesses
    ]
    return table(columns, rows, style)
