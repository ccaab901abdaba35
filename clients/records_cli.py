"""`credit records …`: credit records from the command line (issue 10 item 5), as plain
functions over a `CreditClient`'s channel, so the CLI's front (argparse today, click
tomorrow) only parses and prints.

- `add`, `show`, `list`, `object`, `forward`, `decide`, `repair`, `revoke`: one RPC each;
- `import`: records from a CSV file, with progress on stderr, one result line per row in
  the results file (the record's name, or the error and the fields at fault), and `--resume`
  to continue a run: rows already created are not sent again, failed ones are. Each row is
  sent with the request id `credit-records-{run}-{row}`, `{run}` a random key made when a
  run starts and kept in `{results}.state.json`, as `credit batch` does: a row created but
  not yet written down when the run was killed is sent again on `--resume` with the same id,
  and the server returns the record it created then instead of creating a second one.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from sector_credit.v1 import common_pb2, record_pb2
from sector_credit.v1 import records_service_pb2 as rpb
from sector_credit.v1 import records_service_pb2_grpc as rpb_grpc

from .batch import new_run, read_state
from .client import CreditClient
from .errors import CreditError
from .inputs import new_request_id

E = TypeVar("E")  # an enum's value type
R = TypeVar("R")

SUBJECT_KINDS = {
    "person": common_pb2.SUBJECT_KIND_PERSON,
    "organization": common_pb2.SUBJECT_KIND_ORGANIZATION,
}
SEVERITIES = {
    "minor": record_pb2.SEVERITY_MINOR,
    "general": record_pb2.SEVERITY_GENERAL,
    "serious": record_pb2.SEVERITY_SERIOUS,
}
ROLES = {
    "legal_representative": record_pb2.LINK_ROLE_LEGAL_REPRESENTATIVE,
    "principal": record_pb2.LINK_ROLE_PRINCIPAL,
    "directly_responsible": record_pb2.LINK_ROLE_DIRECTLY_RESPONSIBLE,
}
OUTCOMES = {"upheld": rpb.OBJECTION_OUTCOME_UPHELD, "rejected": rpb.OBJECTION_OUTCOME_REJECTED}
CSV_COLUMNS = (
    "kind",
    "subject_kind",
    "subject_id",
    "authority",
    "regulation",
    "document_number",
    "decision_date",
    "severity",
)
"""Required columns of `credit records import`; optional: `linked` (ID:ROLE;ID:ROLE),
`restriction_end` (the day a ban the decision set ends, for the kinds that set one), `reason`."""


class RecordInputError(ValueError):
    """A value the command line or a CSV row gives that has no wire form (a usage error)."""


def record_name(text: str) -> str:
    return text if text.startswith("records/") else f"records/{text}"


def _date(text: str | None, what: str) -> common_pb2.Date | None:
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise RecordInputError(f"{what}: {text!r} is not a date YYYY-MM-DD") from None
    return common_pb2.Date(year=day.year, month=day.month, day=day.day)


def _choice(table: Mapping[str, E], text: str, what: str) -> E:
    try:
        return table[text.strip().lower()]
    except KeyError:
        raise RecordInputError(f"{what}: {text!r} is not one of {', '.join(table)}") from None


def linked_persons(specs: Sequence[str]) -> list[record_pb2.LinkedPerson]:
    """`ID:ROLE` each (ROLE: legal_representative, principal, directly_responsible)."""
    out = []
    for spec in specs:
        pid, sep, role = spec.strip().partition(":")
        if not sep:
            raise RecordInputError(f"--linked {spec!r}: expected ID:ROLE")
        out.append(record_pb2.LinkedPerson(id=pid, role=_choice(ROLES, role, "--linked role")))
    return out


def new_record(
    *,
    kind: str,
    subject_kind: str,
    subject_id: str,
    authority: str,
    regulation: str,
    document_number: str,
    decision_date: str,
    severity: str,
    linked: Sequence[str] = (),
    restriction_end: str | None = None,
) -> record_pb2.Record:
    record = record_pb2.Record(
        kind=kind,
        authority=authority,
        severity=_choice(SEVERITIES, severity, "severity"),
        basis=record_pb2.RecordBasis(regulation=regulation, document_number=document_number),
        linked_persons=linked_persons(linked),
    )
    record.subject.kind = _choice(SUBJECT_KINDS, subject_kind, "subject kind")
    record.subject.id = subject_id
    day = _date(decision_date, "decision date")
    if day is not None:
        record.decision_date.CopyFrom(day)
    ban_end = _date(restriction_end, "restriction end")
    if ban_end is not None:
        record.restriction_end.CopyFrom(ban_end)
    return record


class Records:
    """The RecordService over a CreditClient's channel, with its errors and metadata."""

    def __init__(self, client: CreditClient):
        self.client = client
        self.stub = rpb_grpc.RecordServiceStub(client.channel)

    def _call(self, method: Callable[..., R], request: Any) -> R:
        return self.client._call(method, request, self.client.deadlines.unary)

    def add(
        self,
        record: record_pb2.Record,
        reason: str = "",
        attachments: Sequence[str] = (),
        request_id: str | None = None,
    ) -> record_pb2.Record:
        """`request_id` None sends a fresh one, so the channel's retries cannot create twice."""
        return self._call(
            self.stub.CreateRecord,
            rpb.CreateRecordRequest(
                record=record,
                reason=reason,
                attachments=list(attachments),
                request_id=new_request_id() if request_id is None else request_id,
            ),
        ).record

    def show(
        self, name: str, *, purpose: str, note: str = "", as_of: str | None = None
    ) -> record_pb2.Record:
        request = rpb.GetRecordRequest(name=record_name(name), purpose=purpose, purpose_note=note)
        if (day := _date(as_of, "--as-of")) is not None:
            request.as_of.CopyFrom(day)
        return self._call(self.stub.GetRecord, request).record

    def list(
        self,
        *,
        purpose: str,
        note: str = "",
        subject_id: str = "",
        kind: str = "",
        overdue: bool = False,
        as_of: str | None = None,
        page_size: int = 50,
    ) -> Iterator[record_pb2.Record]:
        token = ""
        while True:
            request = rpb.ListRecordsRequest(
                subject_id=subject_id,
                kind=kind,
                overdue_only=overdue,
                purpose=purpose,
                purpose_note=note,
                page_size=page_size,
                page_token=token,
            )
            if (day := _date(as_of, "--as-of")) is not None:
                request.as_of.CopyFrom(day)
            reply = self._call(self.stub.ListRecords, request)
            yield from reply.records
            token = reply.next_page_token
            if not token:
                return

    def disclose(self, subject_id: str) -> rpb.GetDisclosureResponse:
        return self._call(self.stub.GetDisclosure, rpb.GetDisclosureRequest(subject_id=subject_id))

    def change(
        self,
        action: str,
        name: str,
        *,
        on: str | None = None,
        reason: str = "",
        attachments: Sequence[str] = (),
        party: str = "",
        outcome: str = "",
        etag: str = "",
    ) -> record_pb2.Record:
        """object | forward | decide | repair | revoke (attachments are the proof of a repair)."""
        common: dict[str, Any] = {
            "name": record_name(name),
            "etag": etag,
            "request_id": new_request_id(),  # a retry by the channel appends no second event
        }
        if (day := _date(on, "--on")) is not None:
            common["action_date"] = day
        if action == "object":
            request: Any = rpb.FileObjectionRequest(
                **common, reason=reason, filed_by=party, attachments=list(attachments)
            )
            return self._call(self.stub.FileObjection, request).record
        if action == "forward":
            return self._call(
                self.stub.ForwardObjection,
                rpb.ForwardObjectionRequest(**common, forwarded_to=party, reason=reason),
            ).record
        if action == "decide":
            return self._call(
                self.stub.DecideObjection,
                rpb.DecideObjectionRequest(
                    **common,
                    outcome=_choice(OUTCOMES, outcome, "--outcome"),
                    reason=reason,
                    attachments=list(attachments),
                ),
            ).record
        if action == "repair":
            return self._call(
                self.stub.RepairRecord,
                rpb.RepairRecordRequest(**common, proof=list(attachments), reason=reason),
            ).record
        if action == "revoke":
            return self._call(
                self.stub.RevokeRecord,
                rpb.RevokeRecordRequest(**common, reason=reason, attachments=list(attachments)),
            ).record
        raise RecordInputError(f"unknown action {action!r}")


# -- text ------------------------------------------------------------------------------------


def _role(role: record_pb2.LinkRole.ValueType) -> str:
    return _enum(record_pb2.LinkRole.Name(role), "LINK_ROLE_").lower()


def _iso(d: common_pb2.Date) -> str:
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}" if d.year else "-"


def _enum(value: str, prefix: str) -> str:
    return value.removeprefix(prefix)


def record_lines(r: record_pb2.Record) -> list[str]:
    """A record as text: facts, periods, objection, events."""
    state = _enum(record_pb2.RecordState.Name(r.state), "RECORD_STATE_")
    lines = [
        f"{r.name}  {r.kind}  {state} on {_iso(r.view_date)}"
        + ("" if r.counts else "  (does not count)"),
        f"Subject     {r.subject.id}",
        f"Authority   {r.authority}",
        f"Basis       {r.basis.regulation} {r.basis.document_number}",
        f"Decided     {_iso(r.decision_date)}  minimum period ends {_iso(r.minimum_period_end)},"
        f" expires {_iso(r.maximum_period_end)}",
    ]
    if r.HasField("restriction_end"):
        lines.append(f"Ban ends    {_iso(r.restriction_end)}")
    for p in r.linked_persons:
        lines.append(f"Linked      {p.id}  {_role(p.role)}")
    if r.HasField("objection"):
        o = r.objection
        status = _enum(record_pb2.ObjectionStatus.Name(o.status), "OBJECTION_STATUS_")
        lines.append(
            f"Objection   {status}: filed {_iso(o.filed_date)}, forward by {_iso(o.forward_by)}"
            + (
                f", forwarded {_iso(o.forwarded_date)}, decide by {_iso(o.decide_by)}"
                if o.forwarded_date.year
                else ""
            )
            + (f", decided {_iso(o.decided_date)}" if o.decided_date.year else "")
            + ("  OVERDUE" if o.overdue else "")
        )
    if r.public_until.year:
        lines.append(f"Public until {_iso(r.public_until)}")
    lines.append("Events")
    for e in r.events:
        kind = _enum(record_pb2.RecordEventType.Name(e.type), "RECORD_EVENT_TYPE_")
        extra = "".join(f"  [{a}]" for a in e.attachments)
        party = f" ({e.party})" if e.party else ""
        line = (
            f"  {e.sequence}. {_iso(e.action_date)}  {kind}{party} by {e.actor}: {e.reason}{extra}"
        )
        lines.append(line.rstrip(": "))
    lines.append(f"etag {r.etag}")
    return lines


def summary_line(r: record_pb2.Record) -> str:
    state = _enum(record_pb2.RecordState.Name(r.state), "RECORD_STATE_")
    overdue = "  objection OVERDUE" if r.objection.overdue else ""
    return f"{r.name}  {r.kind}  {r.subject.id}  decided {_iso(r.decision_date)}  {state}{overdue}"


def disclosure_lines(reply: Any) -> list[str]:
    """The public view of one subject."""
    lines = [
        f"{reply.subject_id}: {len(reply.records)} record(s) disclosed on {_iso(reply.view_date)}"
    ]
    for r in reply.records:
        state = _enum(record_pb2.RecordState.Name(r.state), "RECORD_STATE_")
        lines.append(f"  {r.name}  {r.kind_title.zh} / {r.kind_title.en}  {state}")
        lines.append(
            f"      {r.authority}  {r.basis.regulation} {r.basis.document_number}  decided"
            f" {_iso(r.decision_date)}, disclosed until {_iso(r.disclosed_until)}"
        )
        for p in r.linked_persons:
            lines.append(f"      linked {p.id}  {_role(p.role)}")
    return lines


def evidence_lines(evaluation: Any) -> list[str]:
    """The records an evaluation's derived indicators were read from, as they were then."""
    if not evaluation.record_evidence:
        return ["", "Records read: none"]
    lines = ["", "Records read (as of the evaluation's date)"]
    for e in evaluation.record_evidence:
        lines.append(
            f"  {e.indicator}: {e.record}  {e.kind}  decided {_iso(e.decision_date)}  {e.state}"
        )
        lines.append(f"      basis {e.basis}")
    return lines


def as_dict(message: Message) -> dict[str, Any]:
    """A record, or any reply, as JSON (the proto field names)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# -- import ----------------------------------------------------------------------------------


def read_csv(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The rows (numbered from 2, the header being line 1); RecordInputError for a file
    that cannot be used (missing columns)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise RecordInputError(f"{path}: missing column(s) {', '.join(missing)}")
            return [
                (i, {k: (v or "").strip() for k, v in row.items() if k})
                for i, row in enumerate(reader, 2)
            ]
    except OSError as exc:
        raise RecordInputError(f"{path}: {exc.strerror}") from None


def done_rows(results: Path) -> set[int]:
    """Rows a previous run of the import created (a line with the record's name): a failed
    row is sent again, after the CSV is corrected; the last line of a row is its outcome."""
    if not results.exists():
        return set()
    done = set()
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
            if entry.get("name"):
                done.add(int(entry["row"]))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash: that row is sent again
    return done


def run_key(results: Path, source: Path, resume: bool) -> tuple[str, str]:
    """The import's run key, and a warning ("" when none): a resumed run reads it back from
    `{results}.state.json`; a fresh run makes one and saves it before any row is sent."""
    state_path = results.with_name(results.name + ".state.json")
    state = read_state(state_path) if resume else None
    if state is not None:
        return str(state["run"]), ""
    return new_run(state_path, source, resume and results.exists(), "created")


def import_csv(
    records: Records, source: Path, results: Path, *, resume: bool, progress: TextIO
) -> tuple[int, int]:
    """Create one record per row; one JSON line per row in `results` (written and flushed
    as each row is answered), progress on `progress`. Returns (created, failed)."""
    rows = read_csv(source)
    if results.exists() and not resume:
        raise RecordInputError(
            f"{results} exists: pass --resume to continue that run, or remove it"
        )
    skip = done_rows(results) if resume else set()
    run, warning = run_key(results, source, resume)
    if warning:
        progress.write(warning + "\n")
    created = failed = 0
    todo = [(n, row) for n, row in rows if n not in skip]
    with open(results, "a", encoding="utf-8") as out:
        for k, (n, row) in enumerate(todo, 1):
            line: dict[str, Any] = {"row": n}
            try:
                record = new_record(
                    kind=row["kind"],
                    subject_kind=row["subject_kind"],
                    subject_id=row["subject_id"],
                    authority=row["authority"],
                    regulation=row["regulation"],
                    document_number=row["document_number"],
                    decision_date=row["decision_date"],
                    severity=row["severity"],
                    linked=[s for s in row.get("linked", "").split(";") if s],
                    restriction_end=row.get("restriction_end") or None,
                )
                line["name"] = records.add(
                    record, reason=row.get("reason", ""), request_id=f"credit-records-{run}-{n}"
                ).name
                created += 1
            except RecordInputError as exc:
                line["error"] = str(exc)
                failed += 1
            except CreditError as exc:
                line["error"] = exc.headline
                line["fields"] = {v.field: v.description for v in exc.violations}
                failed += 1
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            progress.write(f"\rrecords: {k}/{len(todo)} sent, {failed} failed")
            progress.flush()
    if todo:
        progress.write("\n")
    return created, failed
