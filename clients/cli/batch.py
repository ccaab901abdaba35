"""`credit batch`: every row of a CSV or JSON Lines file, sent as BatchEvaluate chunks with a
few calls in flight; results written in input order, resumable without scoring a row twice."""

from __future__ import annotations

import asyncio
import collections
import csv
import difflib
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import click
import rich.progress
from rich.console import Console
from rich.text import Text

from .. import batch as batch_mod
from ..aio import AsyncCreditClient
from ..core import ItemResult, scorecard_id
from ..errors import CreditError, UnavailableError
from ..render import Cell, CellLike, Column, Style, table, title_inline
from ..resources import Evaluation, FieldViolation, Scorecard
from .session import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, Output, Session, UsageError, date_arg


@click.command("batch")
@click.argument("scorecard", metavar="ID")
@click.argument("input_path", metavar="FILE", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="results file (.csv or .jsonl); default: CSV on stdout",
)
@click.option(
    "--resume",
    is_flag=True,
    help="continue an interrupted run into --out: skip rows already there, "
    "replay rows already scored",
)
@click.option(
    "--as-of",
    metavar="DATE",
    help="as_of for the rows that give none (default: the server's today)",
)
@click.option(
    "--chunk-size",
    type=int,
    default=200,
    metavar="N",
    help="rows per BatchEvaluate call (default 200)",
)
@click.option(
    "--parallel", type=int, default=4, metavar="N", help="BatchEvaluate calls in flight (default 4)"
)
@click.option("--no-progress", is_flag=True, help="no progress bar on stderr")
@click.pass_obj
def batch(
    session: Session,
    scorecard: str,
    input_path: Path,
    out_path: Path | None,
    resume: bool,
    as_of: str | None,
    chunk_size: int,
    parallel: int,
    no_progress: bool,
) -> int:
    """Evaluate every row of a CSV or JSON Lines file.

    ID: the scorecard, e.g. transport.taxi_driver; FILE: FILE.csv or FILE.jsonl.
    """
    if chunk_size < 1 or parallel < 1:
        raise UsageError("--chunk-size and --parallel must be at least 1")
    if resume and out_path is None:
        raise UsageError("--resume needs --out: the results file of the run to continue")
    day = date_arg(as_of, "--as-of")
    try:
        rows, columns = batch_mod.read_rows(input_path, default_as_of=day)
        output = batch_mod.OutputFile(out_path) if out_path is not None else None
        if output is not None and output.exists() and not resume:
            raise UsageError(
                f"{out_path} exists: pass --resume to continue that run, "
                "or remove it to start again"
            )
    except batch_mod.BatchFileError as exc:
        raise UsageError(str(exc)) from None
    job = Job(
        scorecard_id(scorecard), input_path, out_path, resume, chunk_size, parallel, not no_progress
    )
    try:
        return asyncio.run(_run_batch(session, job, rows, columns, output))
    except batch_mod.BatchFileError as exc:
        raise UsageError(str(exc)) from None


class Job:
    """What `credit batch` was asked to do."""

    def __init__(
        self,
        scorecard: str,
        source: Path,
        out: Path | None,
        resume: bool,
        chunk_size: int,
        parallel: int,
        progress: bool,
    ):
        self.scorecard, self.source, self.out, self.resume = scorecard, source, out, resume
        self.chunk_size, self.parallel, self.progress = chunk_size, parallel, progress


class Progress:
    """rich's progress bar on stderr, only when stderr is a terminal: rows done of all, their
    rate and the time left; lines written meanwhile (failed rows) go above it."""

    def __init__(self, stream: TextIO, total: int, enabled: bool):
        self.stream, self.total = stream, total
        self.done = self.failed = 0
        self._bar: rich.progress.Progress | None = None
        if enabled and total > 0 and Console(file=stream).is_terminal:
            self._bar = rich.progress.Progress(
                rich.progress.BarColumn(),
                rich.progress.MofNCompleteColumn(),
                rich.progress.TextColumn("rows"),
                RateColumn(),
                rich.progress.TimeRemainingColumn(),
                rich.progress.TextColumn("{task.description}"),
                console=Console(file=stream),
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task("", total=total)
            self._bar.start()

    def advance(self, done: int, failed: int) -> None:
        self.done += done
        self.failed += failed
        if self._bar is not None:
            self._bar.update(
                self._task, advance=done, description=f"{self.failed} failed" if self.failed else ""
            )

    def write(self, text: str) -> None:
        """`text` on stderr, above the bar while it shows."""
        if self._bar is not None:
            self._bar.console.print(Text.from_ansi(text.rstrip("\n")), soft_wrap=True)
        else:
            self.stream.write(text)

    def clear(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class RateColumn(rich.progress.ProgressColumn):
    """Rows per second, as rich measures them."""

    def render(self, task: rich.progress.Task) -> Text:
        return Text(f"{task.speed:,.0f} rows/s" if task.speed else "- rows/s")


def _check_columns(card: Scorecard, columns: Sequence[str], source: Path) -> None:
    """The file's columns (CSV header, or JSON Lines keys) against the scorecard, before
    anything is sent: a required indicator no column gives, or a column that is not an
    indicator (the service refuses unknown indicators), would fail every row; each is
    named once, and the run stops (exit 2)."""
    given = set(columns)
    missing = [i.name for i in card.indicators if i.required and i.name not in given]
    unknown = [c for c in columns if card.indicator(c) is None]
    if not missing and not unknown:
        return
    problems = []
    if missing:
        problems.append(f"missing required indicators of {card.scorecard_id}: {', '.join(missing)}")
    if unknown:
        names = [i.name for i in card.indicators]
        hints = []
        for c in unknown:
            close = difflib.get_close_matches(c, names, n=1)
            hints.append(f"{c!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        problems.append(f"not indicators of {card.scorecard_id}: {', '.join(hints)}")
    raise batch_mod.BatchFileError(f"{source}: {'; '.join(problems)}; nothing was sent")


class BatchRun:
    """The rows still to score, sent as BatchEvaluate chunks with a few calls in flight;
    results are written, and failures reported, in input order as chunks complete."""

    def __init__(
        self,
        client: AsyncCreditClient,
        card: Scorecard,
        run: str,
        out: Output,
        output: batch_mod.OutputFile | None,
        todo: list[batch_mod.InputRow],
        progress: bool,
    ):
        self.client, self.card, self.run_key, self.out, self.output = client, card, run, out, output
        self.todo = todo
        self.progress = Progress(out.stderr, len(todo), progress)
        self.grades: collections.Counter[str] = collections.Counter()
        self.failed: list[int] = []
        self._stdout_writer: csv.DictWriter[str] | None = None

    async def run(self, chunk_size: int, parallel: int) -> None:
        if self.output is not None:
            self.output.open(append=True)
        else:
            self._stdout_writer = csv.DictWriter(self.out.stdout, batch_mod.OUTPUT_FIELDS)
            self._stdout_writer.writeheader()
        pending: collections.deque[asyncio.Task[list[tuple[batch_mod.InputRow, ItemResult | None]]]]
        pending = collections.deque()
        try:
            for chunk in batch_mod.chunks(self.todo, chunk_size):
                pending.append(asyncio.ensure_future(self._send(chunk)))
                if len(pending) >= parallel:
                    self._finish(await pending.popleft())
            while pending:
                self._finish(await pending.popleft())
        finally:
            for task in pending:
                task.cancel()

    async def _send(
        self, chunk: Sequence[batch_mod.InputRow]
    ) -> list[tuple[batch_mod.InputRow, ItemResult | None]]:
        """Each row of the chunk with its result; None for a row refused before sending."""
        sendable = [
            (row, batch_mod.with_request_id(row.item, self.run_key, row.number))
            for row in chunk
            if row.item is not None
        ]
        results: list[ItemResult] = []
        if sendable:
            try:
                # BASIC: the file gets grades, scores, overrides and reasons, never the lines
                results = await self.client.batch_evaluate_chunk(
                    self.card.scorecard_id, [item for _, item in sendable], view="basic"
                )
            except UnavailableError:
                raise
            except CreditError as exc:  # the whole call was refused: every row of it fails
                results = [exc] * len(sendable)
        outcome = {row.number: result for (row, _), result in zip(sendable, results)}
        return [(row, outcome.get(row.number)) for row in chunk]

    def _finish(self, outcomes: list[tuple[batch_mod.InputRow, ItemResult | None]]) -> None:
        records = []
        for row, result in outcomes:
            if isinstance(result, Evaluation):
                records.append(batch_mod.ok_record(row, result))
                self.grades[result.grade.code] += 1
            else:
                records.append(batch_mod.error_record(row, result))
                self.failed.append(row.number)
                self._report(row, result)
        if self.output is not None:
            self.output.write(records)
        elif self._stdout_writer is not None:
            self._stdout_writer.writerows(records)
            self.out.stdout.flush()
        self.progress.advance(len(records), sum(1 for r in records if r["status"] != "ok"))

    def _report(self, row: batch_mod.InputRow, error: CreditError | None) -> None:
        """A failed row on stderr: its number and line, then each problem on its own line."""
        s = self.out.err_style
        where = f"row {row.number} (line {row.line})" + (
            f" {row.subject_id}" if row.subject_id else ""
        )
        if error is None:
            n = len(row.problems)
            lines = [f"{s(where + ':', 'red')} not sent: {n} problem{'s' if n != 1 else ''}"]
            violations: Sequence[FieldViolation] = row.problems
        else:
            lines = [f"{s(where + ':', 'red')} {error.headline}"]
            violations = error.violations
        lines += [f"  {s(v.field, 'bold')}: {v.description}" for v in violations]
        self.progress.write("\n".join(lines) + "\n")


def _batch_summary(
    card: Scorecard,
    grades: collections.Counter[str],
    total: int,
    failed: Sequence[int],
    earlier: int,
    out_path: Path | None,
    style: Style,
) -> list[str]:
    scored = sum(grades.values())
    head = f"{card.scorecard_id}: {scored} of {total} rows scored, {len(failed)} failed"
    if earlier:
        head += f" ({earlier} scored by the earlier run)"
    if out_path is not None:
        head += f"; results in {out_path}"
    rows: list[list[CellLike]] = []
    for grade in card.grades:
        rows.append(
            [
                Cell(grade.code, ("bold", grade.colour)),
                title_inline(grade.title, "both"),
                str(grades.pop(grade.code, 0)),
            ]
        )
    for code, n in sorted(grades.items()):  # a grade the current definition no longer has
        rows.append([code, "", str(n)])
    rows.append([Cell("failed", ("red",) if failed else ()), "", str(len(failed))])
    lines = [
        head,
        *table([Column("GRADE"), Column("TITLE", wrap=True), Column("ROWS", "r")], rows, style),
    ]
    if failed:
        shown = ", ".join(str(n) for n in sorted(failed)[:20])
        lines.append(f"failed rows: {shown}{', …' if len(failed) > 20 else ''}")
    return lines


async def _run_batch(
    session: Session,
    job: Job,
    rows: list[batch_mod.InputRow],
    columns: list[str],
    output: batch_mod.OutputFile | None,
) -> int:
    out, scorecard = session.out, job.scorecard
    done = output.read_done() if output is not None and job.resume else {}
    by_number = {row.number: row for row in rows}
    for number, rec in done.items():
        row = by_number.get(number)
        if row is None or rec.get("subject_id", "").upper() != row.subject_id.upper():
            raise batch_mod.BatchFileError(
                f"{job.out} does not match {job.source}: row {number} is "
                f"{rec.get('subject_id')!r} there and {row.subject_id if row else 'missing'!r} here"
            )
    client = session.async_client()
    try:
        card = await client.definition(scorecard)
        _check_columns(card, columns, job.source)  # before anything is sent or saved
        if output is not None:
            run, warning = output.run_key(job.resume, scorecard, job.source, done)
            if warning:
                out.stderr.write(f"warning: {warning}\n")
        else:
            run = secrets.token_hex(8)
        batch = BatchRun(
            client, card, run, out, output, [r for r in rows if r.number not in done], job.progress
        )
        grades = collections.Counter(r.get("grade", "") for r in done.values())
        where = f"; re-run with --resume to continue into {job.out}" if output is not None else ""
        try:
            await batch.run(job.chunk_size, job.parallel)
        except UnavailableError as exc:
            batch.progress.clear()
            out.error(exc, "server unavailable")
            out.stderr.write(
                f"stopped after {batch.progress.done} of {len(batch.todo)} rows{where}\n"
            )
            return EXIT_UNAVAILABLE
        except (KeyboardInterrupt, asyncio.CancelledError):
            batch.progress.clear()
            out.stderr.write(
                f"stopped after {batch.progress.done} of {len(batch.todo)} rows{where}\n"
            )
            raise
        finally:
            batch.progress.clear()
            if output is not None:
                output.close()
        grades.update(batch.grades)
        summary = _batch_summary(
            card, grades, len(rows), batch.failed, len(done), job.out, out.style
        )
        target = out.stdout if output is not None else out.stderr
        for line in summary:
            target.write(line + "\n")
        return EXIT_FAILED if batch.failed else EXIT_OK
    finally:
        await client.close()
