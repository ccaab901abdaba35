"""`credit`: the command line for the sector credit service (see docs/cli.md).

    credit scorecards list [--all-versions]
    credit scorecards show transport.taxi_driver
    credit evaluate transport.taxi_driver --subject 11010519491231002X --set violations_3pt=1
    credit batch transport.taxi_driver examples/taxi_drivers.csv --out results.csv [--resume]
    credit history 11010519491231002X [--scorecard transport.taxi_driver]
    credit get evaluations/… --purpose bid_review
    credit audit subject 11010519491231002X [--right-to-know]
    credit audit caller transport-bureau [--since 2026-12-01]
    credit test [PATHS]

Exit codes: 0 ok; 1 the server refused an evaluation or some rows failed (each field
violation on its own line); 2 usage (a bad flag or file); 3 the server is unavailable;
130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import dataclasses
import datetime as dt
import difflib
import getpass
import json
import os
import secrets
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TextIO

import grpc

from . import batch as batch_mod
from .aio import AsyncCreditClient
from .channel import DEFAULT_TARGET, Deadlines, tls_credentials
from .client import CreditClient, ItemResult, scorecard_id
from .errors import CreditError, UnavailableError
from .inputs import date_value
from .render import (
    Cell,
    CellLike,
    Column,
    Style,
    access_table,
    colour_wanted,
    evaluation_view,
    history_table,
    scorecard_view,
    scorecards_table,
    subject_access_table,
    table,
    title_inline,
    whatif_view,
)
from .resources import (
    AccessRecord,
    Evaluation,
    Exploration,
    FieldViolation,
    Scorecard,
    SubjectAccess,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
SERVER_ENV = "SECTOR_CREDIT_SERVER"
CALLER_ENV = "SECTOR_CREDIT_CALLER"
PURPOSE_ENV = "SECTOR_CREDIT_PURPOSE"
CA_ENV, CERT_ENV, KEY_ENV, TOKEN_ENV = ("SECTOR_CREDIT_CA", "SECTOR_CREDIT_CERT", "SECTOR_CREDIT_KEY",
                                        "SECTOR_CREDIT_TOKEN")


class UsageError(Exception):
    """A bad argument or file found after parsing: exit 2."""


# -- parser --------------------------------------------------------------------------------


def _common_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The connection and output flags, accepted before or after the command (`credit
    --server X scorecards list` and `credit scorecards list --server X`); in the
    sub-commands they default to 'not given', so they never undo the ones given before."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection")
    group.add_argument("--server", metavar="HOST:PORT",
                       default=default(os.environ.get(SERVER_ENV, DEFAULT_TARGET)),
                       help=f"the service's address [{SERVER_ENV}, default {DEFAULT_TARGET}]")
    group.add_argument("--caller", default=default(os.environ.get(CALLER_ENV) or _user()),
                       help=f"a label sent as x-caller (the server records who --cert or --token prove) [{CALLER_ENV}, "
                            "default: your user name]")
    group.add_argument("--tls", action="store_true", default=default(False),
                       help="connect with TLS (the system's root certificates, or --ca-file)")
    group.add_argument("--ca", "--ca-file", metavar="PEM", dest="ca_file",
                       default=default(os.environ.get(CA_ENV) or None),
                       help=f"root certificates that sign the server's (implies --tls) [{CA_ENV}]")
    group.add_argument("--cert", metavar="PEM", default=default(os.environ.get(CERT_ENV) or None),
                       help=f"client certificate for mutual TLS (implies --tls) [{CERT_ENV}]")
    group.add_argument("--key", metavar="PEM", default=default(os.environ.get(KEY_ENV) or None),
                       help=f"private key of --cert [{KEY_ENV}]")
    group.add_argument("--token", metavar="TOKEN", default=default(os.environ.get(TOKEN_ENV) or None),
                       help=f"API key or JWT, sent as `authorization: Bearer` [{TOKEN_ENV}; prefer the"
                            " variable: a flag shows in the process list]")
    group.add_argument("--timeout", type=float, metavar="SECONDS", default=default(None),
                       help="deadline of each call (default 10; a batch chunk 120)")
    output = parser.add_argument_group("output")
    output.add_argument("--lang", choices=["zh", "en", "both"], default=default("both"),
                        help="language of titles in tables (default both)")


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in some containers
        return "cli"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="credit", description="Transparent, point-based sector credit grades: the command line.",
        epilog="Exit codes: 0 ok, 1 evaluation or validation errors, 2 usage, 3 server unavailable.")
    _common_options(ap, suppress=False)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str, **kw: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, **kw)
        _common_options(p, suppress=True)
        return p

    sc = sub.add_parser("scorecards", help="list scorecards or show one's definition",
                        description="List scorecards or show one's definition.")
    sc_sub = sc.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sc_sub.add_parser("list", help="the scorecards that can be evaluated")
    _common_options(p, suppress=True)
    p.add_argument("--all-versions", action="store_true",
                   help="every version of each scorecard with the day it takes effect "
                        "(default: the version in force today)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = sc_sub.add_parser("show", help="a scorecard's indicators, rules, grades and overrides")
    _common_options(p, suppress=True)
    p.add_argument("scorecard", metavar="ID", help="scorecard id, e.g. transport.taxi_driver")
    p.add_argument("--version", help="a version (default: the one in force on --as-of or today)")
    p.add_argument("--as-of", metavar="DATE", help="show the version in force on this day")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("evaluate", "evaluate one subject and explain the grade")
    p.add_argument("scorecard", metavar="ID", help="scorecard id, e.g. transport.taxi_driver")
    p.add_argument("--subject", required=True, metavar="ID", help="resident id or credit code")
    p.add_argument("--name", default="", help="the subject's display name (stored, not scored)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="values",
                   help="an indicator value (repeatable); typed by the scorecard's definition")
    p.add_argument("--file", type=Path, metavar="JSON", help="indicator values as a JSON object "
                   "({\"violations_3pt\": 1, …}); --set wins over it")
    p.add_argument("--as-of", metavar="DATE", help="the day the evaluation speaks for (default today)")
    p.add_argument("--version", help="a scorecard version (default: the one in force on as_of)")
    p.add_argument("--request-id", help="an idempotency key: repeating it returns the stored evaluation")
    p.add_argument("--validate-only", action="store_true", help="check the input; store nothing")
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")

    p = command("batch", "evaluate every row of a CSV or JSON Lines file")
    p.add_argument("scorecard", metavar="ID", help="scorecard id, e.g. transport.taxi_driver")
    p.add_argument("input", type=Path, metavar="FILE", help="FILE.csv or FILE.jsonl")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="results file (.csv or .jsonl); default: CSV on stdout")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run into --out: skip rows already there, "
                        "replay rows already scored")
    p.add_argument("--as-of", metavar="DATE", help="as_of for the rows that give none "
                   "(default: the server's today)")
    p.add_argument("--chunk-size", type=int, default=200, metavar="N",
                   help="rows per BatchEvaluate call (default 200)")
    p.add_argument("--parallel", type=int, default=4, metavar="N",
                   help="BatchEvaluate calls in flight (default 4)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def purpose_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--purpose", metavar="CODE", default=os.environ.get(PURPOSE_ENV) or None,
                       help="why you read these evaluations, a purpose code of the service (e.g."
                            f" bid_review, recruitment_review), recorded in its query audit [{PURPOSE_ENV}]")
        p.add_argument("--purpose-note", metavar="TEXT", help="free text about the purpose (a case number)")

    p = command("history", "a subject's stored evaluations, newest first")
    p.add_argument("subject", metavar="SUBJECT_ID")
    p.add_argument("--scorecard", metavar="ID", help="only evaluations against this scorecard")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20; 0: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    purpose_options(p)

    p = command("get", "a stored evaluation, explained")
    p.add_argument("name", metavar="NAME", help="evaluations/{id} or the id")
    p.add_argument("--json", action="store_true", help="print the evaluation as JSON")
    purpose_options(p)

    au = sub.add_parser("audit", help="the query audit: who touched which subject, when and why",
                        description="The query audit: who touched which subject, when and why.")
    au_sub = au.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, what, help in (
            ("subject", "SUBJECT_ID", "the calls that touched one subject, newest first"),
            ("caller", "NAME", "the calls one caller made, newest first")):
        p = au_sub.add_parser(action, help=help, description=help)
        _common_options(p, suppress=True)
        p.add_argument("target", metavar=what)  # not `key`: that is --key, the client certificate's
        if action == "subject":
            p.add_argument("--right-to-know", action="store_true",
                           help="only what the subject may learn: who looked, why and on which day")
        p.add_argument("--since", metavar="WHEN", help="from this day or time on (ISO 8601; a day in local time)")
        p.add_argument("--until", metavar="WHEN", help="before this day or time")
        p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (default 50; 0: all)")
        p.add_argument("--json", action="store_true", help="print JSON")

    p = command("whatif", "what would change the grade: the smallest changes of actionable indicators "
                          "per better grade, and when overrides end (nothing is stored)")
    p.add_argument("target", metavar="NAME_OR_ID",
                   help="a stored evaluation (evaluations/{id} or the id), or with --subject a scorecard id")
    p.add_argument("--subject", metavar="ID", help="explore this input instead: resident id or credit code")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="values",
                   help="an indicator value (repeatable), as for evaluate")
    p.add_argument("--file", type=Path, metavar="JSON", help="indicator values as a JSON object; --set wins")
    p.add_argument("--as-of", metavar="DATE", help="the day the evaluation speaks for (default today)")
    p.add_argument("--version", help="a scorecard version (default: the one in force on as_of)")
    p.add_argument("--json", action="store_true", help="print JSON")
    purpose_options(p)  # a stored evaluation explored by name is a read

    p = command("report", "write a stored evaluation as a self-contained HTML credit report "
                          "(bilingual, with what would change the grade)")
    p.add_argument("name", metavar="NAME", help="evaluations/{id} or the id")
    p.add_argument("--out", type=Path, metavar="FILE", help="the HTML file (default: report-{id}.html)")
    p.add_argument("--pdf", type=Path, metavar="FILE",
                   help="also print the page to this PDF (needs Chromium on PATH)")
    purpose_options(p)

    keys = sub.add_parser("keys", help="API keys (admin role): create, list, revoke",
                          description="Issue, list and revoke the service's API keys (admin role).")
    _common_options(keys, suppress=True)
    keys_sub = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = keys_sub.add_parser("create", help="issue a key; its token is printed once")
    _common_options(p, suppress=True)
    p.add_argument("--for", dest="for_caller", required=True, metavar="CALLER",
                   help="the caller name the key proves (its roles are in the server's security configuration)")
    p.add_argument("--description", default="", help="what the key is for")
    p.add_argument("--expires-in-days", type=float, default=90.0, metavar="DAYS", help="default 90")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = keys_sub.add_parser("list", help="every key and its state; never a secret")
    _common_options(p, suppress=True)
    p.add_argument("--json", action="store_true", help="print JSON")
    p = keys_sub.add_parser("revoke", help="revoke a key at once")
    _common_options(p, suppress=True)
    p.add_argument("key_name", metavar="KEY_ID", help="apiKeys/{key_id} or the key id")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("test", help="check scorecard files and run their golden cases",
                       description="Check scorecard files and run their golden cases "
                                   "(exit 0 pass, 1 a case failed, 2 an invalid file).")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="scorecard files or folders (default: every registered scorecard)")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    return ap


# -- running -------------------------------------------------------------------------------


class Output:
    """Where a command writes: stdout for results, stderr for problems."""

    def __init__(self, stdout: TextIO, stderr: TextIO):
        self.stdout, self.stderr = stdout, stderr
        self.style = Style(colour_wanted(stdout))
        self.err_style = Style(colour_wanted(stderr))

    def lines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.stdout.write(line + "\n")

    def json(self, data: object) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")

    def error(self, error: CreditError, prefix: str = "error") -> None:
        """The error, then each field violation on its own line."""
        s = self.err_style
        self.stderr.write(f"{s(prefix + ':', 'red', 'bold')} {error.headline}\n")
        for v in error.violations:
            self.stderr.write(f"  {s(v.field, 'bold')}: {v.description}\n")


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    out = Output(stdout or sys.stdout, stderr or sys.stderr)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "test":
        from sector_credit.scorecards.golden import main as golden_main

        return golden_main([*args.paths, *(["-v"] if args.verbose else [])])
    try:
        return _COMMANDS[(args.command, getattr(args, "action", None))](args, out)
    except UsageError as exc:
        _usage_error(parser, out, str(exc))
    except UnavailableError as exc:
        out.error(exc, "server unavailable")
        out.stderr.write(f"  (is the service running at {args.server}? set --server or {SERVER_ENV})\n")
        return EXIT_UNAVAILABLE
    except CreditError as exc:
        out.error(exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        out.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED


def _usage_error(parser: argparse.ArgumentParser, out: Output, message: str) -> NoReturn:
    out.stderr.write(f"{parser.prog}: error: {message}\n")
    raise SystemExit(EXIT_USAGE)


def _credentials(args: argparse.Namespace) -> bool | grpc.ChannelCredentials:
    if args.ca_file or args.cert or args.key:
        try:
            return tls_credentials(args.ca_file, args.cert, args.key)
        except OSError as exc:
            raise UsageError(f"{exc.filename}: {exc.strerror}") from None
        except ValueError as exc:
            raise UsageError(f"--cert and --key: {exc}") from None
    return bool(args.tls)


def _deadlines(args: argparse.Namespace) -> Deadlines:
    if args.timeout is None:
        return Deadlines()
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    return Deadlines(unary=args.timeout, batch=max(args.timeout, 120.0), stream=None)


def _client(args: argparse.Namespace) -> CreditClient:
    try:
        return CreditClient(args.server, secure=_credentials(args), caller=args.caller or None,
                            deadlines=_deadlines(args), token=args.token)
    except ValueError as exc:  # a caller or token that is not ASCII
        raise UsageError(str(exc)) from None


def _async_client(args: argparse.Namespace) -> AsyncCreditClient:
    try:
        return AsyncCreditClient(args.server, secure=_credentials(args), caller=args.caller or None,
                                 deadlines=_deadlines(args), token=args.token)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# -- scorecards ----------------------------------------------------------------------------


def cmd_scorecards_list(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as client:
        cards = client.list_scorecards(all_versions=args.all_versions)
    if args.json:
        out.json([_basic(c) for c in cards])
    else:
        out.lines(scorecards_table(cards, out.style, args.lang))
    return EXIT_OK


def _basic(card: Scorecard) -> dict[str, Any]:
    data = card.to_dict()
    return {k: data[k] for k in ("name", "scorecard_id", "version", "effective_from", "digest",
                                 "title", "subject_kind", "description", "versions")}


def cmd_scorecards_show(args: argparse.Namespace, out: Output) -> int:
    as_of = _date_arg(args.as_of, "--as-of")
    with _client(args) as client:
        card = client.get_scorecard(args.scorecard, version=args.version, as_of=as_of)
    if args.json:
        out.json(card.to_dict())
    else:
        out.lines(scorecard_view(card, out.style, args.lang))
    return EXIT_OK


def _date_arg(text: str | None, flag: str) -> str | None:
    if text is None:
        return None
    try:
        return date_value(text).isoformat()
    except ValueError:
        raise UsageError(f"{flag}: expected a date YYYY-MM-DD, not {text!r}") from None


# -- evaluate ------------------------------------------------------------------------------


def _indicator_args(args: argparse.Namespace) -> dict[str, object]:
    values: dict[str, object] = {}
    if args.file is not None:
        try:
            data = json.loads(args.file.read_text(encoding="utf-8-sig"), parse_float=Decimal)
        except OSError as exc:
            raise UsageError(f"--file {args.file}: {exc.strerror}") from None
        except ValueError as exc:
            raise UsageError(f"--file {args.file}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UsageError(f"--file {args.file}: expected a JSON object of indicator values")
        values.update(data)
    for pair in args.values:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set {pair!r}: expected NAME=VALUE")
        values[name.strip()] = value
    return values


def cmd_evaluate(args: argparse.Namespace, out: Output) -> int:
    indicators = _indicator_args(args)
    as_of = _date_arg(args.as_of, "--as-of")
    with _client(args) as client:
        evaluation = client.evaluate(
            args.scorecard, args.subject, indicators, as_of=as_of, request_id=args.request_id,
            display_name=args.name, version=args.version, validate_only=args.validate_only)
        card = client.definition(args.scorecard, args.version)
    _print_evaluation(evaluation, card, args, out)
    return EXIT_OK


def cmd_get(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as client:
        evaluation, card = _stored_with_card(client, args)
    _print_evaluation(evaluation, card, args, out)
    return EXIT_OK


def _stored_with_card(client: CreditClient, args: argparse.Namespace) -> tuple[Evaluation, Scorecard | None]:
    """A stored evaluation read for the purpose given, and the scorecard version it was made
    with (None when that version is no longer served: the evaluation still explains itself)."""
    evaluation = client.get_evaluation(args.name, purpose=args.purpose, purpose_note=args.purpose_note)
    try:
        return evaluation, client.get_scorecard(evaluation.scorecard_id, version=evaluation.scorecard_version)
    except CreditError:
        return evaluation, None


def _print_evaluation(evaluation: Evaluation, card: Scorecard | None, args: argparse.Namespace,
                      out: Output) -> None:
    if args.json:
        out.json(evaluation.to_dict())
    else:
        out.lines(evaluation_view(evaluation, out.style, args.lang, card))


# -- whatif --------------------------------------------------------------------------------


def cmd_whatif(args: argparse.Namespace, out: Output) -> int:
    if args.subject is None:
        if args.values or args.file is not None or args.as_of or args.version:
            raise UsageError("--set, --file, --as-of and --version describe an input: give --subject too "
                             "(a stored evaluation is explored as it was made)")
        with _client(args) as client:
            explored = client.explore_evaluation(args.target, purpose=args.purpose,
                                                 purpose_note=args.purpose_note)
    else:
        indicators = _indicator_args(args)
        as_of = _date_arg(args.as_of, "--as-of")
        with _client(args) as client:
            explored = client.explore(args.target, args.subject, indicators, as_of=as_of, version=args.version)
    if args.json:
        out.json(explored.to_dict())
    else:
        out.lines(whatif_view(explored, out.style, args.lang))
    return EXIT_OK


# -- report --------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace, out: Output) -> int:
    from .report import PdfUnavailable, render_report, write_pdf  # Jinja2 only for this command

    with _client(args) as client:
        evaluation, card = _stored_with_card(client, args)
        try:
            explored: Exploration | None = client.explore_evaluation(
                evaluation.name, purpose=args.purpose, purpose_note=args.purpose_note)
        except CreditError:  # e.g. the version is no longer loaded as it was: no guidance
            explored = None
    path = args.out or Path(f"report-{evaluation.name.rsplit('/', 1)[-1]}.html")
    html = render_report(evaluation, card, explored)
    try:
        path.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror}") from None
    out.stdout.write(f"{path}\n")
    if args.pdf is not None:
        try:
            write_pdf(html, args.pdf)
        except PdfUnavailable as exc:
            out.stderr.write(f"credit report: no PDF: {exc}\n")
            return EXIT_FAILED
        out.stdout.write(f"{args.pdf}\n")
    return EXIT_OK


# -- history -------------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace, out: Output) -> int:
    if args.limit < 0:
        raise UsageError("--limit must not be negative")
    found: list[Evaluation] = []
    more = False
    with _client(args) as client:
        token = ""
        while True:
            want = args.limit - len(found) if args.limit else 0
            page = client.list_evaluations(subject_id=args.subject, scorecard=args.scorecard,
                                           page_size=min(want, 100) if want else 100, page_token=token,
                                           purpose=args.purpose, purpose_note=args.purpose_note)
            found.extend(page.evaluations)
            token = page.next_page_token
            if not token:
                break
            if args.limit and len(found) >= args.limit:
                more = True
                break
    found = found[:args.limit] if args.limit else found
    if args.json:
        out.json([e.to_dict() for e in found])
        return EXIT_OK
    if not found:
        scope = f" against {scorecard_id(args.scorecard)}" if args.scorecard else ""
        out.lines([f"no evaluations of {args.subject}{scope}"])
        return EXIT_OK
    out.lines(history_table(found, out.style))
    if more:
        out.lines([out.style(f"(the newest {len(found)}; --limit 0 shows all)", "dim")])
    return EXIT_OK


# -- audit ---------------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace, out: Output) -> int:
    if args.limit < 0:
        raise UsageError("--limit must not be negative")
    since, until = _when(args.since, "--since"), _when(args.until, "--until")
    right_to_know = getattr(args, "right_to_know", False)
    if right_to_know and (since or until):
        raise UsageError("--right-to-know lists every access of the subject: no --since or --until")
    found: list[Any] = []
    more = False
    with _client(args) as client:
        token = ""
        while True:
            want = args.limit - len(found) if args.limit else 0
            size = min(want, 100) if want else 100
            items: tuple[AccessRecord, ...] | tuple[SubjectAccess, ...]
            if right_to_know:
                page = client.list_subject_accesses(args.target, page_size=size, page_token=token)
                items, token = page.accesses, page.next_page_token
            else:
                filters = {"subject_id": args.target} if args.action == "subject" else {"caller": args.target}
                records = client.list_access_records(start_time=since, end_time=until, page_size=size,
                                                     page_token=token, **filters)
                items, token = records.access_records, records.next_page_token
            found.extend(items)
            if not token:
                break
            if args.limit and len(found) >= args.limit:
                more = True
                break
    found = found[:args.limit] if args.limit else found
    if args.json:
        out.json([_access_dict(a) for a in found])
        return EXIT_OK
    if not found:
        out.lines([f"no access records of {args.action} {args.target}"])
        return EXIT_OK
    out.lines(subject_access_table(found, out.style) if right_to_know else access_table(found, out.style))
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
        raise UsageError(f"{flag}: {text!r} is not a day (2026-12-01) or an ISO 8601 time") from None
    return when if when.tzinfo else when.astimezone()


def _access_dict(item: AccessRecord | SubjectAccess) -> dict[str, Any]:
    data = dataclasses.asdict(item)
    for key in ("create_time", "date"):
        if key in data:
            data[key] = data[key].isoformat()
    return data


# -- batch ---------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, stream: TextIO, total: int, enabled: bool):
        self.stream, self.total = stream, total
        self.enabled = enabled and stream.isatty() and total > 0
        self.done = self.failed = 0

    def advance(self, done: int, failed: int) -> None:
        self.done += done
        self.failed += failed
        if self.enabled:
            width = 30
            filled = width * self.done // self.total
            bar = "#" * filled + "." * (width - filled)
            tail = f"  {self.failed} failed" if self.failed else ""
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} rows{tail}")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def cmd_batch(args: argparse.Namespace, out: Output) -> int:
    if args.chunk_size < 1 or args.parallel < 1:
        raise UsageError("--chunk-size and --parallel must be at least 1")
    if args.resume and args.out is None:
        raise UsageError("--resume needs --out: the results file of the run to continue")
    as_of = _date_arg(args.as_of, "--as-of")
    try:
        rows, columns = batch_mod.read_rows(args.input, default_as_of=as_of)
        output = batch_mod.OutputFile(args.out) if args.out is not None else None
        if output is not None and output.exists() and not args.resume:
            raise UsageError(f"{args.out} exists: pass --resume to continue that run, "
                             "or remove it to start again")
    except batch_mod.BatchFileError as exc:
        raise UsageError(str(exc)) from None
    try:
        return asyncio.run(_run_batch(args, out, rows, columns, output))
    except batch_mod.BatchFileError as exc:
        raise UsageError(str(exc)) from None


async def _run_batch(args: argparse.Namespace, out: Output, rows: list[batch_mod.InputRow],
                     columns: list[str], output: batch_mod.OutputFile | None) -> int:
    scorecard = scorecard_id(args.scorecard)
    done = output.read_done() if output is not None and args.resume else {}
    by_number = {row.number: row for row in rows}
    for number, rec in done.items():
        row = by_number.get(number)
        if row is None or rec.get("subject_id", "").upper() != row.subject_id.upper():
            raise batch_mod.BatchFileError(
                f"{args.out} does not match {args.input}: row {number} is "
                f"{rec.get('subject_id')!r} there and {row.subject_id if row else 'missing'!r} here")
    client = _async_client(args)
    try:
        card = await client.definition(scorecard)
        _check_columns(card, columns, args.input)  # before anything is sent or saved
        if output is not None:
            run, warning = output.run_key(args.resume, scorecard, args.input, done)
            if warning:
                out.stderr.write(f"warning: {warning}\n")
        else:
            run = secrets.token_hex(8)
        batch = BatchRun(client, card, run, out, output, [r for r in rows if r.number not in done],
                         not args.no_progress)
        grades = collections.Counter(r.get("grade", "") for r in done.values())
        where = f"; re-run with --resume to continue into {args.out}" if output is not None else ""
        try:
            await batch.run(args.chunk_size, args.parallel)
        except UnavailableError as exc:
            batch.progress.clear()
            out.error(exc, "server unavailable")
            out.stderr.write(f"stopped after {batch.progress.done} of {len(batch.todo)} rows{where}\n")
            return EXIT_UNAVAILABLE
        except (KeyboardInterrupt, asyncio.CancelledError):
            batch.progress.clear()
            out.stderr.write(f"stopped after {batch.progress.done} of {len(batch.todo)} rows{where}\n")
            raise
        finally:
            if output is not None:
                output.close()
        batch.progress.clear()
        grades.update(batch.grades)
        summary = _batch_summary(card, grades, len(rows), batch.failed, len(done), args.out, out.style)
        target = out.stdout if output is not None else out.stderr
        for line in summary:
            target.write(line + "\n")
        return EXIT_FAILED if batch.failed else EXIT_OK
    finally:
        await client.close()


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

    def __init__(self, client: AsyncCreditClient, card: Scorecard, run: str, out: Output,
                 output: batch_mod.OutputFile | None, todo: list[batch_mod.InputRow], progress: bool):
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

    async def _send(self, chunk: Sequence[batch_mod.InputRow]) -> list[tuple[batch_mod.InputRow, ItemResult | None]]:
        """Each row of the chunk with its result; None for a row refused before sending."""
        sendable = [(row, batch_mod.with_request_id(row.item, self.run_key, row.number))
                    for row in chunk if row.item is not None]
        results: list[ItemResult] = []
        if sendable:
            try:
                results = await self.client.batch_evaluate_chunk(
                    self.card.scorecard_id, [item for _, item in sendable])
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
        self.progress.clear()
        s, err = self.out.err_style, self.out.stderr
        where = f"row {row.number} (line {row.line})" + (f" {row.subject_id}" if row.subject_id else "")
        if error is None:
            n = len(row.problems)
            err.write(f"{s(where + ':', 'red')} not sent: {n} problem{'s' if n != 1 else ''}\n")
            violations: Sequence[FieldViolation] = row.problems
        else:
            err.write(f"{s(where + ':', 'red')} {error.headline}\n")
            violations = error.violations
        for v in violations:
            err.write(f"  {s(v.field, 'bold')}: {v.description}\n")


def _batch_summary(card: Scorecard, grades: collections.Counter[str], total: int,
                   failed: Sequence[int], earlier: int, out_path: Path | None,
                   style: Style) -> list[str]:
    scored = sum(grades.values())
    head = f"{card.scorecard_id}: {scored} of {total} rows scored, {len(failed)} failed"
    if earlier:
        head += f" ({earlier} scored by the earlier run)"
    if out_path is not None:
        head += f"; results in {out_path}"
    rows: list[list[CellLike]] = []
    for grade in card.grades:
        rows.append([Cell(grade.code, ("bold", grade.colour)), title_inline(grade.title, "both"),
                     str(grades.pop(grade.code, 0))])
    for code, n in sorted(grades.items()):  # a grade the current definition no longer has
        rows.append([code, "", str(n)])
    rows.append([Cell("failed", ("red",) if failed else ()), "", str(len(failed))])
    lines = [head, *table([Column("GRADE"), Column("TITLE", wrap=True), Column("ROWS", "r")],
                          rows, style)]
    if failed:
        shown = ", ".join(str(n) for n in sorted(failed)[:20])
        lines.append(f"failed rows: {shown}{', …' if len(failed) > 20 else ''}")
    return lines


# -- API keys ------------------------------------------------------------------------------


def _key_line(key: dict[str, Any]) -> str:
    state = str(key.get("state", "")).removeprefix("API_KEY_STATE_").lower()
    return (f"{key['name'].removeprefix('apiKeys/')}  {state:8}  {key.get('caller', '')}  "
            f"expires {key.get('expire_time', 'never')}  {key.get('description', '')}").rstrip()


def cmd_keys_create(args: argparse.Namespace, out: Output) -> int:
    if args.expires_in_days <= 0:
        raise UsageError("--expires-in-days must be positive")
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=args.expires_in_days)
    with _client(args) as client:
        key = client.create_api_key(args.for_caller, description=args.description, expire_time=expires)
    if args.json:
        out.json(key)
    else:
        out.lines([_key_line(key), "token (shown once, store it now; send it with --token or "
                   f"{TOKEN_ENV}):", key["token"]])
    return EXIT_OK


def cmd_keys_list(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as client:
        keys = client.list_api_keys()
    if args.json:
        out.json(keys)
    else:
        out.lines([_key_line(k) for k in keys] or ["no API keys"])
    return EXIT_OK


def cmd_keys_revoke(args: argparse.Namespace, out: Output) -> int:
    with _client(args) as client:
        key = client.revoke_api_key(args.key_name)
    if args.json:
        out.json(key)
    else:
        out.lines([_key_line(key)])
    return EXIT_OK


_COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace, Output], int]] = {
    ("keys", "create"): cmd_keys_create,
    ("keys", "list"): cmd_keys_list,
    ("keys", "revoke"): cmd_keys_revoke,
    ("scorecards", "list"): cmd_scorecards_list,
    ("scorecards", "show"): cmd_scorecards_show,
    ("evaluate", None): cmd_evaluate,
    ("get", None): cmd_get,
    ("batch", None): cmd_batch,
    ("history", None): cmd_history,
    ("audit", "subject"): cmd_audit,
    ("audit", "caller"): cmd_audit,
    ("whatif", None): cmd_whatif,
    ("report", None): cmd_report,
}


def run() -> None:
    """The console script."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # `credit … | head`: the reader left; no traceback, as other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool killed by SIGPIPE


if __name__ == "__main__":
    run()
