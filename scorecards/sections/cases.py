"""The golden `[[cases]]` a scorecard carries: a name, the inputs (`as_of`, `subject`,
`indicators`, `records`) and what the evaluation must give (`expect`); `golden.py` runs them.
They are not part of the digest (`loader.digest_of`).
"""

from __future__ import annotations

import datetime as dt

from ..model import GoldenCase, SubjectKind
from ..records import builtin_kinds, record_from_case, restriction_problem
from .checker import Checker

KINDS = builtin_kinds()  # a case's records of a built-in kind are checked against its bounds

EXPECT_KEYS = {
    "score",
    "grade",
    "score_grade",
    "points_to_next_grade",
    "next_grade",
    "base",
    "score_before_cut",
    "overrides",
    "until",
    "reasons",
    "lines",
    "measures",
    "error",
}


def read_cases(c: Checker, raw: object) -> list[GoldenCase]:
    if not isinstance(raw, list):
        c.bad("cases", "must be an array of tables ([[cases]])")
        return []
    out = []
    for i, spec_raw in enumerate(raw):
        path = f"cases[{i}]"
        spec = c.table(spec_raw, path)
        c.unknown_keys(spec, {"name", "as_of", "subject", "indicators", "expect", "records"}, path)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            c.bad(f"{path}.name", "every case has a name")
            name = path
        inds = spec.get("indicators", {})
        if not isinstance(inds, dict):
            c.bad(f"{path}.indicators", "must be a table")
            inds = {}
        expect = spec.get("expect")
        if not isinstance(expect, dict) or not expect:
            c.bad(f"{path}.expect", 'a case expects something: { grade = "…", … }')
            expect = {}
        c.unknown_keys(expect, EXPECT_KEYS, f"{path}.expect")
        as_of = spec.get("as_of")
        if as_of is not None and (not isinstance(as_of, dt.date) or isinstance(as_of, dt.datetime)):
            c.bad(f"{path}.as_of", "must be a date")
            as_of = None
        subject = spec.get("subject")
        if subject is not None and not isinstance(subject, dict):
            c.bad(f"{path}.subject", "must be a table { kind, id }")
            subject = None
        records = []
        raw_records = spec.get("records", [])
        if not isinstance(raw_records, list):
            c.bad(f"{path}.records", "must be an array of tables")
            raw_records = []
        sid = str((subject or {}).get("id", ""))
        for k, r in enumerate(raw_records):
            try:  # the subject's kind and id are settled when the case runs (golden.py)
                record = record_from_case(r, k, SubjectKind.ORGANIZATION, sid)
            except ValueError as exc:
                c.bad(f"{path}.records[{k}]", str(exc))
                continue
            ban = restriction_problem(
                KINDS.get(record.kind), record.decision_date, record.restriction_end
            )
            if ban:
                c.bad(f"{path}.records[{k}].restriction_end", ban)
            records.append(record)
        out.append(GoldenCase(name, dict(inds), dict(expect), as_of, subject, tuple(records)))
    return out
