"""`convert.evaluation_bytes` assembles an Evaluation from serialized fragments encoded once
(`fragments.Parts`: the parts every evaluation of a scorecard shares, its common lines), and
`convert.evaluation_to_proto` parses those bytes; the replies the servicer sends are those
bytes with the name and create time appended, inside their response messages. They must
parse to exactly the message filling every field gives (the builder below, which they
replaced): on every golden case of every built-in scorecard, in both views, with and without
stored metadata, for results whose titles are other objects than the card's (decoded from
the store), and when a scorecard changes under the same ids."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

import pytest
from installed_plugins import BUILTIN_ONLY
from sector_credit.plugins import get_plugin_manager
from sector_credit.scorecards import codec
from sector_credit.scorecards.golden import DEFAULT_AS_OF, SAMPLE_IDS, case_input
from sector_credit.scorecards.model import (
    EvaluationResult,
    FiredOverride,
    InvalidInput,
    Subject,
    SubjectKind,
    Title,
)
from sector_credit.scorecards.registry import build_registry
from sector_credit.scorecards.text import decimal_text
from sector_credit.server import convert
from sector_credit.server.convert import wire as convert_wire
from sector_credit.v1 import common_pb2, evaluation_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb


# The field-by-field builder the cached parts replaced: the specification they are held to.
def reference_evaluation_to_proto(
    result: EvaluationResult,
    *,
    evaluation_id: str = "",
    create_time: dt.datetime | None = None,
    request_id: str = "",
    caller: str = "",
) -> evaluation_pb2.Evaluation:
    """The Evaluation resource for an engine result and its stored metadata.

    `create_time` naive means UTC. Without an `evaluation_id` (validate_only, or before the
    store assigned one) the name stays empty.
    """
    dec = decimal_text
    fill_title = convert_wire.fill_title
    fill_provenance = convert_wire.fill_provenance
    fill_value = convert_wire.fill_value

    message = evaluation_pb2.Evaluation(
        name=convert.EVALUATION_COLLECTION + evaluation_id if evaluation_id else "",
        scorecard_id=result.scorecard_id,
        scorecard_version=result.version,
        scorecard_digest=result.digest,
        score=dec(result.score),
        base=dec(result.base),
        score_grade=result.score_grade or "",
        next_grade=result.next_grade or "",
        request_id=request_id,
        caller=caller,
    )
    subject = result.subject
    wire_subject = message.subject
    wire_subject.kind = convert_wire.SUBJECT_KIND[subject.kind]
    wire_subject.id = subject.id
    wire_subject.display_name = subject.display_name
    convert_wire.fill_date(message.as_of, result.as_of)

    wire_indicators = message.indicators
    for name, value in result.indicators.items():
        fill_value(wire_indicators[name], value)

    convert_wire.fill_grade(message.grade, result.grade)

    def cited(names: Iterable[str]) -> list[str]:  # the records behind them, each once
        wanted = set(names)
        return list(dict.fromkeys(e.record for e in result.evidence if e.indicator in wanted))

    wire_lines = message.lines
    for line in result.lines:
        wire = wire_lines.add(
            rule_id=line.rule_id,
            group=line.group or "",
            points=dec(line.points),
            best_points=dec(line.best_points),
        )
        fill_title(wire.title, line.title)
        wire_values = wire.values
        for name, used in line.values:
            fill_value(wire_values.add(name=name).value, used)
        if line.points_before_cut is not None:
            wire.points_before_cut = dec(line.points_before_cut)
        fill_provenance(wire.provenance, line.provenance)
        wire.records.extend(cited(name for name, _ in line.values))

    wire_groups = message.group_totals
    for group in result.groups:
        wire_group = wire_groups.add(
            group_id=group.id,
            total_before_cut=dec(group.total_before_cut),
            total=dec(group.total),
            floor=dec(group.floor),
            ceiling=dec(group.ceiling),
        )
        fill_title(wire_group.title, group.title)

    wire_overrides = message.overrides
    for fired in result.overrides:
        wire_override = wire_overrides.add(
            override_id=fired.id,
            effect=convert_wire.EFFECT[fired.effect],
            grade=fired.grade or "",
            steps=fired.steps,
        )
        fill_title(wire_override.title, fired.title)
        if fired.until is not None:
            convert_wire.fill_date(wire_override.until, fired.until)
        fill_provenance(wire_override.provenance, fired.provenance)
        for measure in fired.measures:
            wire_measure = wire_override.measures.add(id=measure.id)
            fill_title(wire_measure.title, measure.title)
            fill_provenance(wire_measure.provenance, measure.provenance)
        wire_override.records.extend(cited(fired.reads))

    if result.until is not None:
        convert_wire.fill_date(message.until, result.until)

    wire_reasons = message.reasons
    for reason in result.reasons:
        wire_reason = wire_reasons.add(
            code=reason.code,
            kind=convert_wire.REASON_KIND[reason.kind],
            points_lost=dec(reason.points_lost),
        )
        fill_title(wire_reason.title, reason.title)

    if result.points_to_next_grade is not None:
        message.points_to_next_grade = dec(result.points_to_next_grade)
    if result.score_before_cut is not None:
        message.score_before_cut = dec(result.score_before_cut)
    if create_time is not None:
        convert_wire.fill_timestamp(message.create_time, create_time)
    for e in result.evidence:
        wire_evidence = message.record_evidence.add(
            indicator=e.indicator, record=e.record, kind=e.kind, basis=e.basis, state=e.state
        )
        convert_wire.fill_date(wire_evidence.decision_date, e.decision_date)
    return message


def _golden_results() -> list[tuple[str, EvaluationResult]]:
    out = []
    for compiled in build_registry(get_plugin_manager(only=BUILTIN_ONLY)).all():
        for case in compiled.card.cases:
            subj = case.subject or {}
            try:
                kind = SubjectKind(subj.get("kind", compiled.card.subject_kind.value))
            except ValueError:
                kind = compiled.card.subject_kind
            subject = Subject(
                kind, subj.get("id", SAMPLE_IDS[kind]), subj.get("display_name", "名字")
            )
            try:  # indicators derived from records filled from the case's, with their evidence
                values, evidence = case_input(compiled.card, case, subject)
                result = compiled.evaluate(subject, values, case.as_of or DEFAULT_AS_OF)
            except InvalidInput:
                continue
            result.evidence = evidence
            out.append((f"{compiled.id}/{case.name}", result))
    return out


GOLDEN = _golden_results()
STORED = {
    "evaluation_id": "01929a3e-0000-7000-8000-000000000001",
    "create_time": dt.datetime(2026, 11, 28, 1, 2, 3, 456789, tzinfo=dt.UTC),
    "request_id": "req-1",
    "caller": "alice (ipv4:127.0.0.1:5000)",
}


def _check(result: EvaluationResult, **metadata: object) -> None:
    want = reference_evaluation_to_proto(result, **metadata)  # type: ignore[arg-type]
    got = convert.evaluation_to_proto(result, **metadata)  # type: ignore[arg-type]
    assert got == want
    assert got.SerializeToString(deterministic=True) == want.SerializeToString(deterministic=True)
    for g, w in zip(got.reasons, want.reasons, strict=True):
        assert g.points_lost == w.points_lost


def test_the_golden_results_cover_overrides_cuts_and_eligibility_cards() -> None:
    assert len(GOLDEN) > 50
    assert any(r.overrides for _, r in GOLDEN)
    assert any(r.score is None for _, r in GOLDEN)
    assert any(line.points_before_cut is not None for _, r in GOLDEN for line in r.lines)
    # records cited: by lines (counts), by overrides (flags, a date), and a line with several
    cited = [(r, x) for _, r in GOLDEN for x in (*r.lines, *r.overrides) if r.evidence]
    assert {type(x).__name__ for r, x in cited if convert_records(r, x)} == {
        "Line",
        "FiredOverride",
    }
    assert any(len(convert_records(r, x)) > 1 for r, x in cited)


def convert_records(result: EvaluationResult, part: object) -> list[str]:
    """The `records` the converted message gives the line or override `part` of `result`."""
    message = convert.evaluation_to_proto(result)
    if isinstance(part, FiredOverride):
        index = result.overrides.index(part)
        return list(message.overrides[index].records)
    return list(message.lines[result.lines.index(part)].records)  # type: ignore[arg-type]


@pytest.mark.parametrize("metadata", [{}, STORED], ids=["bare", "stored"])
def test_cached_parts_give_the_same_message_on_every_golden_case(
    metadata: dict[str, object],
) -> None:
    for _name, result in GOLDEN:
        _check(result, **metadata)
        _check(result, **metadata)  # from the cache


def test_results_decoded_from_the_store_hit_the_cache_by_value() -> None:
    for _name, result in GOLDEN:
        decoded = codec.result_from_dict(codec.result_to_dict(result))  # new title objects
        _check(decoded, **STORED)


def test_a_changed_scorecard_under_the_same_ids_gets_new_parts() -> None:
    result = next(r for _, r in GOLDEN if r.lines and r.reasons and r.groups)
    _check(result)
    changed = copy.deepcopy(result)
    line = changed.lines[0]
    changed.lines = (
        dataclasses.replace(
            line,
            title=Title("新标题", "New title"),
            best_points=None if line.best_points is None else Decimal(str(line.best_points) + "0"),
        ),
        *changed.lines[1:],
    )
    changed.grade = dataclasses.replace(changed.grade, colour="purple")
    reason = changed.reasons[0]
    changed.reasons = (
        dataclasses.replace(reason, title=Title("理由", "Reason")),
        *changed.reasons[1:],
    )
    group = changed.groups[0]
    changed.groups = (dataclasses.replace(group, title=Title("组", "Group")), *changed.groups[1:])
    _check(changed)
    _check(result)


def test_whole_lines_are_told_apart_by_what_they_write() -> None:
    # equal to Python, written differently: True and 1, Decimal("1") and Decimal("1.0")
    result = next(r for _, r in GOLDEN if r.lines)
    line = result.lines[0]
    name = line.values[0][0]
    variants = [
        (1, Decimal("-1.00"), None),
        (True, Decimal("-1.00"), None),
        (Decimal("1"), Decimal("-1.00"), None),
        (Decimal("1.0"), Decimal("-1.00"), None),
        (1, Decimal("-1.0"), None),
        (1, Decimal("-1.00"), Decimal("-2.00")),
        (1, Decimal("-1.00"), Decimal("-2.0")),
        ("1", Decimal("-1.00"), None),
        (None, Decimal("0"), None),
    ]
    for _ in range(2):  # built, then from the cache
        for value, points, before in variants:
            changed = dataclasses.replace(
                result,
                lines=(
                    dataclasses.replace(
                        line, values=((name, value),), points=points, points_before_cut=before
                    ),
                    *result.lines[1:],
                ),
            )
            _check(changed)


@pytest.mark.parametrize("metadata", [{}, STORED], ids=["bare", "stored"])
def test_the_basic_view_is_the_full_message_with_its_lines_cleared(
    metadata: dict[str, object],
) -> None:
    """AIP-157 BASIC (`lines=False`): on every golden case, exactly the FULL message less
    `lines`, and the FULL message is what it was."""
    for case, result in GOLDEN:
        full = convert.evaluation_to_proto(result, **metadata)  # type: ignore[arg-type]
        basic = convert.evaluation_to_proto(result, lines=False, **metadata)  # type: ignore[arg-type]
        assert full == reference_evaluation_to_proto(result, **metadata), case  # type: ignore[arg-type]
        assert not basic.lines and (full.lines or not result.lines), case
        full.ClearField("lines")
        assert basic == full, case


@pytest.mark.parametrize(
    ("view", "full", "problem"),
    [
        (0, True, None),  # unspecified: FULL, as before views existed
        (1, False, None),  # EVALUATION_VIEW_BASIC
        (2, True, None),  # EVALUATION_VIEW_FULL
        (3, True, convert.VIEW_PROBLEM),
        (-1, True, convert.VIEW_PROBLEM),
    ],
)
def test_evaluation_views(view: int, full: bool, problem: str | None) -> None:
    assert convert.full_view(view) is full
    assert convert.view_problem(view) == problem


@pytest.mark.parametrize("lines", [True, False], ids=["FULL", "BASIC"])
def test_reply_bytes_parse_to_the_messages_built_field_by_field(lines: bool) -> None:
    """What the servicer sends: the evaluation's bytes, then its name and create time once
    stored, inside EvaluateResponse, BatchEvaluateResult and StreamEvaluateResponse."""
    evaluation_id, create_time = STORED["evaluation_id"], STORED["create_time"]
    error = common_pb2.ItemError(code=3, message="bad", reason="INVALID_INDICATORS")
    for case, result in GOLDEN:
        want = reference_evaluation_to_proto(result, request_id="req-1", caller="alice")
        if not lines:
            want.ClearField("lines")
        data = convert.evaluation_bytes(result, request_id="req-1", caller="alice", lines=lines)
        assert evaluation_pb2.Evaluation.FromString(data) == want, case
        stored = data + convert.acknowledgement_bytes(evaluation_id, create_time)  # type: ignore[arg-type]
        named = reference_evaluation_to_proto(
            result,
            request_id="req-1",
            caller="alice",
            evaluation_id=evaluation_id,  # type: ignore[arg-type]
            create_time=create_time,
        )  # type: ignore[arg-type]
        if not lines:
            named.ClearField("lines")
        parsed = evaluation_pb2.Evaluation.FromString(stored)
        assert parsed == named, case
        assert parsed.SerializeToString(deterministic=True) == named.SerializeToString(
            deterministic=True
        )
        assert pb.EvaluateResponse.FromString(
            convert.evaluate_response_bytes(stored)
        ) == pb.EvaluateResponse(evaluation=named)
        batch = b"".join(
            [convert.batch_result_bytes(stored), convert.batch_result_bytes(error=error)]
        )
        assert pb.BatchEvaluateResponse.FromString(batch) == pb.BatchEvaluateResponse(
            results=[pb.BatchEvaluateResult(evaluation=named), pb.BatchEvaluateResult(error=error)]
        )
        assert pb.StreamEvaluateResponse.FromString(
            convert.stream_response_bytes("c-7", stored)
        ) == pb.StreamEvaluateResponse(correlation_id="c-7", evaluation=named)
