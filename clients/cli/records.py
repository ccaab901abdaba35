"""`credit records add|show|list|object|forward|decide|repair|revoke|import|disclose`: credit
records and their lifecycle (docs/records.md). The logic is in `clients/records_cli.py`; this
module parses and prints."""

from __future__ import annotations

from pathlib import Path

import click

from .. import records_cli as rc
from .session import EXIT_FAILED, EXIT_OK, Session, UsageError, json_option, purpose_options

LINKED_HELP = "a linked person (role: legal_representative, principal, directly_responsible)"


@click.group("records")
def records() -> None:
    """Credit records: register, read, object, repair, revoke (docs/records.md)."""


def _print(session: Session, record: object, as_json: bool) -> int:
    if as_json:
        session.out.json(rc.as_dict(record))  # type: ignore[arg-type]
    else:
        session.out.lines(rc.record_lines(record))  # type: ignore[arg-type]
    return EXIT_OK


@records.command("add")
@click.option("--kind", required=True, help="the record kind (the server's ListRecordKinds)")
@click.option("--subject", required=True, metavar="ID", help="the subject's id")
@click.option(
    "--subject-kind", default="organization", type=click.Choice(["organization", "person"])
)
@click.option("--authority", required=True, help="the deciding authority")
@click.option("--regulation", required=True, help="the regulation the decision rests on")
@click.option("--document", required=True, help="the decision document's number")
@click.option("--decided", required=True, metavar="DATE", help="the decision date, YYYY-MM-DD")
@click.option("--severity", default="general", type=click.Choice(["minor", "general", "serious"]))
@click.option("--linked", multiple=True, metavar="ID:ROLE", help=LINKED_HELP)
@click.option(
    "--restriction-end",
    metavar="DATE",
    help="the day the ban the decision set ends, YYYY-MM-DD (only kinds that set a ban)",
)
@click.option("--reason", default="")
@json_option
@click.pass_obj
def add(
    session: Session,
    kind: str,
    subject: str,
    subject_kind: str,
    authority: str,
    regulation: str,
    document: str,
    decided: str,
    severity: str,
    linked: tuple[str, ...],
    restriction_end: str | None,
    reason: str,
    as_json: bool,
) -> int:
    """Register a determined record (registrar role)."""
    try:
        record = rc.new_record(
            kind=kind,
            subject_kind=subject_kind,
            subject_id=subject,
            authority=authority,
            regulation=regulation,
            document_number=document,
            decision_date=decided,
            severity=severity,
            linked=linked,
            restriction_end=restriction_end,
        )
        with session.client() as client:
            made = rc.Records(client).add(record, reason=reason)
    except rc.RecordInputError as exc:
        raise UsageError(str(exc)) from None
    return _print(session, made, as_json)


@records.command("show")
@click.argument("name", metavar="NAME")
@click.option("--as-of", metavar="DATE", help="the day to show it as of (default today)")
@purpose_options
@json_option
@click.pass_obj
def show(
    session: Session,
    name: str,
    as_of: str | None,
    purpose: str | None,
    purpose_note: str | None,
    as_json: bool,
) -> int:
    """A record as of a date, with its events (NAME: records/{id} or the id)."""
    try:
        with session.client() as client:
            record = rc.Records(client).show(
                name, purpose=purpose or "", note=purpose_note or "", as_of=as_of
            )
    except rc.RecordInputError as exc:
        raise UsageError(str(exc)) from None
    return _print(session, record, as_json)


@records.command("list")
@click.option("--subject", default="", metavar="ID", help="about it, or linking the person")
@click.option("--kind", default="")
@click.option("--overdue", is_flag=True, help="only records whose objection is overdue")
@click.option("--as-of", metavar="DATE")
@purpose_options
@json_option
@click.pass_obj
def list_records(
    session: Session,
    subject: str,
    kind: str,
    overdue: bool,
    as_of: str | None,
    purpose: str | None,
    purpose_note: str | None,
    as_json: bool,
) -> int:
    """Records of a subject or a kind, or those with an overdue objection, newest first."""
    try:
        with session.client() as client:
            found = list(
                rc.Records(client).list(
                    purpose=purpose or "",
                    note=purpose_note or "",
                    subject_id=subject,
                    kind=kind,
                    overdue=overdue,
                    as_of=as_of,
                )
            )
    except rc.RecordInputError as exc:
        raise UsageError(str(exc)) from None
    if as_json:
        session.out.json([rc.as_dict(r) for r in found])
    else:
        session.out.lines([rc.summary_line(r) for r in found] or ["no records"])
    return EXIT_OK


def _change_command(
    action: str, help: str, party: str | None = None, proof: bool = False, outcome: bool = False
) -> None:
    @click.pass_obj
    def run(
        session: Session,
        name: str,
        on: str | None,
        reason: str,
        etag: str,
        attachments: tuple[str, ...],
        as_json: bool,
        party: str = "",
        outcome: str = "",
    ) -> int:
        try:
            with session.client() as client:
                record = rc.Records(client).change(
                    action,
                    name,
                    on=on,
                    reason=reason,
                    attachments=attachments,
                    party=party,
                    outcome=outcome,
                    etag=etag,
                )
        except rc.RecordInputError as exc:
            raise UsageError(str(exc)) from None
        return _print(session, record, as_json)

    run.__doc__ = f"{help[0].upper()}{help[1:]} (NAME: records/{{id}} or the id)."
    command = json_option(run)
    command = click.option(
        "--proof" if proof else "--attach",
        "attachments",
        multiple=True,
        metavar="REF",
        help="a document reference (repeatable)",
    )(command)
    if outcome:
        command = click.option(
            "--outcome", required=True, type=click.Choice(["upheld", "rejected"])
        )(command)
    if party is not None:
        flag, what = party.split(":")
        command = click.option(flag, "party", default="", help=what)(command)
    command = click.option(
        "--etag", default="", help="fail (ABORTED) if the record changed since this etag"
    )(command)
    command = click.option("--reason", default="")(command)
    command = click.option("--on", metavar="DATE", help="the day of the act (default today)")(
        command
    )
    command = click.argument("name", metavar="NAME")(command)
    records.command(action)(command)


_change_command("object", "file an objection (by or for the subject)", party="--by:who objects")
_change_command(
    "forward", "forward the pending objection to the provider", party="--to:the providing authority"
)
_change_command("decide", "decide a forwarded objection", outcome=True)
_change_command("repair", "repair after the minimum period, with proof", proof=True)
_change_command("revoke", "revoke: the underlying act was revoked")


@records.command("import")
@click.argument("source", metavar="CSV", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "results",
    required=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="the results file: one JSON line per row (its record's name, or its error)",
)
@click.option("--resume", is_flag=True, help="continue a run: rows already created are skipped")
@click.pass_obj
def import_records(session: Session, source: Path, results: Path, resume: bool) -> int:
    """Records from a CSV file, with progress, per-row errors and --resume (docs/records.md)."""
    try:
        with session.client() as client:
            created, failed = rc.import_csv(
                rc.Records(client), source, results, resume=resume, progress=session.out.stderr
            )
    except rc.RecordInputError as exc:
        raise UsageError(str(exc)) from None
    session.out.lines([f"{created} created, {failed} failed; results in {results}"])
    return EXIT_FAILED if failed else EXIT_OK


@records.command("disclose")
@click.argument("subject", metavar="SUBJECT_ID")
@json_option
@click.pass_obj
def disclose(session: Session, subject: str, as_json: bool) -> int:
    """The public disclosure view of one subject (personal ids masked)."""
    with session.client() as client:
        reply = rc.Records(client).disclose(subject)
    if as_json:
        session.out.json(rc.as_dict(reply))
    else:
        session.out.lines(rc.disclosure_lines(reply))
    return EXIT_OK
