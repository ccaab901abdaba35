"""Messages built field by field, off the hot path: an evaluation as a caller without
`see_ids` reads it, a stored evaluation that cannot be shown in full, the error of one batch
or stream item, and the what-if's reply."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sector_credit.scorecards.model import FieldViolation, SubjectKind
from sector_credit.scorecards.subject_ids import mask_id, mask_name
from sector_credit.scorecards.text import decimal_text
from sector_credit.scorecards.whatif import WhatIf
from sector_credit.v1 import common_pb2, credit_evaluation_service_pb2, evaluation_pb2

from .wire import (
    EVALUATION_COLLECTION,
    SUBJECT_KIND,
    fill_date,
    fill_grade,
    fill_timestamp,
    fill_title,
    fill_value,
)


def mask_subject(message: evaluation_pb2.Evaluation) -> evaluation_pb2.Evaluation:
    """The evaluation as a caller without `see_ids` reads it (docs/security.md): a person's id
    and name masked, `subject_masked` set. An organization's credit code is public: unchanged."""
    if message.subject.kind != common_pb2.SUBJECT_KIND_ORGANIZATION:
        message.subject.id = mask_id(message.subject.id)
        message.subject.display_name = mask_name(message.subject.display_name)
        message.subject_masked = True
    return message


def unreadable_evaluation_to_proto(
    *,
    evaluation_id: str,
    create_time: dt.datetime,
    scorecard_id: str,
    version: str,
    digest: str,
    subject_kind: str,
    subject_id: str,
    as_of: dt.date | None,
    grade: str,
    score: str | None,
    request_id: str | None,
    caller: str | None,
    why: str,
) -> evaluation_pb2.Evaluation:
    """A stored evaluation that cannot be shown in full: what its row's columns say, and
    `unreadable` saying why (evaluation.proto)."""
    message = evaluation_pb2.Evaluation(
        name=EVALUATION_COLLECTION + evaluation_id,
        scorecard_id=scorecard_id,
        scorecard_version=version,
        scorecard_digest=digest,
        score=score or "",
        request_id=request_id or "",
        caller=caller or "",
        unreadable=why,
    )
    kind = next((k for k in SubjectKind if k.value == subject_kind), None)
    if kind is not None:
        message.subject.kind = SUBJECT_KIND[kind]
    message.subject.id = subject_id
    if as_of is not None:
        fill_date(message.as_of, as_of)
    message.grade.code = grade
    fill_timestamp(message.create_time, create_time)
    return message


# --------------------------------------------------------------------------------------------
# Errors -> wire (the codes are chosen by the caller: this module only shapes the messages)


def field_violations_to_proto(
    violations: Iterable[FieldViolation],
) -> list[common_pb2.FieldViolation]:
    return [common_pb2.FieldViolation(field=v.field, description=v.description) for v in violations]


def item_error_to_proto(
    code: int, message: str, reason: str = "", violations: Sequence[FieldViolation] = ()
) -> common_pb2.ItemError:
    """The error of one batch or stream item; `code` is a google.rpc.Code value."""
    return common_pb2.ItemError(
        code=code,
        message=message,
        reason=reason,
        field_violations=field_violations_to_proto(violations),
    )


# --------------------------------------------------------------------------------------------
# What-if -> proto


def whatif_to_proto(
    explored: WhatIf, evaluation: evaluation_pb2.Evaluation
) -> credit_evaluation_service_pb2.ExploreEvaluationResponse:
    """An ExploreEvaluationResponse: `evaluation` (the result explored, already converted) and
    the what-if's targets and override ends."""
    titles = {o.id: o.title for o in explored.result.overrides}
    reply = credit_evaluation_service_pb2.ExploreEvaluationResponse(
        evaluation=evaluation, actionable_indicators=list(explored.actionable)
    )
    for t in explored.targets:
        target = reply.targets.add()
        fill_grade(target.grade, t.grade)
        for p in t.proposals:
            proposal = target.proposals.add(
                grade=p.grade, score=decimal_text(p.score), distance=decimal_text(p.distance)
            )
            for c in p.changes:
                change = proposal.changes.add(
                    indicator=c.indicator, distance=decimal_text(c.distance)
                )
                fill_value(change.before, c.before)
                fill_value(change.after, c.after)
    for e in explored.override_ends:
        end = reply.override_ends.add(
            override_id=e.override_id, grade=e.grade, score=decimal_text(e.score)
        )
        fill_title(end.title, titles[e.override_id])
        fill_date(end.until, e.until)
    return reply
