"""The Python client against a real server process: typed results, indicator typing from the
scorecard's definition, errors with their reason and field violations, batches and streams,
the asyncio client; and, against a small fake server, retries, deadlines, the caller header
and TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent import futures
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from sector_credit.clients import (
    AsyncCreditClient,
    CreditClient,
    CreditError,
    Deadlines,
    Evaluation,
    EvaluationItem,
    InvalidRequestError,
    Line,
    NotFoundError,
    Reason,
    RetryPolicy,
    Scorecard,
    UnavailableError,
    channel_options,
)
from sector_credit.clients.inputs import evaluate_request
from sector_credit.v1 import common_pb2, evaluation_pb2, scorecard_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc
from server_process import resident_id, running_server

PERSON = "11010519491231002X"
ORGANIZATION = "91350100M000100Y43"
TAXI = "transport.taxi_driver"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("client-server")) as address:
        yield address


@pytest.fixture
def client(server: str) -> Iterator[CreditClient]:
    with CreditClient(server, caller="test-client", purpose="supervision") as c:
        yield c


# -- typed results ---------------------------------------------------------------------------


def test_evaluate_returns_typed_result(client: CreditClient) -> None:
    ev = client.evaluate(
        TAXI,
        PERSON,
        {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": 2},
        as_of=dt.date(2026, 1, 1),
    )
    assert isinstance(ev, Evaluation)
    assert ev.grade.code == "AA" and ev.grade.title.zh == "合格"
    assert ev.score == Decimal(14) and isinstance(ev.score, Decimal)
    assert ev.points_to_next_grade == Decimal(6) and ev.next_grade == "AAA"
    assert ev.as_of == dt.date(2026, 1, 1)
    assert ev.subject.kind == "person" and ev.subject.id == PERSON
    assert ev.name.startswith("evaluations/") and ev.id in ev.name
    assert ev.caller == "local"  # a loopback server in local mode; x-caller is only a label
    assert ev.create_time is not None and ev.create_time.tzinfo is not None
    assert all(isinstance(line, Line) for line in ev.lines)
    points = {line.rule_id: line.points for line in ev.lines}
    assert points["violations_3pt"] == Decimal(-3) and points["bonus_points"] == Decimal(2)
    assert ev.lines[0].provenance.tag == "secondary"
    assert [r.code for r in ev.reasons] == ["bonus_points", "violations_5pt", "violations_3pt"]
    assert all(isinstance(r, Reason) and r.kind == "rule" for r in ev.reasons)
    assert ev.overrides == () and ev.until is None
    assert ev.to_dict()["score"] == "14.00"
    json.dumps(ev.to_dict())  # plain JSON data


def test_override_until_and_dates(client: CreditClient) -> None:
    ev = client.evaluate(
        "civil_servant.recruitment",
        PERSON,
        {"exam_misconduct": "forged_material", "exam_misconduct_date": dt.date(2024, 3, 10)},
        as_of="2026-06-01",
    )
    assert ev.grade.code == "BARRED" and ev.score is None
    assert ev.until == dt.date(2029, 3, 10)
    [fired] = ev.overrides
    assert fired.override_id == "forged_material_5y" and fired.effect == "force"
    assert fired.grade == "BARRED" and fired.until == dt.date(2029, 3, 10)
    assert fired.effect_text == "force BARRED"
    assert ev.points_to_next_grade is None


def test_override_changes_grade(client: CreditClient) -> None:
    ev = client.evaluate(
        TAXI, PERSON, {"violations_5pt": 1, "violations_20pt": 1, "bonus_points": 5}
    )
    assert ev.score == Decimal(5) and ev.score_grade == "A" and ev.grade.code == "B"
    assert [o.override_id for o in ev.overrides] == ["whole_20_lost"]
    assert ev.points_to_next_grade is None
    cut = next(line for line in ev.lines if line.rule_id == "violations_20pt")
    assert cut.points_before_cut == Decimal(-20) and cut.points == Decimal(-15)


def test_kind_is_inferred_from_the_scorecard(client: CreditClient) -> None:
    ev = client.evaluate(
        "procurement.supplier",
        ORGANIZATION,
        {"major_illegal_record_date": "2023-03-01"},
        as_of="2026-06-01",
    )
    assert ev.subject.kind == "organization"
    assert ev.grade.code == "QUALIFIED" and ev.score == Decimal(0)


def test_text_values_are_typed_by_the_definition(client: CreditClient) -> None:
    """CSV-style text reaches the server as each indicator's type."""
    ev = client.evaluate(
        "environment.enterprise",
        ORGANIZATION,
        {
            "emission_compliance_min_pct": "85",
            "solid_waste_treated_pct": 97.0,
            "hazardous_waste_rating": "compliant",
            "noise_exceedance_db": Decimal(3),
            "siting_compliant": "true",
            "administrative_penalties": "1",
            "risk_management_complete": True,
            "other_indicators_score": 90,
        },
        as_of="2026-01-01",
    )
    assert ev.score == Decimal("74.70") and ev.grade.code == "YELLOW"


def test_wire_types_of_indicator_values(client: CreditClient) -> None:
    card = client.definition("civil_servant.recruitment")
    assert isinstance(card, Scorecard) and card.subject_kind == "person"
    request = evaluate_request(
        card,
        card.scorecard_id,
        EvaluationItem(
            PERSON,
            {
                "criminal_record": "no",
                "exam_misconduct": "forged_material",
                "exam_misconduct_date": "2024-03-10",
                "expelled_from_party": False,
                "dismissed_from_public_office": "",
                "unknown": 0.1,
            },
        ),
    )
    cases = {name: value.WhichOneof("value") for name, value in request.indicators.items()}
    assert cases == {
        "criminal_record": "flag_value",
        "exam_misconduct": "choice_value",
        "exam_misconduct_date": "date_value",
        "expelled_from_party": "flag_value",
        "unknown": "decimal_value",
    }
    assert request.indicators["unknown"].decimal_value == "0.1"  # float via repr: exact
    assert request.subject.kind == common_pb2.SUBJECT_KIND_PERSON
    assert request.request_id  # always sent, so a retried call cannot score twice

    taxi = client.definition(TAXI)
    request = evaluate_request(
        taxi,
        TAXI,
        EvaluationItem(
            PERSON,
            {
                "violations_1pt": "2",
                "bonus_points": "2",
                "violations_3pt": 1,
                "violations_5pt": "x",
            },
        ),
    )
    assert request.indicators["violations_1pt"].count_value == 2
    assert request.indicators["bonus_points"].decimal_value == "2"
    assert request.indicators["violations_3pt"].count_value == 1
    assert request.indicators["violations_5pt"].choice_value == "x"  # for the server to reject


def test_scorecards(client: CreditClient) -> None:
    cards = client.list_scorecards()
    assert TAXI in [c.scorecard_id for c in cards]
    assert all(c.indicators == () for c in cards)  # the BASIC view
    card = client.get_scorecard(TAXI)
    assert [g.code for g in card.grades] == ["AAA", "AA", "A", "B"]
    assert card.base == Decimal(20) and card.score_max == Decimal(30)
    assert card.indicator("bonus_points") is not None
    assert card.indicator("bonus_points").type == "number"  # type: ignore[union-attr]
    rule = next(r for r in card.rules if r.id == "violations_3pt")
    assert rule.kind == "per_unit" and rule.points == Decimal(-3) and rule.group == "deductions"
    [veto] = card.overrides
    assert veto.condition == "group.deductions <= -20" and veto.effect_text == "force B"


# -- errors ----------------------------------------------------------------------------------


def test_invalid_input_carries_reason_and_every_violation(client: CreditClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        client.evaluate(
            TAXI, "110105194912310021", {"violations_3pt": -1, "bonus_points": "abc", "foo": 1}
        )
    err = caught.value
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT
    assert err.reason == "INVALID_INDICATORS"
    assert {v.field for v in err.violations} == {
        "subject.id",
        "indicators.violations_3pt",
        "indicators.bonus_points",
        "indicators.foo",
    }
    assert err.describe()[0] == "INVALID_ARGUMENT [INVALID_INDICATORS]: 4 problems"
    assert len(err.describe()) == 5


def test_not_found(client: CreditClient) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.evaluate("no.such.card", PERSON, {})
    assert caught.value.reason == "SCORECARD_NOT_FOUND"
    assert caught.value.metadata == {"scorecard": "no.such.card"}
    with pytest.raises(NotFoundError):
        client.get_evaluation("evaluations/01a21faa-0000-7000-8000-000000000000")


def test_values_that_cannot_be_sent_are_refused_before_sending(client: CreditClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        client.evaluate(
            TAXI, PERSON, {"violations_1pt": [1], "bonus_points": object()}, as_of="soon"
        )
    assert {v.field for v in caught.value.violations} == {
        "as_of",
        "indicators.violations_1pt",
        "indicators.bonus_points",
    }


def test_unreachable_server_is_unavailable() -> None:
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.05)
    with CreditClient("127.0.0.1:1", retry=retry) as c, pytest.raises(UnavailableError) as caught:
        c.list_scorecards()
    assert caught.value.code is grpc.StatusCode.UNAVAILABLE


# -- idempotency, history ---------------------------------------------------------------------


def test_repeated_request_id_returns_the_stored_evaluation(client: CreditClient) -> None:
    subject = resident_id("310104", "19800101", 1)
    first = client.evaluate(TAXI, subject, {"violations_1pt": 1}, request_id="client-test-idem-1")
    again = client.evaluate(TAXI, subject, {"violations_1pt": 1}, request_id="client-test-idem-1")
    assert again.name == first.name and again.request_id == "client-test-idem-1"
    page = client.list_evaluations(subject_id=subject)
    assert [e.name for e in page.evaluations] == [first.name]
    assert client.get_evaluation(first.name).score == first.score
    assert client.get_evaluation(first.id).name == first.name


def test_list_evaluations_pages_newest_first(client: CreditClient) -> None:
    subject = resident_id("310104", "19800102", 2)
    made = [client.evaluate(TAXI, subject, {"violations_1pt": n}).name for n in range(5)]
    page = client.list_evaluations(subject_id=subject, scorecard=TAXI, page_size=2)
    assert len(page.evaluations) == 2 and page.next_page_token
    assert [e.name for e in client.iter_evaluations(subject_id=subject, page_size=2)] == made[::-1]


# -- batch and stream ---------------------------------------------------------------------------


def test_batch_keeps_order_and_returns_item_errors(client: CreditClient) -> None:
    items = [
        EvaluationItem(resident_id("440305", "19900101", n), {"violations_1pt": n})
        for n in range(5)
    ]
    items.insert(2, EvaluationItem("bad-id", {"violations_1pt": 1}))
    items.insert(4, EvaluationItem(PERSON, {"violations_1pt": object()}))  # refused by the client
    results = client.batch_evaluate(TAXI, items, chunk_size=3)
    assert len(results) == 7
    kinds = [type(r).__name__ for r in results]
    assert kinds == [
        "Evaluation",
        "Evaluation",
        "InvalidRequestError",
        "Evaluation",
        "InvalidRequestError",
        "Evaluation",
        "Evaluation",
    ]
    server_error = results[2]
    assert isinstance(server_error, CreditError)
    assert [v.field for v in server_error.violations] == ["subject.id"]  # no `requests[2].`
    assert server_error.reason == "INVALID_INDICATORS"
    scores = [r.score for r in results if isinstance(r, Evaluation)]
    assert scores == [Decimal(20 - n) for n in range(5)]


def test_sync_stream(client: CreditClient) -> None:
    items = [
        EvaluationItem(resident_id("440305", "19900102", n), {"violations_3pt": 1})
        for n in range(20)
    ]
    items[7] = EvaluationItem("nope", {})
    results = dict(client.stream_evaluate(TAXI, items))
    assert sorted(results) == list(range(20))
    assert isinstance(results[7], InvalidRequestError)
    assert [v.field for v in results[7].violations] == ["subject.id"]
    assert all(
        isinstance(r, Evaluation) and r.score == Decimal(17) for i, r in results.items() if i != 7
    )


# (call, view) -> lines in the reply: the basic view leaves them out, the stored one has them
VIEW_CALLS = [
    ("evaluate", "full", 6),
    ("evaluate", "basic", 0),
    ("batch_evaluate", "full", 6),
    ("batch_evaluate", "basic", 0),
    ("stream_evaluate", "full", 6),
    ("stream_evaluate", "basic", 0),
]


@pytest.mark.parametrize(("call", "view", "lines"), VIEW_CALLS)
def test_view_leaves_the_lines_out_of_the_reply_not_out_of_the_store(
    client: CreditClient, call: str, view: str, lines: int
) -> None:
    item = EvaluationItem(
        resident_id("440305", "19910101", len(call) + lines), {"violations_3pt": 1}
    )
    if call == "evaluate":
        ev = client.evaluate(TAXI, item.subject_id, item.indicators, view=view)
    elif call == "batch_evaluate":
        (ev,) = client.batch_evaluate(TAXI, [item], view=view)
    else:
        ((_, ev),) = list(client.stream_evaluate(TAXI, [item], view=view))
    assert isinstance(ev, Evaluation)
    assert len(ev.lines) == lines and ev.grade.code == "AA" and ev.score == Decimal(17)
    assert [r.code for r in ev.reasons] == ["bonus_points", "violations_3pt"]
    assert len(client.get_evaluation(ev.name).lines) == 6


def test_an_unknown_view_is_refused_before_sending(client: CreditClient) -> None:
    for call in (
        lambda: client.evaluate(TAXI, PERSON, {}, view="short"),
        lambda: client.batch_evaluate(TAXI, [EvaluationItem(PERSON, {})], view="short"),
        lambda: list(client.stream_evaluate(TAXI, [EvaluationItem(PERSON, {})], view="short")),
    ):
        with pytest.raises(ValueError, match="view is 'basic' or 'full'"):
            call()


def test_async_client(server: str) -> None:
    async def run() -> None:
        async with AsyncCreditClient(server, caller="test-async", purpose="supervision") as c:
            ev = await c.evaluate(
                TAXI,
                PERSON,
                {"violations_3pt": "1", "violations_5pt": 1, "bonus_points": "2"},
                as_of="2026-01-01",
            )
            assert ev.score == Decimal(14) and ev.caller == "local"
            with pytest.raises(InvalidRequestError) as caught:
                await c.evaluate(TAXI, PERSON, {"bonus_points": 11})
            assert [v.field for v in caught.value.violations] == ["indicators.bonus_points"]

            async def items():  # type: ignore[no-untyped-def]
                for n in range(30):
                    yield EvaluationItem(
                        resident_id("330106", "19850101", n), {"violations_1pt": n % 3}
                    )

            seen = {}
            async for index, result in c.stream_evaluate(TAXI, items()):
                seen[index] = result
            assert sorted(seen) == list(range(30))
            assert all(
                isinstance(r, Evaluation) and r.score == Decimal(20 - i % 3)
                for i, r in seen.items()
            )

            batch = await c.batch_evaluate(
                TAXI, [EvaluationItem(PERSON, {}), EvaluationItem("x", {})]
            )
            assert isinstance(batch[0], Evaluation) and isinstance(batch[1], InvalidRequestError)
            basic = await c.evaluate(TAXI, PERSON, {"violations_3pt": 1}, view="basic")
            assert basic.lines == () and basic.score == Decimal(17)
            (basic_item,) = await c.batch_evaluate(TAXI, [EvaluationItem(PERSON, {})], view="basic")
            assert isinstance(basic_item, Evaluation) and basic_item.lines == ()
            streamed = [
                r
                async for _, r in c.stream_evaluate(
                    TAXI, [EvaluationItem(PERSON, {})], view="basic"
                )
            ]
            assert isinstance(streamed[0], Evaluation) and streamed[0].lines == ()
            names = [e.name async for e in c.iter_evaluations(subject_id=PERSON, page_size=3)]
            assert ev.name in names

    asyncio.run(run())


# -- channel: retries, deadlines, caller, TLS (against a fake server) ------------------------------


def test_retry_policy_is_in_the_service_config() -> None:
    options = dict(channel_options())
    assert options["grpc.enable_retries"] == 1
    config = json.loads(options["grpc.service_config"])
    [method] = config["methodConfig"]
    assert {"service": "sector_credit.v1.CreditEvaluationService"} in method["name"]
    policy = method["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert policy["maxAttempts"] >= 2 and policy["initialBackoff"].endswith("s")
    assert "retryThrottling" in config
    assert dict(channel_options(retry=None))["grpc.enable_retries"] == 0


class FakeService(pb_grpc.CreditEvaluationServiceServicer):
    """Fails the first `failures` calls with UNAVAILABLE, can be slow, records the caller."""

    def __init__(self, failures: int = 0, delay: float = 0.0):
        self.failures, self.delay = failures, delay
        self.attempts = 0
        self.callers: list[str] = []
        self.lock = threading.Lock()

    def ListScorecards(self, request, context):  # type: ignore[no-untyped-def]
        with self.lock:
            self.attempts += 1
            attempt = self.attempts
        self.callers.append(dict(context.invocation_metadata()).get("x-caller", ""))
        if attempt <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "draining")
        if self.delay:
            threading.Event().wait(self.delay)
        card = scorecard_pb2.Scorecard(
            name="scorecards/fake",
            scorecard_id="fake",
            version="1",
            subject_kind=common_pb2.SUBJECT_KIND_PERSON,
        )
        return pb.ListScorecardsResponse(scorecards=[card])

    def GetEvaluation(self, request, context):  # type: ignore[no-untyped-def]
        return pb.GetEvaluationResponse(evaluation=evaluation_pb2.Evaluation(name=request.name))


@pytest.fixture
def fake() -> Iterator[tuple[FakeService, str, grpc.Server]]:
    service = FakeService()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_CreditEvaluationServiceServicer_to_server(service, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield service, f"127.0.0.1:{port}", srv
    srv.stop(None)


def test_unavailable_is_retried(fake: tuple[FakeService, str, grpc.Server]) -> None:
    service, address, _ = fake
    service.failures = 2
    with CreditClient(
        address,
        caller="retry-test",
        retry=RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05),
    ) as c:
        [card] = c.list_scorecards()
    assert card.scorecard_id == "fake"
    assert service.attempts == 3
    assert service.callers == ["retry-test"] * 3  # the x-caller header, on every attempt


def test_without_retries_unavailable_is_raised(fake: tuple[FakeService, str, grpc.Server]) -> None:
    service, address, _ = fake
    service.failures = 1
    with CreditClient(address, retry=None) as c, pytest.raises(UnavailableError) as caught:
        c.list_scorecards()
    assert caught.value.message == "draining" and service.attempts == 1


def test_default_deadline_applies(fake: tuple[FakeService, str, grpc.Server]) -> None:
    service, address, _ = fake
    service.delay = 1.0
    with (
        CreditClient(address, deadlines=Deadlines(unary=0.2)) as c,
        pytest.raises(UnavailableError) as caught,
    ):
        c.list_scorecards()
    assert caught.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert Deadlines().unary is not None and Deadlines().batch is not None


def test_caller_must_be_ascii() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        CreditClient("127.0.0.1:1", caller="交通局")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_tls_channel(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    pb_grpc.add_CreditEvaluationServiceServicer_to_server(FakeService(), srv)
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    port = srv.add_secure_port("localhost:0", creds)
    srv.start()
    try:
        secure = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
        with CreditClient(f"localhost:{port}", secure=secure) as c:
            assert c.get_evaluation("evaluations/x").name == "evaluations/x"
        retry = RetryPolicy(max_attempts=2, initial_backoff=0.01)
        with CreditClient(f"localhost:{port}", retry=retry) as plain, pytest.raises(CreditError):
            plain.get_evaluation("evaluations/x", timeout=2)
    finally:
        srv.stop(None)
