"""Issue 15: no input can poison the store or hurt another caller. Each reproduction of the
issue against a real server process, on SQLite and on PostgreSQL.

The limits are scorecards/limits.py's (docs/limits.md): counts at most 10^6, at most 2 decimal
places unless an indicator declares more, strings of bounded length without NUL, at most 256
indicators, dates in 1900-2199, error details bounded.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.rpc import code_pb2
from sector_credit.v1 import common_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import (
    ServerProcess,
    database,
    module_server_fixture,
    resident_id,
    running_server,
    scratch_pg_database,
    taxi,
)
from test_service import Failure, fails

server = module_server_fixture()
_subjects = itertools.count(5000)
SERVICE = "/sector_credit.v1.CreditEvaluationService/"


def new_person() -> str:
    return resident_id(next(_subjects))


def stored_for(server: ServerProcess, subject_id: str) -> list[Any]:
    """Every stored evaluation of a subject (ListEvaluations must answer, whatever is stored)."""
    return list(
        server.stub.ListEvaluations(
            pb.ListEvaluationsRequest(subject_id=subject_id, page_size=1000, purpose="supervision"),
            timeout=30,
        ).evaluations
    )


def with_value(request: pb.EvaluateRequest, name: str, **case: Any) -> pb.EvaluateRequest:
    request.indicators[name].CopyFrom(common_pb2.IndicatorValue(**case))
    return request


# --------------------------------------------------------------------------------------------
# 1. Validation is total and bounded


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({"decimal_value": "1e19"}, "outside [0, 1000000]"),
        ({"number_value": 1e308}, "outside [0, 1000000]"),
        ({"count_value": 2**62}, "above the maximum 1000000"),
        ({"count_value": 10**6 + 1}, "above the maximum 1000000"),
        ({"decimal_value": "١٢٣"}, "is not a decimal number"),
        ({"decimal_value": "𝟙𝟚𝟛"}, "is not a decimal number"),
        ({"decimal_value": "1_0"}, "is not a decimal number"),
        ({"decimal_value": " 5 "}, "is not a decimal number"),
        ({"decimal_value": "2.5"}, "a count is a whole number"),
        ({"decimal_value": "1" * 41}, "at most 40"),
    ],
    ids=[
        "1e19",
        "1e308",
        "2^62",
        "10^6+1",
        "arabic_indic",
        "math_digits",
        "underscore",
        "spaces",
        "fraction",
        "41_digits",
    ],
)
def test_a_count_outside_the_limits_is_refused_and_nothing_is_stored(
    server: ServerProcess, case: dict[str, Any], expected: str
) -> None:
    subject = new_person()
    request = with_value(taxi(subject_id=subject), "violations_1pt", **case)
    failure = fails(server.stub.Evaluate, request)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    ((field, description),) = failure.violations
    assert field == "indicators.violations_1pt" and expected in description, failure.violations
    (item,) = server.stub.BatchEvaluate(
        pb.BatchEvaluateRequest(requests=[request]), timeout=30
    ).results
    assert item.error.code == code_pb2.INVALID_ARGUMENT
    assert [(v.field, v.description) for v in item.error.field_violations] == [
        ("requests[0]." + field, description)
    ]
    assert stored_for(server, subject) == []
    # the subject's history and the first page of everything still answer
    assert server.stub.ListEvaluations(
        pb.ListEvaluationsRequest(page_size=1000, purpose="supervision"), timeout=30
    )


@pytest.mark.parametrize(
    ("indicator", "case", "field", "expected"),
    [
        (
            "bonus_points",
            {"decimal_value": "1.005"},
            "indicators.bonus_points",
            "has 3 decimal places",
        ),
        (
            "bonus_points",
            {"number_value": 0.1 + 0.2},
            "indicators.bonus_points",
            "has 17 decimal places",
        ),
        (
            "bonus_points",
            {"decimal_value": "1e-999999999"},
            "indicators.bonus_points",
            "out of range",
        ),
    ],
)
def test_a_number_with_more_places_than_its_indicator_takes_is_refused_never_rounded(
    server: ServerProcess, indicator: str, case: dict[str, Any], field: str, expected: str
) -> None:
    subject = new_person()
    failure = fails(server.stub.Evaluate, with_value(taxi(subject_id=subject), indicator, **case))
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in failure.violations] == [field] and expected in failure.violations[0][1]
    assert stored_for(server, subject) == []
    # trailing zeros are no places: 1.500 is 1.5
    ok = server.stub.Evaluate(
        with_value(taxi(subject_id=subject), indicator, decimal_value="1.500"), timeout=30
    )
    assert ok.evaluation.score == "13.50"  # 20 - 3 - 5 + 1.5


def _long(n: int) -> str:
    return secrets.token_hex(n // 2 + 1)[:n]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: setattr(r, "request_id", _long(12_000)), "request_id"),
        (lambda r: setattr(r, "request_id", "a\x00b"), "request_id"),
        (lambda r: setattr(r.subject, "display_name", "名" * 15_000), "subject.display_name"),
        (lambda r: setattr(r.subject, "display_name", "a\x00b"), "subject.display_name"),
        (lambda r: setattr(r.subject, "id", "1" * 10_000), "subject.id"),
        (lambda r: setattr(r, "scorecard", "x" * 5_000), "scorecard"),
        (lambda r: setattr(r, "version", "v" * 5_000), "version"),
        (lambda r: r.as_of.CopyFrom(common_pb2.Date(year=9999, month=12, day=31)), "as_of"),
        (lambda r: r.as_of.CopyFrom(common_pb2.Date(year=2026, month=2, day=30)), "as_of"),
    ],
    ids=[
        "request_id_12000",
        "request_id_nul",
        "display_name_15000",
        "display_name_nul",
        "subject_id_10000",
        "scorecard_5000",
        "version_5000",
        "as_of_9999",
        "as_of_feb_30",
    ],
)
def test_a_string_or_date_outside_its_limits_is_refused_naming_the_field(
    server: ServerProcess, change: Any, field: str
) -> None:
    subject = new_person()
    request = taxi(subject_id=subject)
    change(request)
    failure = fails(server.stub.Evaluate, request)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert field in failure.fields, failure.violations
    assert len(failure.wire_text()) < 8192
    assert stored_for(server, subject) == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListEvaluationsRequest(subject_id="a\x00b", purpose="supervision"), "subject_id"),
        (pb.ListEvaluationsRequest(subject_id="1" * 10_000, purpose="supervision"), "subject_id"),
        (
            pb.ListEvaluationsRequest(scorecard="transport.taxi\x00", purpose="supervision"),
            "scorecard",
        ),
        (pb.ListEvaluationsRequest(page_token="A" * 10_000, purpose="supervision"), "page_token"),
        (
            pb.GetEvaluationRequest(name="evaluations/" + "x" * 10_000, purpose="supervision"),
            "name",
        ),
        (pb.GetScorecardRequest(name="x" * 10_000), "name"),
        (pb.ListScorecardsRequest(page_token="\x00"), "page_token"),
    ],
    ids=[
        "filter_nul",
        "filter_10000",
        "scorecard_nul",
        "token_10000",
        "get_name",
        "scorecard_name",
        "scorecards_token",
    ],
)
def test_a_read_with_a_bad_string_is_invalid_argument_never_unavailable(
    server: ServerProcess, request_: Any, field: str
) -> None:
    method = {
        pb.ListEvaluationsRequest: server.stub.ListEvaluations,
        pb.GetEvaluationRequest: server.stub.GetEvaluation,
        pb.GetScorecardRequest: server.stub.GetScorecard,
        pb.ListScorecardsRequest: server.stub.ListScorecards,
    }
    failure = fails(method[type(request_)], request_)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.fields == [field]


def test_700000_unknown_indicator_names_are_refused_fast(server: ServerProcess) -> None:
    request = taxi(subject_id=new_person())
    entries = common_pb2.IndicatorValue(count_value=1).SerializeToString()
    # the map entries written straight to the wire (building a 700,000-entry map takes longer)
    extra = b"".join(
        b"\x2a" + _varint(len(e := _entry(f"n{i}", entries))) + e for i in range(700_000)
    )
    data = request.SerializeToString() + extra
    call = server.channel.unary_unary(
        SERVICE + "Evaluate", request_serializer=None, response_deserializer=None
    )
    started = time.monotonic()
    failure = fails(call, data)
    elapsed = time.monotonic() - started
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.violations == [
        ("indicators", f"{len(request.indicators) + 700_000} indicators; a request has at most 256")
    ]
    assert elapsed < 3.0, elapsed


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _entry(key: str, value: bytes) -> bytes:
    k = key.encode()
    return b"\x0a" + _varint(len(k)) + k + b"\x12" + _varint(len(value)) + value


# --------------------------------------------------------------------------------------------
# 3. One caller's bad item never fails another's


def test_a_12000_character_request_id_fails_its_item_alone_and_no_other_caller(
    server: ServerProcess,
) -> None:
    subject = new_person()
    items = [
        taxi(subject_id=subject, request_id=f"batch-{secrets.token_hex(8)}") for _ in range(100)
    ]
    items[37].request_id = _long(12_000)
    others: list[grpc.StatusCode] = []

    def another_client(i: int) -> grpc.StatusCode:
        try:
            server.stub.Evaluate(taxi(subject_id=resident_id(9000 + i)), timeout=30)
            return grpc.StatusCode.OK
        except grpc.RpcError as error:
            return error.code()  # type: ignore[attr-defined, no-any-return]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        background = [pool.submit(another_client, i) for i in range(200)]
        results = server.stub.BatchEvaluate(
            pb.BatchEvaluateRequest(requests=items), timeout=60
        ).results
        others = [f.result() for f in background]
    assert results[37].error.code == code_pb2.INVALID_ARGUMENT
    assert [v.field for v in results[37].error.field_violations] == ["requests[37].request_id"]
    assert all(r.evaluation.name for i, r in enumerate(results) if i != 37)
    assert len(stored_for(server, subject)) == 99
    assert set(others) == {grpc.StatusCode.OK}


# --------------------------------------------------------------------------------------------
# 2. Nothing stored that cannot be acknowledged; reads are total


def test_a_batch_of_1000_with_15kb_display_names_is_refused_whole_and_stores_nothing(
    server: ServerProcess,
) -> None:
    subject = new_person()
    items = [taxi(subject_id=subject) for _ in range(1000)]
    for item in items:
        item.subject.display_name = "名" * 5_000  # 15 kB in UTF-8
    results = server.stub.BatchEvaluate(pb.BatchEvaluateRequest(requests=items), timeout=60).results
    assert [(r.error.code, [v.field for v in r.error.field_violations]) for r in results] == [
        (code_pb2.INVALID_ARGUMENT, [f"requests[{i}].subject.display_name"]) for i in range(1000)
    ]
    assert stored_for(server, subject) == []
    # the longest display names allowed: stored, acknowledged, and a page of 1,000 reads back
    for item in items:
        item.subject.display_name = "名" * 200
    results = server.stub.BatchEvaluate(pb.BatchEvaluateRequest(requests=items), timeout=60).results
    assert all(r.evaluation.name for r in results)
    assert len(stored_for(server, subject)) == 1000
    assert (
        len(
            server.stub.ListEvaluations(
                pb.ListEvaluationsRequest(page_size=1000, purpose="supervision"), timeout=30
            ).evaluations
        )
        == 1000
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_batch_whose_reply_would_exceed_the_message_limit_fails_before_anything_commits(
    tmp_path: Path, kind: str
) -> None:
    with (
        database(kind, tmp_path) as url,
        running_server(url, tmp_path / "server.log", "--max-message-bytes", "262144") as s,
    ):
        subject = new_person()
        items = [taxi(subject_id=subject) for _ in range(200)]  # about 2.4 kB of reply each
        failure = fails(s.stub.BatchEvaluate, pb.BatchEvaluateRequest(requests=items))
        assert (
            failure.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            and "nothing was stored" in failure.message
        )
        assert failure.fields == ["requests"]
        assert stored_for(s, subject) == []
        names = set()
        for start in range(0, 200, 50):
            results = s.stub.BatchEvaluate(
                pb.BatchEvaluateRequest(requests=items[start : start + 50]), timeout=30
            ).results
            names |= {r.evaluation.name for r in results}
        assert len(names) == 200
        # a page of 1,000 would not fit in 256 kB: the page ends where it fits, the next goes on
        pages, token = [], ""
        while True:
            page = s.stub.ListEvaluations(
                pb.ListEvaluationsRequest(
                    subject_id=subject, page_size=1000, page_token=token, purpose="supervision"
                ),
                timeout=30,
            )
            pages.append([e.name for e in page.evaluations])
            token = page.next_page_token
            if not token:
                break
        assert len(pages) > 1 and all(pages)
        assert sorted(n for p in pages for n in p) == sorted(names)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_stored_row_that_cannot_be_read_is_marked_and_check_store_reports_it(
    tmp_path: Path, kind: str
) -> None:
    with database(kind, tmp_path) as url:
        with running_server(url, tmp_path / "server.log") as s:
            subject = new_person()
            names = [
                s.stub.Evaluate(taxi(subject_id=subject), timeout=30).evaluation.name
                for _ in range(3)
            ]
            assert _check_store(url) == (0, "checked 3 stored evaluations: all round-trip")
            engine = sa.create_engine(url)
            with engine.begin() as conn:  # a row another version of the service might have written
                conn.execute(
                    sa.text(
                        "UPDATE evaluations SET result = :doc WHERE subject_id = :s AND id = :id"
                    ),
                    {"doc": '{"format": 99}', "s": subject, "id": _db_id(kind, names[1])},
                )
            engine.dispose()
            page = stored_for(s, subject)
            assert [e.name for e in page] == names[::-1]
            assert [bool(e.unreadable) for e in page] == [False, True, False]
            broken = page[1]
            assert (broken.subject.id, broken.grade.code, broken.score, broken.lines) == (
                subject,
                "AA",
                "14.00",
                [],
            )
            got = s.stub.GetEvaluation(
                pb.GetEvaluationRequest(name=names[1], purpose="supervision"), timeout=30
            ).evaluation
            assert got.unreadable == broken.unreadable
        code, out = _check_store(url)
        assert code == 1
        assert out.splitlines() == [
            f"{names[1]}: {broken.unreadable}",
            "checked 3 stored evaluations: 1 do not round-trip",
        ]


def _db_id(kind: str, name: str) -> str:
    import uuid

    key = uuid.UUID(name.removeprefix("evaluations/"))
    return str(key) if kind == "postgresql" else key.hex


def _check_store(url: str) -> tuple[int, str]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "check-store",
            "--database-url",
            url,
            "--log-format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout.strip()


# --------------------------------------------------------------------------------------------
# 4. Errors bounded, nothing internal; unparsable requests; log masking


def test_error_details_are_bounded_so_a_default_client_reads_the_real_error(
    server: ServerProcess,
) -> None:
    request = taxi(subject_id=new_person())
    for i in range(200):
        request.indicators[f"unknown_{i}_" + "x" * 4_000].count_value = 1
    failure = fails(server.stub.Evaluate, request)  # 203 names, 200 of them unknown and 4 kB long
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert (
        failure.violations[-1][1].endswith("not listed")
        or "more names" in failure.violations[-1][1]
    )
    assert len(failure.status.SerializeToString()) <= 3100 and len(failure.message) <= 300


def test_an_outage_says_nothing_of_the_host_port_or_driver(tmp_path: Path) -> None:
    with scratch_pg_database("outage") as url, running_server(url, tmp_path / "server.log") as s:
        from service_harness import drop_pg_database

        drop_pg_database(url)
        failure = fails(s.stub.Evaluate, taxi(subject_id=new_person()))
        assert failure.code is grpc.StatusCode.UNAVAILABLE
        text = failure.wire_text()
        for internal in (
            "127.0.0.1",
            "5432",
            "psycopg",
            "OperationalError",
            "sqlalchemy",
            "connection",
        ):
            assert internal not in text, (internal, text)
        failure = fails(s.stub.ListEvaluations, pb.ListEvaluationsRequest(purpose="supervision"))
        assert (
            failure.code is grpc.StatusCode.UNAVAILABLE and "127.0.0.1" not in failure.wire_text()
        )


@pytest.mark.parametrize(
    "method",
    [
        "Evaluate",
        "BatchEvaluate",
        "GetEvaluation",
        "ListEvaluations",
        "ListScorecards",
        "GetScorecard",
        "StreamEvaluate",
    ],
)
def test_unparsable_request_bytes_are_invalid_argument_with_no_traceback(
    server: ServerProcess, method: str
) -> None:
    garbage = b"\xff\xff\xff\xff\x0f"
    if method == "StreamEvaluate":
        call = server.channel.stream_stream(
            SERVICE + method, request_serializer=None, response_deserializer=None
        )
        with pytest.raises(grpc.RpcError) as info:
            list(call(iter([garbage, garbage]), timeout=30))
        failure = Failure(info.value)
    else:
        failure = fails(
            server.channel.unary_unary(
                SERVICE + method, request_serializer=None, response_deserializer=None
            ),
            garbage,
        )
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "UNPARSABLE_REQUEST"
    assert "DecodeError" not in failure.wire_text() and "Traceback" not in server.log_text()


def test_ids_glued_to_other_characters_are_masked_in_the_log(server: ServerProcess) -> None:
    subject = new_person()
    for rid in (f"rid_{subject}", f"x{subject}y", f"req:{subject}-1"):
        server.stub.Evaluate(taxi(subject_id=subject), metadata=[("x-request-id", rid)], timeout=30)
    assert subject not in server.log_text()


# --------------------------------------------------------------------------------------------
# The limits are stated once and documented


def test_docs_limits_states_every_limit_with_its_value() -> None:
    from decimal import Decimal

    from sector_credit.scorecards import limits

    doc = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text(
        encoding="utf-8"
    )
    stated = {
        name: value
        for name, value in vars(limits).items()
        if name.isupper() and isinstance(value, (int, Decimal))
    }
    assert len(stated) >= 20
    for name, value in stated.items():
        assert f"| `{name}` | {value} |" in doc, name


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("rid_11010519491231002X", "rid_1101************2X"),
        ("x11010519491231002Xy", "x1101************2Xy"),
        ("张三11010519491231002X", "张三1101************2X"),
        ("id=91350100M000100Y43;", "id=9135************43;"),
        ("req-91350100M000100Y43-1", "req-9135************43-1"),
        (
            "0123456789abcdef0123456789abcdef",
            "0123456789abcdef0123456789abcdef",
        ),  # a request id stays
        ("2026-01-01T00:00:00.123456+00:00", "2026-01-01T00:00:00.123456+00:00"),
    ],
)
def test_log_masking_finds_ids_glued_to_other_characters(text: str, masked: str) -> None:
    from sector_credit.server.logs import mask_personal_data

    event = mask_personal_data(
        None, "info", {"event": "rpc", "error": text, "nested": [{"k": text}]}
    )
    assert event["error"] == masked and event["nested"] == [{"k": masked}]
