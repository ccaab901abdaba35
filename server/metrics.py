"""Prometheus metrics: the go-grpc-prometheus names plus the service's own.

Labels stay bounded: method names, codes, scorecard ids and grade codes; never a subject id.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
ENGINE_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.05,
)


class Metrics:
    """One set of metrics on its own registry (so tests can build as many as they like)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        rpc = ("grpc_type", "grpc_service", "grpc_method")
        self.started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", rpc, registry=r
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, regardless of success or failure.",
            (*rpc, "grpc_code"),
            registry=r,
        )
        self.handling = Histogram(
            "grpc_server_handling_seconds",
            "Response latency (seconds) of gRPC that had been application-level handled by the"
            " server.",
            rpc,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.msg_received = Counter(
            "grpc_server_msg_received_total",
            "RPC stream messages received on the server.",
            rpc,
            registry=r,
        )
        self.msg_sent = Counter(
            "grpc_server_msg_sent_total",
            "gRPC stream messages sent on the server.",
            rpc,
            registry=r,
        )
        self.evaluations = Counter(
            "credit_evaluations_total",
            "Evaluations scored and stored, by scorecard and final grade.",
            ("scorecard", "grade"),
            registry=r,
        )
        self.items = Counter(
            "credit_items_total",
            "Items of BatchEvaluate and StreamEvaluate answered, by method and outcome"
            " (OK or the gRPC code of the item's error).",
            ("method", "outcome"),
            registry=r,
        )
        self.engine_seconds = Histogram(
            "credit_engine_evaluation_seconds",
            "Engine time per evaluation (validate, score, explain).",
            ("scorecard",),
            buckets=ENGINE_BUCKETS,
            registry=r,
        )
        self.commit_seconds = Histogram(
            "credit_store_commit_seconds",
            "Audit store commit latency, one observation per group commit.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_rows = Histogram(
            "credit_store_commit_rows",
            "Evaluations written per group commit.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
            registry=r,
        )

        # children by label values, looked up once: labels() takes a lock and checks its
        # arguments on every call (label values are bounded: scorecard ids and grade codes)
        self._engine_children: dict[str, Any] = {}
        self._evaluation_children: dict[tuple[str, str], Any] = {}
        self._item_children: dict[tuple[str, str], Any] = {}

    def observe_engine(self, scorecard: str, seconds: float) -> None:
        child = self._engine_children.get(scorecard)
        if child is None:
            child = self._engine_children[scorecard] = self.engine_seconds.labels(scorecard)
        child.observe(seconds)

    def count_evaluation(self, scorecard: str, grade: str) -> None:
        key = (scorecard, grade)
        child = self._evaluation_children.get(key)
        if child is None:
            child = self._evaluation_children[key] = self.evaluations.labels(scorecard, grade)
        child.inc()

    def count_items(self, method: str, outcome: str, n: int = 1) -> None:
        """`n` items of a batch or stream call answered with `outcome` (a status code name)."""
        key = (method, outcome)
        child = self._item_children.get(key)
        if child is None:
            child = self._item_children[key] = self.items.labels(method, outcome)
        child.inc(n)

    def observe_commit(self, rows: int, seconds: float) -> None:
        """Called by the audit store's writer thread after each group commit."""
        self.commit_seconds.observe(seconds)
        self.commit_rows.observe(rows)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Expose /metrics over HTTP; returns the bound port (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
