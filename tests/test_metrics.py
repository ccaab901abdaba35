"""The Prometheus page of a real server after real calls (DESIGN.md "Observability"): the
go-grpc-prometheus names, the service's own counters and histograms, bounded labels (never a
subject id), and a page `promtool check metrics` accepts.

promtool comes with Debian's `prometheus` package (.ci/run installs it); where it is not on
PATH the promtool check is skipped, with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import (
    ServerProcess,
    evaluate_request,
    module_server_fixture,
    resident_id,
    taxi,
)

SERVICE = "sector_credit.v1.CreditEvaluationService"
SUBJECTS = [resident_id(n) for n in range(7000, 7006)]

server = module_server_fixture()


@pytest.fixture(scope="module")
def page(server: ServerProcess) -> Iterator[str]:
    """The /metrics page after a known set of calls."""
    stub = server.stub
    for i, subject in enumerate(SUBJECTS):
        stub.Evaluate(taxi(subject_id=subject, violations_1pt=i * 4))  # AAA, AA, AA, A, A, B
    with pytest.raises(grpc.RpcError):
        stub.Evaluate(
            evaluate_request(
                "transport.taxi_driver", {"violations_1pt": -1}, subject_id=SUBJECTS[0]
            )
        )
    with pytest.raises(grpc.RpcError):
        stub.GetScorecard(pb.GetScorecardRequest(name="scorecards/no.such_card"))
    stub.BatchEvaluate(pb.BatchEvaluateRequest(requests=[taxi(subject_id=s) for s in SUBJECTS[:3]]))
    # a batch whose items all fail is still an OK call: its items count by their outcome
    stub.BatchEvaluate(
        pb.BatchEvaluateRequest(
            requests=[
                *(
                    evaluate_request("transport.taxi_driver", {"violations_1pt": -1}, subject_id=s)
                    for s in SUBJECTS[:3]
                ),
                evaluate_request("no.such_card", {}, subject_id=SUBJECTS[3]),
            ]
        )
    )
    list(
        stub.StreamEvaluate(
            iter(
                [pb.StreamEvaluateRequest(correlation_id="1", request=taxi(subject_id=SUBJECTS[1]))]
            )
        )
    )
    stub.ListEvaluations(pb.ListEvaluationsRequest(purpose="supervision", subject_id=SUBJECTS[2]))
    with urllib.request.urlopen(
        f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10
    ) as reply:
        assert reply.status == 200
        yield reply.read().decode("utf-8")


def test_the_server_picks_its_metrics_port_and_says_which(server: ServerProcess) -> None:
    # `--metrics-port any` (the harness): the port bound is in the serving line and printed
    serving = [r for r in server.log_records() if r.get("event") == "serving"][-1]
    assert serving["metrics_port"] == server.metrics_port and server.metrics_port > 0


def samples(page: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of every sample called `name`."""
    out = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def rpc(method: str, kind: str = "unary", **more: str) -> tuple[tuple[str, str], ...]:
    labels = {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": method, **more}
    return tuple(sorted(labels.items()))


def test_grpc_server_metrics_by_method_and_code(page: str) -> None:
    started = samples(page, "grpc_server_started_total")
    assert started[rpc("Evaluate")] == len(SUBJECTS) + 1
    assert started[rpc("BatchEvaluate")] == 2
    assert started[rpc("StreamEvaluate", "bidi_stream")] == 1

    handled = samples(page, "grpc_server_handled_total")
    assert handled[rpc("Evaluate", grpc_code="OK")] == len(SUBJECTS)
    assert handled[rpc("Evaluate", grpc_code="INVALID_ARGUMENT")] == 1
    assert handled[rpc("GetScorecard", grpc_code="NOT_FOUND")] == 1
    assert handled[rpc("StreamEvaluate", "bidi_stream", grpc_code="OK")] == 1
    assert handled[rpc("ListEvaluations", grpc_code="OK")] == 1

    latency = samples(page, "grpc_server_handling_seconds_count")
    assert latency[rpc("Evaluate")] == len(SUBJECTS) + 1
    buckets = samples(page, "grpc_server_handling_seconds_bucket")
    assert buckets[(*rpc("Evaluate"), ("le", "+Inf"))] == len(SUBJECTS) + 1


def test_batch_and_stream_items_by_outcome(page: str) -> None:
    assert samples(page, "grpc_server_handled_total")[rpc("BatchEvaluate", grpc_code="OK")] == 2
    items = {
        dict(labels)["method"] + " " + dict(labels)["outcome"]: value
        for labels, value in samples(page, "credit_items_total").items()
    }
    assert items == {
        "BatchEvaluate OK": 3,  # the first batch
        "BatchEvaluate INVALID_ARGUMENT": 3,  # the second: a negative count, three times,
        "BatchEvaluate NOT_FOUND": 1,  # and a scorecard that does not exist
        "StreamEvaluate OK": 1,
    }


def test_evaluations_by_scorecard_and_grade(page: str) -> None:
    counted = samples(page, "credit_evaluations_total")

    def key(grade: str) -> tuple[tuple[str, str], ...]:
        return (("grade", grade), ("scorecard", "transport.taxi_driver"))

    # Evaluate: AAA, AA, AA, A, A, B (20 points lost); the batch and the stream: §3 example 1, AA
    assert counted == {key("AAA"): 1, key("AA"): 2 + 3 + 1, key("A"): 2, key("B"): 1}


def test_engine_and_commit_histograms(page: str) -> None:
    evaluations = len(SUBJECTS) + 3 + 1
    engine = samples(page, "credit_engine_evaluation_seconds_count")
    assert engine[(("scorecard", "transport.taxi_driver"),)] == evaluations
    commit_rows = samples(page, "credit_store_commit_rows_sum")[()]
    assert commit_rows == evaluations  # every stored evaluation went through a group commit
    commits = samples(page, "credit_store_commit_seconds_count")[()]
    assert 1 <= commits <= evaluations + 1  # + the failed batch's access records, no evaluation
    assert samples(page, "credit_store_commit_seconds_sum")[()] > 0


def test_no_subject_id_anywhere_in_the_page(page: str) -> None:
    for subject in SUBJECTS:
        assert subject not in page and subject[:-1] not in page


def test_promtool_accepts_the_page(page: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian's prometheus package; .ci/run installs it)")
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=page,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == "" and checked.stderr.strip() == ""  # no lint warnings either
