"""The serialized Evaluation of an engine result and the replies that carry it, assembled as
bytes from the cached fragments of `fragments.py`: `evaluation_bytes` is on the hot path of
every evaluation, and `evaluation_to_proto` parses its bytes where a message is needed (reads,
the what-if)."""

from __future__ import annotations

import datetime as dt

from sector_credit.scorecards.model import EvaluationResult
from sector_credit.scorecards.text import decimal_text
from sector_credit.v1 import common_pb2, evaluation_pb2

from .fragments import (
    PARTS,
    cited_line_bytes,
    cited_records,
    date_bytes,
    len_field,
    override_bytes,
    text_field,
    timestamp_bytes,
    uint_field,
)
from .wire import EVALUATION_COLLECTION, SUBJECT_KIND, fill_date


def evaluation_bytes(
    result: EvaluationResult,
    *,
    evaluation_id: str = "",
    create_time: dt.datetime | None = None,
    request_id: str = "",
    caller: str = "",
    lines: bool = True,
) -> bytes:
    """The serialized Evaluation resource for an engine result and its stored metadata,
    assembled from cached fragments (fragments.py); `evaluation_to_proto` parses it."""
    dec = decimal_text
    parts = PARTS
    subject = result.subject
    out = [
        text_field(1, EVALUATION_COLLECTION + evaluation_id if evaluation_id else ""),
        parts.head(result),
        len_field(
            5,
            uint_field(1, SUBJECT_KIND[subject.kind])
            + text_field(2, subject.id)
            + text_field(3, subject.display_name),
        ),
        len_field(6, date_bytes(result.as_of)),
        text_field(8, dec(result.score)),
        text_field(9, result.score_grade or ""),
        parts.grade(result.grade),
    ]
    indicator = parts.indicator
    out += [indicator(name, value) for name, value in result.indicators.items()]
    cited = cited_records(result.evidence) if result.evidence else {}  # issue 10: citations
    if lines:
        whole_line = parts.whole_line
        if cited:
            out += [cited_line_bytes(line, cited) for line in result.lines]
        else:
            out += [whole_line(line) for line in result.lines]
    group_part = parts.group
    out += [
        len_field(
            12, group_part(g) + text_field(3, dec(g.total_before_cut)) + text_field(4, dec(g.total))
        )
        for g in result.groups
    ]
    if result.overrides:
        out += [override_bytes(fired, cited) for fired in result.overrides]
    if result.until is not None:
        out.append(len_field(14, date_bytes(result.until)))
    reason_part = parts.reason
    out += [
        len_field(
            15,
            reason_part(r)
            if r.points_lost is None
            else reason_part(r) + text_field(4, dec(r.points_lost)),
        )
        for r in result.reasons
    ]
    if result.points_to_next_grade is not None:  # optional: present even when empty
        out.append(len_field(16, dec(result.points_to_next_grade).encode()))
    out.append(text_field(17, result.next_grade or ""))
    if create_time is not None:
        out.append(len_field(18, timestamp_bytes(create_time)))
    out += [text_field(19, request_id), text_field(20, caller), text_field(21, dec(result.base))]
    if result.score_before_cut is not None:
        out.append(len_field(22, dec(result.score_before_cut).encode()))
    for e in result.evidence:  # the credit records derived indicators rest on (issue 10)
        wire = evaluation_pb2.RecordEvidence(
            indicator=e.indicator, record=e.record, kind=e.kind, basis=e.basis, state=e.state
        )
        fill_date(wire.decision_date, e.decision_date)
        out.append(len_field(30, wire.SerializeToString()))
    return b"".join(out)


_parse_evaluation = evaluation_pb2.Evaluation.FromString


def acknowledgement_bytes(evaluation_id: str, create_time: dt.datetime) -> bytes:
    """The name and create_time of a stored evaluation, to append to the bytes of a reply
    built before its row was committed (which has neither): `acknowledge` as bytes."""
    return len_field(1, (EVALUATION_COLLECTION + evaluation_id).encode()) + len_field(
        18, timestamp_bytes(create_time)
    )


def evaluate_response_bytes(evaluation: bytes) -> bytes:
    """An EvaluateResponse around a serialized Evaluation."""
    return len_field(1, evaluation)


def batch_result_bytes(
    evaluation: bytes | None = None, error: common_pb2.ItemError | None = None
) -> bytes:
    """One `results` field of a BatchEvaluateResponse: a BatchEvaluateResult holding either
    a serialized Evaluation or an ItemError."""
    if evaluation is not None:
        return len_field(1, len_field(1, evaluation))
    assert error is not None
    return len_field(1, len_field(2, error.SerializeToString()))


def stream_response_bytes(correlation_id: str, evaluation: bytes) -> bytes:
    """A StreamEvaluateResponse with a serialized Evaluation."""
    return text_field(1, correlation_id) + len_field(2, evaluation)


def evaluation_to_proto(
    result: EvaluationResult,
    *,
    evaluation_id: str = "",
    create_time: dt.datetime | None = None,
    request_id: str = "",
    caller: str = "",
    lines: bool = True,
) -> evaluation_pb2.Evaluation:
    """The Evaluation resource for an engine result and its stored metadata.

    `create_time` naive means UTC. Without an `evaluation_id` (validate_only, or before the
    store assigned one) the name stays empty. `lines=False` is the BASIC view: the same
    message without its lines. Parsed from `evaluation_bytes` (one C call).
    """
    return _parse_evaluation(
        evaluation_bytes(
            result,
            evaluation_id=evaluation_id,
            create_time=create_time,
            request_id=request_id,
            caller=caller,
            lines=lines,
        )
    )
