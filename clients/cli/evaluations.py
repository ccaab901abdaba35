"""`credit evaluate`, `get`, `history`, `whatif` and `report`: one subject's evaluations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import click

from ..client import CreditClient
from ..core import scorecard_id
from ..errors import CreditError
from ..render import evaluation_view, history_table, whatif_view
from ..resources import Evaluation, Exploration, Scorecard
from .session import (
    EXIT_FAILED,
    EXIT_OK,
    Session,
    UsageError,
    collect,
    date_arg,
    indicator_values,
    input_options,
    json_option,
    lang_option,
    limit_option,
    purpose_options,
)


@click.command("evaluate")
@click.argument("scorecard", metavar="ID")
@click.option("--subject", required=True, metavar="ID", help="resident id or credit code")
@click.option("--name", default="", help="the subject's display name (stored, not scored)")
@input_options
@click.option("--request-id", help="an idempotency key: repeating it returns the stored evaluation")
@click.option("--validate-only", is_flag=True, help="check the input; store nothing")
@click.option(
    "--from-records",
    is_flag=True,
    help="also list the credit records the server read for the indicators it derives "
    "from records (those need no --set)",
)
@click.option("--json", "as_json", is_flag=True, help="print the evaluation as JSON")
@lang_option
@click.pass_obj
def evaluate(
    session: Session,
    scorecard: str,
    subject: str,
    name: str,
    values: tuple[str, ...],
    values_file: Path | None,
    as_of: str | None,
    version: str | None,
    request_id: str | None,
    validate_only: bool,
    from_records: bool,
    as_json: bool,
    lang: str | None,
) -> int:
    """Evaluate one subject and explain the grade.

    ID: the scorecard, e.g. transport.taxi_driver.
    """
    indicators = indicator_values(values, values_file)
    day = date_arg(as_of, "--as-of")
    with session.client() as client:
        evaluation = client.evaluate(
            scorecard,
            subject,
            indicators,
            as_of=day,
            request_id=request_id,
            display_name=name,
            version=version,
            validate_only=validate_only,
        )
        card = client.definition(scorecard, version)
    _print_evaluation(session, evaluation, card, as_json, lang)
    if from_records and not as_json:
        from ..records_cli import evidence_lines

        session.out.lines(evidence_lines(evaluation.raw))
    return EXIT_OK


@click.command("get")
@click.argument("name", metavar="NAME")
@click.option("--json", "as_json", is_flag=True, help="print the evaluation as JSON")
@purpose_options
@lang_option
@click.pass_obj
def get(
    session: Session,
    name: str,
    as_json: bool,
    purpose: str | None,
    purpose_note: str | None,
    lang: str | None,
) -> int:
    """A stored evaluation, explained.

    NAME: evaluations/{id} or the id.
    """
    with session.client() as client:
        evaluation, card = stored_with_card(client, name, purpose, purpose_note)
    _print_evaluation(session, evaluation, card, as_json, lang)
    return EXIT_OK


def stored_with_card(
    client: CreditClient, name: str, purpose: str | None, purpose_note: str | None
) -> tuple[Evaluation, Scorecard | None]:
    """A stored evaluation read for the purpose given, and the scorecard version it was made
    with (None when that version is no longer served: the evaluation still explains itself)."""
    evaluation = client.get_evaluation(name, purpose=purpose, purpose_note=purpose_note)
    try:
        return evaluation, client.get_scorecard(
            evaluation.scorecard_id, version=evaluation.scorecard_version
        )
    except CreditError:
        return evaluation, None


def _print_evaluation(
    session: Session,
    evaluation: Evaluation,
    card: Scorecard | None,
    as_json: bool,
    lang: str | None,
) -> None:
    out = session.out
    if as_json:
        out.json(evaluation.to_dict())
    else:
        out.lines(evaluation_view(evaluation, out.style, session.language(lang), card))


@click.command("whatif")
@click.argument("target", metavar="NAME_OR_ID")
@click.option(
    "--subject", metavar="ID", help="explore this input instead: resident id or credit code"
)
@input_options
@json_option
@purpose_options  # a stored evaluation explored by name is a read
@lang_option
@click.pass_obj
def whatif(
    session: Session,
    target: str,
    subject: str | None,
    values: tuple[str, ...],
    values_file: Path | None,
    as_of: str | None,
    version: str | None,
    as_json: bool,
    purpose: str | None,
    purpose_note: str | None,
    lang: str | None,
) -> int:
    """What would change the grade (nothing is stored).

    The smallest changes of actionable indicators per better grade, and when overrides end.
    NAME_OR_ID: a stored evaluation (evaluations/{id} or the id; a read, so with --purpose),
    or with --subject a scorecard id.
    """
    if subject is None:
        if values or values_file is not None or as_of or version:
            raise UsageError(
                "--set, --file, --as-of and --version describe an input: give "
                "--subject too (a stored evaluation is explored as it was made)"
            )
        with session.client() as client:
            explored = client.explore_evaluation(target, purpose=purpose, purpose_note=purpose_note)
    else:
        indicators = indicator_values(values, values_file)
        day = date_arg(as_of, "--as-of")
        with session.client() as client:
            explored = client.explore(target, subject, indicators, as_of=day, version=version)
    out = session.out
    if as_json:
        out.json(explored.to_dict())
    else:
        out.lines(whatif_view(explored, out.style, session.language(lang)))
    return EXIT_OK


@click.command("report")
@click.argument("name", metavar="NAME", required=False)
@click.option(
    "--history",
    "history_of",
    metavar="SUBJECT_ID",
    help="instead: this subject's evaluations against --scorecard, its grades over time",
)
@click.option("--scorecard", metavar="ID", help="with --history: the scorecard the grades are of")
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="the HTML file (default: report-{id}.html, report-history-{scorecard}.html)",
)
@click.option(
    "--pdf",
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="also print the page to this PDF (needs Chromium on PATH)",
)
@purpose_options
@click.pass_obj
def report(
    session: Session,
    name: str | None,
    history_of: str | None,
    scorecard: str | None,
    out_path: Path | None,
    pdf: Path | None,
    purpose: str | None,
    purpose_note: str | None,
) -> int:
    """Write a stored evaluation, or a subject's history, as an HTML credit report.

    The page is self-contained and bilingual. NAME (evaluations/{id} or the id): the
    evaluation, with what would change the grade. --history SUBJECT_ID --scorecard ID
    instead: the subject's grades over time and its evaluations.
    """
    from ..report import (  # Jinja2 here only
        PdfUnavailable,
        render_history,
        render_report,
        write_pdf,
    )

    if (name is None) == (history_of is None):
        raise UsageError("give an evaluation NAME, or --history SUBJECT_ID --scorecard ID")
    if history_of is not None and not scorecard:
        raise UsageError("--history needs --scorecard: a history shows the grades of one scorecard")
    if history_of is None and scorecard:
        raise UsageError("--scorecard goes with --history (an evaluation names its own scorecard)")
    out = session.out
    if history_of is not None:
        assert scorecard is not None
        card_id = scorecard_id(scorecard)
        with session.client() as client:
            found, _ = subject_evaluations(client, history_of, card_id, 0, purpose, purpose_note)
            try:
                card: Scorecard | None = client.get_scorecard(card_id)
            except CreditError:
                card = None
        if not found:
            out.stderr.write(
                f"credit report: no evaluations of {history_of} against {card_id}:"
                " no report written\n"
            )
            return EXIT_FAILED
        path = out_path or Path(f"report-history-{card_id}.html")
        html = render_history(list(found), card, card_id, dt.datetime.now(dt.UTC))
    else:
        assert name is not None
        with session.client() as client:
            evaluation, card = stored_with_card(client, name, purpose, purpose_note)
            try:
                explored: Exploration | None = client.explore_evaluation(
                    evaluation.name, purpose=purpose, purpose_note=purpose_note
                )
            except CreditError:  # e.g. the version is no longer loaded as it was: no guidance
                explored = None
        path = out_path or Path(f"report-{evaluation.name.rsplit('/', 1)[-1]}.html")
        html = render_report(evaluation, card, explored)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror}") from None
    out.stdout.write(f"{path}\n")
    if pdf is not None:
        try:
            write_pdf(html, pdf)
        except PdfUnavailable as exc:
            out.stderr.write(f"credit report: no PDF: {exc}\n")
            return EXIT_FAILED
        out.stdout.write(f"{pdf}\n")
    return EXIT_OK


def subject_evaluations(
    client: CreditClient,
    subject: str,
    scorecard: str | None,
    limit: int,
    purpose: str | None,
    purpose_note: str | None,
) -> tuple[list[Evaluation], bool]:
    """A subject's stored evaluations (against `scorecard`, if given), newest made first,
    read for `purpose`: at most `limit` (0: all), and whether there were more."""

    def fetch(size: int, token: str) -> tuple[Sequence[Evaluation], str]:
        page = client.list_evaluations(
            subject_id=subject,
            scorecard=scorecard,
            page_size=size,
            page_token=token,
            purpose=purpose,
            purpose_note=purpose_note,
        )
        return page.evaluations, page.next_page_token

    return collect(fetch, limit)


@click.command("history")
@click.argument("subject", metavar="SUBJECT_ID")
@click.option("--scorecard", metavar="ID", help="only evaluations against this scorecard")
@limit_option(20)
@json_option
@purpose_options
@click.pass_obj
def history(
    session: Session,
    subject: str,
    scorecard: str | None,
    limit: int,
    as_json: bool,
    purpose: str | None,
    purpose_note: str | None,
) -> int:
    """A subject's stored evaluations, newest first."""
    with session.client() as client:
        found, more = subject_evaluations(client, subject, scorecard, limit, purpose, purpose_note)
    out = session.out
    if as_json:
        out.json([e.to_dict() for e in found])
        return EXIT_OK
    if not found:
        scope = f" against {scorecard_id(scorecard)}" if scorecard else ""
        out.lines([f"no evaluations of {subject}{scope}"])
        return EXIT_OK
    out.lines(history_table(found, out.style))
    if more:
        out.lines([out.style(f"(the newest {len(found)}; --limit 0 shows all)", "dim")])
    return EXIT_OK
