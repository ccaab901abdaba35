"""Check scorecards and run the golden cases they carry (in the spirit of `opa test`).

    scorecard-test                     # every scorecard the installed plugins register
    scorecard-test path/to/card.toml   # a file, or a folder of them
    scorecard-test -v …                # also list the cases that pass

Exit 0 when every file is valid and every case passes; 1 when a case fails; 2 when a file is
invalid (each problem is printed as `file: path: reason`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from .engine import CompiledScorecard, compile_scorecard
from .loader import iter_scorecard_files, load_file
from .model import (
    EvaluationResult,
    GoldenCase,
    InvalidInput,
    InvalidScorecard,
    RecordEvidence,
    Scorecard,
    Subject,
    SubjectKind,
)
from .records import builtin_kinds, evidence_of, fill_from_records, submitted_derived

DEFAULT_AS_OF = dt.date(2026, 1, 1)
SAMPLE_IDS = {
    SubjectKind.PERSON: "11010519491231002X",
    SubjectKind.ORGANIZATION: "91350100M000100Y43",
}


@dataclass
class CaseOutcome:
    scorecard: str
    version: str
    case: str
    mismatches: list[tuple[str, str, str]] = field(default_factory=list)  # (what, expected, actual)

    @property
    def passed(self) -> bool:
        return not self.mismatches


def _dec(x: object) -> Decimal | None:
    if x is None or (isinstance(x, str) and x.lower() == "none"):
        return None
    try:
        return Decimal(str(x))
    except InvalidOperation:
        return Decimal("NaN")


def _show(x: object) -> str:
    if x is None:
        return "none"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(_show(i) for i in x) + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in x.items()) + "}"
    return str(x)


def case_subject(card: Scorecard, case: GoldenCase) -> Subject:
    """The subject a case evaluates: its own, else the sample id of the card's kind."""
    subj = case.subject or {}
    try:
        kind = SubjectKind(subj.get("kind", card.subject_kind.value))
    except ValueError:
        kind = card.subject_kind
    return Subject(kind, subj.get("id", SAMPLE_IDS[kind]), subj.get("display_name", ""))


def case_indicators(card: Scorecard, case: GoldenCase, subject: Subject) -> dict[str, object]:
    """The case's indicators with those derived from records filled from the case's records,
    as the server fills them from its store; InvalidInput when the case submits a derived
    one (the server refuses that before anything is derived or scored)."""
    return case_input(card, case, subject)[0]


def case_input(
    card: Scorecard, case: GoldenCase, subject: Subject
) -> tuple[dict[str, object], tuple[RecordEvidence, ...]]:
    """`case_indicators` and the evidence the server would keep with the result (the case's
    records, cited by their golden names `records/case-N`)."""
    submitted = submitted_derived(card.indicators, case.indicators)
    if submitted:
        raise InvalidInput(submitted)
    if not any(i.from_records is not None for i in card.indicators):
        return dict(case.indicators), ()
    # the records about the case's own subject carry its kind and id (record_from_case)
    own = [
        replace(r, subject_kind=subject.kind, subject_id=subject.id)
        if r.subject_id in ("", subject.id)
        else r
        for r in case.records
    ]
    values, used = fill_from_records(
        card.indicators,
        dict(case.indicators),
        subject.id,
        own,
        builtin_kinds(),
        case.as_of or DEFAULT_AS_OF,
    )
    return values, evidence_of(used)


def run_case(compiled: CompiledScorecard, case: GoldenCase) -> CaseOutcome:
    card = compiled.card
    out = CaseOutcome(card.id, card.version, case.name)
    subject = case_subject(card, case)
    exp = case.expect
    as_of = case.as_of or DEFAULT_AS_OF
    try:
        result = compiled.evaluate(subject, case_indicators(card, case, subject), as_of)
    except InvalidInput as e:
        return _error_outcome(out, exp, e)
    if "error" in exp:
        out.mismatches.append(
            (
                "error fields",
                _show(exp["error"]),
                f"accepted: grade {result.grade.code}, score {_show(result.score)}",
            )
        )
        return out
    _compare(out, exp, result)
    return out


def _error_outcome(out: CaseOutcome, exp: dict[str, object], e: InvalidInput) -> CaseOutcome:
    got = sorted(v.field for v in e.violations)
    if "error" in exp:
        want = sorted(str(f) for f in exp["error"])  # type: ignore[attr-defined]
        if want != got:
            out.mismatches.append(("error fields", _show(want), _show(got) + f" ({e})"))
    else:
        out.mismatches.append(("evaluation", "a result", f"rejected: {e}"))
    return out


def _compare(out: CaseOutcome, exp: dict[str, object], r: EvaluationResult) -> None:
    def check(what: str, want: object, got: object) -> None:
        if want != got:
            out.mismatches.append((what, _show(want), _show(got)))

    if "score" in exp:
        check("score", _dec(exp["score"]), r.score)
    if "grade" in exp:
        check("grade", exp["grade"], r.grade.code)
    if "score_grade" in exp:
        check("score_grade", exp["score_grade"], r.score_grade)
    if "points_to_next_grade" in exp:
        check("points_to_next_grade", _dec(exp["points_to_next_grade"]), r.points_to_next_grade)
    if "next_grade" in exp:
        want_next = exp["next_grade"]
        check("next_grade", None if want_next == "none" else want_next, r.next_grade)
    if "base" in exp:
        check("base", _dec(exp["base"]), r.base)
    if "score_before_cut" in exp:
        check("score_before_cut", _dec(exp["score_before_cut"]), r.score_before_cut)
    if "overrides" in exp:
        check("overrides", list(exp["overrides"]), [o.id for o in r.overrides])  # type: ignore[call-overload]
    if "until" in exp:
        want = exp["until"]
        check("until", None if want == "none" else want, r.until)
    if "reasons" in exp:
        check("reasons", list(exp["reasons"]), [c.code for c in r.reasons])  # type: ignore[call-overload]
    if "measures" in exp:
        want_measures = list(exp["measures"])  # type: ignore[call-overload]
        check("measures", want_measures, [m.id for m in r.measures])
    if "lines" in exp:
        got = {ln.rule_id: ln.points for ln in r.lines}
        for rule_id, pts in exp["lines"].items():  # type: ignore[attr-defined]
            check(f"lines.{rule_id}", _dec(pts), got.get(rule_id))


def run_scorecard(compiled: CompiledScorecard) -> list[CaseOutcome]:
    return [run_case(compiled, case) for case in compiled.card.cases]


def collect(paths: Sequence[str]) -> tuple[list[CompiledScorecard], list[str]]:
    """The scorecards to test and the problems found loading them."""
    problems: list[str] = []
    cards: list[CompiledScorecard] = []
    if paths:
        for p in paths:
            if not Path(p).exists():
                problems.append(f"{p}: no such file or folder")
                continue
            for f in iter_scorecard_files(p):
                try:
                    cards.append(compile_scorecard(load_file(f)))
                except InvalidScorecard as e:
                    problems.extend(str(x) for x in e.problems)
        return cards, problems
    from sector_credit.plugins import get_plugin_manager

    from .registry import ScorecardRegistry

    reg = ScorecardRegistry()
    try:
        reg.load_plugins(get_plugin_manager())
    except InvalidScorecard as e:
        problems.extend(str(x) for x in e.problems)
    except Exception as e:  # a plugin that cannot be imported, or a misspelled hook
        problems.append(f"plugins: {type(e).__name__}: {e}")
    return list(reg.all()), problems


def report(
    cards: Iterable[CompiledScorecard],
    problems: list[str],
    verbose: bool,
    stream: TextIO = sys.stdout,
) -> int:
    w = stream.write
    for p in problems:
        w(f"INVALID {p}\n")
    passed = failed = 0
    for compiled in cards:
        outcomes = run_scorecard(compiled)
        bad = [o for o in outcomes if not o.passed]
        label = f"{compiled.id} {compiled.version}"
        if not outcomes:
            w(f"WARN  {label}: no golden cases\n")
        for o in outcomes:
            if o.passed:
                passed += 1
                if verbose:
                    w(f"PASS  {label}: {o.case}\n")
            else:
                failed += 1
                w(f"FAIL  {label}: {o.case}\n")
                for what, want, got in o.mismatches:
                    w(
                        f"        {what}: expected {want}\n        {' ' * len(what)}  actual  "
                        f" {got}\n"
                    )
        if outcomes and not bad and not verbose:
            w(f"ok    {label}: {len(outcomes)} cases\n")
    w("-" * 60 + "\n")
    w(
        f"{passed} passed, {failed} failed"
        + (f", {len(problems)} invalid" if problems else "")
        + "\n"
    )
    if problems:
        return 2
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scorecard-test", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "paths", nargs="*", help="scorecard files or folders (default: every registered scorecard)"
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="list passing cases too")
    args = ap.parse_args(argv)
    cards, problems = collect(args.paths)
    return report(cards, problems, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
