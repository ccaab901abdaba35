"""Bulk runs from a file: `credit batch SCORECARD FILE.csv|FILE.jsonl [--out …] [--resume]`.

Input. A CSV file with a header row, or JSON Lines (one object a line). `subject_id` is
required; `request_id`, `as_of` and `display_name` are optional; every other column (or key)
is an indicator. An empty cell leaves the indicator out, so its default applies. Rows are
numbered from 1, the header not counted; errors name the row and the line it starts on.

Before anything is sent, the file's columns (CSV header; JSON Lines: every key of every row)
are checked against the scorecard: a required indicator no column gives and a column that is
not an indicator are each named once, and the run stops.

Output. One record per input row, in input order: `status` ok with the grade, score, points
to the next grade, overrides, reasons, the evaluation's name and the scorecard version and
digest that decided it; or `status` error with the error and each field violation. CSV or
JSON Lines by the file's extension.

Resume without scoring a row twice. Every row is sent with a request id the server keeps
with its evaluation: the file's own `request_id`, or `credit-batch-{run}-{row}`, where
`{run}` is a random key made when the run starts and kept beside the output in
`{out}.state.json`. A re-run with `--resume` reuses the key: rows already in the output are
skipped, and a row that was scored but not yet written when the run stopped is sent again
with the same id, so the server replays its stored evaluation instead of making a second
one. (A fresh run gets a fresh key, so scoring the same file again next month makes new
evaluations, as it should.) Rows that failed are tried again on resume.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from sector_credit.scorecards.text import decimal_text

from .errors import CreditError
from .inputs import EvaluationItem
from .resources import Evaluation, FieldViolation

RESERVED = ("subject_id", "request_id", "as_of", "display_name")
OUTPUT_FIELDS = (
    "row",
    "subject_id",
    "status",
    "grade",
    "score",
    "points_to_next_grade",
    "next_grade",
    "until",
    "overrides",
    "reasons",
    "evaluation",
    "scorecard_version",
    "scorecard_digest",
    "request_id",
    "as_of",
    "error",
)
RUN_ID = re.compile(r"credit-batch-([0-9a-f]{16})-\d+$")


class BatchFileError(Exception):
    """The input or output file cannot be used as it is (exit 2: fix the command or file)."""


@dataclasses.dataclass
class InputRow:
    number: int  # 1-based, header not counted
    line: int  # the line of the file the row starts on
    subject_id: str
    item: EvaluationItem | None  # None when the row is refused before sending
    problems: list[FieldViolation]


# -- input ---------------------------------------------------------------------------------


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise BatchFileError(f"{path}: expected a .csv or .jsonl file")


def read_rows(path: Path, default_as_of: str | None = None) -> tuple[list[InputRow], list[str]]:
    """The rows of the input file and its indicator columns (the CSV header; for JSON Lines
    every indicator key of any row, in order first seen); `default_as_of` for the rows that
    give no as_of."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BatchFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise BatchFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if file_format(path) == "csv":
        rows, columns = _read_csv(path, text)
    else:
        rows = _read_jsonl(text)
        columns = list(
            dict.fromkeys(k for row in rows if row.item is not None for k in row.item.indicators)
        )
    if default_as_of is not None:
        for row in rows:
            if row.item is not None and row.item.as_of is None:
                row.item = dataclasses.replace(row.item, as_of=default_as_of)
    return rows, columns


def _read_csv(path: Path, text: str) -> tuple[list[InputRow], list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise BatchFileError(f"{path}: the file is empty; it needs a header row") from None
    if "subject_id" not in header:
        raise BatchFileError(f"{path}: the header has no subject_id column: {', '.join(header)}")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise BatchFileError(f"{path}: columns named twice: {', '.join(duplicates)}")
    rows: list[InputRow] = []
    line = reader.line_num + 1
    for number, cells in enumerate(reader, 1):
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            rows.append(
                InputRow(
                    number,
                    start,
                    "",
                    None,
                    [FieldViolation("row", f"{len(cells)} cells, the header has {len(header)}")],
                )
            )
            continue
        rows.append(_row(number, start, dict(zip(header, cells))))
    return rows, [h for h in header if h not in RESERVED]


def _read_jsonl(text: str) -> list[InputRow]:
    rows: list[InputRow] = []
    number = 0
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        number += 1
        try:
            data = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            rows.append(
                InputRow(number, line_no, "", None, [FieldViolation("row", f"not JSON: {exc.msg}")])
            )
            continue
        if not isinstance(data, dict):
            rows.append(
                InputRow(number, line_no, "", None, [FieldViolation("row", "not a JSON object")])
            )
            continue
        rows.append(_row(number, line_no, data))
    return rows


def _row(number: int, line: int, data: dict[str, Any]) -> InputRow:
    problems: list[FieldViolation] = []
    subject_id = str(data.get("subject_id") or "").strip()
    if not subject_id:
        problems.append(FieldViolation("subject_id", "required"))
    as_of: str | None = str(data.get("as_of") or "").strip() or None
    if as_of is not None:
        try:
            dt.date.fromisoformat(as_of)
        except ValueError:
            problems.append(FieldViolation("as_of", f"expected a date (YYYY-MM-DD), not {as_of!r}"))
    nested = data.get("indicators")
    indicators = (
        dict(nested)
        if isinstance(nested, dict)
        else {k: v for k, v in data.items() if k not in RESERVED}
    )
    if problems:
        return InputRow(number, line, subject_id, None, problems)
    request_id = str(data.get("request_id") or "").strip() or None
    item = EvaluationItem(
        subject_id, indicators, as_of, request_id, str(data.get("display_name") or "")
    )
    return InputRow(number, line, subject_id, item, [])


def with_request_id(item: EvaluationItem, run: str, number: int) -> EvaluationItem:
    """The item with its deterministic request id (unless the file gave one)."""
    if item.request_id:
        return item
    return dataclasses.replace(item, request_id=f"credit-batch-{run}-{number}")


# -- output --------------------------------------------------------------------------------


def ok_record(row: InputRow, ev: Evaluation) -> dict[str, str]:
    return {
        "row": str(row.number),
        "subject_id": ev.subject.id,
        "status": "ok",
        "grade": ev.grade.code,
        "score": decimal_text(ev.score),
        "points_to_next_grade": decimal_text(ev.points_to_next_grade),
        "next_grade": ev.next_grade,
        "until": ev.until.isoformat() if ev.until else "",
        "overrides": " ".join(o.override_id for o in ev.overrides),
        "reasons": " ".join(r.code for r in ev.reasons),
        "evaluation": ev.name,
        "scorecard_version": ev.scorecard_version,
        "scorecard_digest": ev.scorecard_digest,
        "request_id": ev.request_id,
        "as_of": ev.as_of.isoformat() if ev.as_of else "",
        "error": "",
    }


def error_record(row: InputRow, error: CreditError | None) -> dict[str, str]:
    if error is None:  # refused before sending
        text = "; ".join(str(v) for v in row.problems)
    else:
        parts = [f"{error.code.name} {error.reason}".strip(), *(str(v) for v in error.violations)]
        if not error.violations:
            parts.append(error.message)
        text = "; ".join(parts)
    return {
        **dict.fromkeys(OUTPUT_FIELDS, ""),
        "row": str(row.number),
        "subject_id": row.subject_id,
        "status": "error",
        "error": text,
    }


class OutputFile:
    """The results file: read back on resume, appended to as chunks complete."""

    def __init__(self, path: Path):
        self.path = path
        self.format = file_format(path)
        self.state_path = path.with_name(path.name + ".state.json")
        self._file: io.TextIOWrapper | None = None
        self._writer: csv.DictWriter[str] | None = None

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def read_done(self) -> dict[int, dict[str, str]]:
        """The rows already scored (status ok), by row number; error rows and a line cut off
        by an interruption are dropped (and rewritten away), so they are tried again."""
        if not self.exists():
            return {}
        text = self.path.read_text(encoding="utf-8")
        records: list[dict[str, str]] = []
        complete = text.endswith("\n")
        same_columns = True
        if self.format == "csv":
            lines = text.splitlines(keepends=True)
            if not complete and lines:
                lines = lines[:-1]  # the last line was being written when the run stopped
            reader = csv.DictReader(io.StringIO("".join(lines), newline=""))
            for rec in reader:
                records.append({k: v or "" for k, v in rec.items() if k is not None})
            # a file an older `credit` wrote: rewritten with today's columns before appending
            same_columns = reader.fieldnames == list(OUTPUT_FIELDS)
        else:
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict):
                    records.append({k: "" if v is None else str(v) for k, v in rec.items()})
        done: dict[int, dict[str, str]] = {}
        for rec in records:
            if rec.get("status") == "ok" and rec.get("evaluation") and rec.get("row", "").isdigit():
                done.setdefault(int(rec["row"]), rec)
        if len(done) != len(records) or not complete or not same_columns:
            self._rewrite(sorted(done.values(), key=lambda r: int(r["row"])))
        return done

    def _rewrite(self, records: Sequence[dict[str, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8", newline="") as f:
            if self.format == "csv":
                writer = csv.DictWriter(f, OUTPUT_FIELDS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(records)
            else:
                for rec in records:
                    f.write(json.dumps(_json_record(rec), ensure_ascii=False) + "\n")
        os.replace(tmp, self.path)

    def open(self, append: bool) -> None:
        append = append and self.exists()
        self._file = self.path.open("a" if append else "w", encoding="utf-8", newline="")
        if self.format == "csv":
            self._writer = csv.DictWriter(self._file, OUTPUT_FIELDS, extrasaction="ignore")
            if not append:
                self._writer.writeheader()
                self._file.flush()

    def write(self, records: Sequence[dict[str, str]]) -> None:
        """Write a chunk's records and flush them: what is written survives an interruption."""
        assert self._file is not None
        if self._writer is not None:
            self._writer.writerows(records)
        else:
            self._file.write(
                "".join(json.dumps(_json_record(r), ensure_ascii=False) + "\n" for r in records)
            )
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- the run key ---------------------------------------------------------------------

    def run_key(
        self, resume: bool, scorecard: str, source: Path, done: dict[int, dict[str, str]]
    ) -> tuple[str, str]:
        """The run key, and a warning ("" when none). A fresh run makes one and saves it
        before anything is sent; a resumed run reads it back."""
        if resume:
            state = self._read_state()
            if state is not None:
                if state.get("scorecard") != scorecard:
                    raise BatchFileError(
                        f"{self.path} holds results of {state.get('scorecard')}, not {scorecard}"
                    )
                return str(state["run"]), ""
            for rec in done.values():  # no state file: take the key from the results
                m = RUN_ID.match(rec.get("request_id", ""))
                if m:
                    return m.group(1), ""
        return new_run(self.state_path, source, resume and self.exists(), "scored", scorecard)

    def _read_state(self) -> dict[str, Any] | None:
        return read_state(self.state_path)


def new_run(
    state_path: Path, source: Path, had_results: bool, done: str, scorecard: str = ""
) -> tuple[str, str]:
    """A fresh run key, saved in the resume state before anything is sent, and a warning
    ("" when none) for a resumed run whose state was lost (`had_results`): rows in flight
    when it stopped may be `done` a second time."""
    run = secrets.token_hex(8)
    state = {"run": run, "scorecard": scorecard} if scorecard else {"run": run}
    state["input"] = str(source.resolve())
    state["started"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    write_state(state_path, state)
    warning = ""
    if had_results:
        warning = (
            f"no resume state ({state_path.name}) found: rows in flight when the "
            f"last run stopped may be {done} a second time"
        )
    return run, warning


def read_state(path: Path) -> dict[str, Any] | None:
    """A run's resume state (`{out}.state.json`: its run key, at least), or None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("run"), str) else None


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Save a run's resume state whole or not at all (written aside, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _json_record(rec: dict[str, str]) -> dict[str, Any]:
    """A JSON Lines record: the row number as a number, empty fields left out."""
    out: dict[str, Any] = {k: rec.get(k, "") for k in OUTPUT_FIELDS if rec.get(k)}
    if "row" in out:
        out["row"] = int(out["row"])
    return out


def chunks(rows: Sequence[InputRow], size: int) -> Iterator[Sequence[InputRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
