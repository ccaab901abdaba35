"""`credit audit subject|caller`: the query audit, who touched which subject, when and why."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import click

from ..render import access_table, subject_access_table
from ..resources import AccessRecord, SubjectAccess
from .session import (
    EXIT_OK,
    Session,
    UsageError,
    check_limit,
    collect,
    json_option,
    limit_option,
    stack_options,
)

_window = stack_options(
    click.option(
        "--since", metavar="WHEN", help="from this day or time on (ISO 8601; a day in local time)"
    ),
    click.option("--until", metavar="WHEN", help="before this day or time"),
    limit_option(50),
    json_option,
    click.pass_obj,
)


@click.group("audit")
def audit() -> None:
    """The query audit: who touched which subject, when and why."""


@audit.command("subject")
@click.argument("target", metavar="SUBJECT_ID")  # not `key`: that is --key, the client's
@click.option(
    "--right-to-know",
    is_flag=True,
    help="only what the subject may learn: who looked, why and on which day",
)
@_window
def audit_subject(
    session: Session,
    target: str,
    right_to_know: bool,
    since: str | None,
    until: str | None,
    limit: int,
    as_json: bool,
) -> int:
    """The calls that touched one subject, newest first."""
    return _audit(session, "subject", target, right_to_know, since, until, limit, as_json)


@audit.command("caller")
@click.argument("target", metavar="NAME")
@_window
def audit_caller(
    session: Session, target: str, since: str | None, until: str | None, limit: int, as_json: bool
) -> int:
    """The calls one caller made, newest first."""
    return _audit(session, "caller", target, False, since, until, limit, as_json)


def _audit(
    session: Session,
    action: str,
    target: str,
    right_to_know: bool,
    since_text: str | None,
    until_text: str | None,
    limit: int,
    as_json: bool,
) -> int:
    check_limit(limit)
    if not target.strip():  # the service reads an empty filter as none: every caller's records
        name = "SUBJECT_ID" if action == "subject" else "NAME"
        raise UsageError(f"{name} is empty: name the {action} whose access records to list")
    since, until = _when(since_text, "--since"), _when(until_text, "--until")
    if right_to_know and (since or until):
        raise UsageError("--right-to-know lists every access of the subject: no --since or --until")
    with session.client() as client:

        def fetch(size: int, token: str) -> tuple[Sequence[Any], str]:
            if right_to_know:
                page = client.list_subject_accesses(target, page_size=size, page_token=token)
                return page.accesses, page.next_page_token
            records = client.list_access_records(
                subject_id=target if action == "subject" else None,
                caller=target if action == "caller" else None,
                start_time=since,
                end_time=until,
                page_size=size,
                page_token=token,
            )
            return records.access_records, records.next_page_token

        found, more = collect(fetch, limit)
    out = session.out
    if as_json:
        out.json([_access_dict(a) for a in found])
        return EXIT_OK
    if not found:
        out.lines([f"no access records of {action} {target}"])
        return EXIT_OK
    out.lines(
        subject_access_table(found, out.style) if right_to_know else access_table(found, out.style)
    )
    if more:
        out.lines([out.style(f"(the newest {len(found)}; --limit 0 shows all)", "dim")])
    return EXIT_OK


def _when(text: str | None, flag: str) -> dt.datetime | None:
    """A day (its start in local time) or an ISO 8601 time (local when it has no zone)."""
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"{flag}: {text!r} is not a day (2026-12-01) or an ISO 8601 time"
        ) from None
    return when if when.tzinfo else when.astimezone()


def _access_dict(item: AccessRecord | SubjectAccess) -> dict[str, Any]:
    data = dataclasses.asdict(item)
    for key in ("create_time", "date"):
        if key in data:
            data[key] = data[key].isoformat()
    return data
