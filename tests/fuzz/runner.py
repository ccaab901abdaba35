"""The fuzz driver: hypothesis-generated calls against a real server process, tallied.

`fuzz(address, pid, ...)` reads the server's scorecards (the `Catalogue` the strategies aim
at), then runs rounds of hypothesis examples, one method at a time in turn (3 turns in 10 raw
bytes, the others structure-aware): each example is a list of 1-6 calls of that method sent
at once on one channel, so good and bad items meet in the same group commit. Every call's
status code is counted by method, and so is every BatchEvaluate / StreamEvaluate item's
ItemError code.

It fails (`Report.failures`) on:
- any INTERNAL or UNKNOWN status, of a call or of an item;
- the server process exiting;
- the server's memory (VmRSS of its process tree, sampled from /proc every 0.5 s) above
  `rss_limit_mb`.

Hypothesis runs with generation only (no shrinking, no example database): a property that
raises would stop at the first finding, so outcomes are recorded and judged at the end, and
each distinct finding is listed with an input sketch. `@seed(seed + round)` makes a run
deterministic for a given seed, catalogue and request count.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from sector_credit.v1 import credit_evaluation_service_pb2 as pb

from .strategies import METHODS, Call, Catalogue, calls, oversize

FAILING = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
CODE_BY_VALUE = {c.value[0]: c for c in grpc.StatusCode}
CALL_TIMEOUT_S = 30.0
ROUND_EXAMPLES = 40  # hypothesis examples per round (one method per round)
RAW_TURNS = (1, 4, 7)  # of every 10 turns through the methods, these are raw bytes
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]


# ============================================================================================
# The server's process tree, from /proc


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rss_mb(pids: Iterable[int]) -> float:
    """The sum of VmRSS over `pids`, in MB (0 for processes gone)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total / 1024


class MemoryWatch:
    """Samples the server tree's RSS in a thread; keeps the first and the largest sample."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.pid, self.interval = pid, interval
        self.first = self.peak = rss_mb(process_tree(pid))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> float:
        now = rss_mb(process_tree(self.pid))
        self.peak = max(self.peak, now)
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


# ============================================================================================
# Tally


@dataclass
class Finding:
    label: str
    code: str
    details: str
    sketch: str
    count: int = 0


@dataclass
class Report:
    backend: str
    calls: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    items: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    unanswered_stream_items: int = 0
    seconds: float = 0.0
    seconds_by_method: collections.Counter[str] = field(default_factory=collections.Counter)
    rss_first_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_limit_mb: float = 0.0
    exit_code: int | None = None
    log_errors: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def requests(self) -> int:
        return sum(self.calls.values())

    def record(self, call: Call, code: grpc.StatusCode, details: str, item: bool = False) -> None:
        label = call.label + (" item" if item else "")
        (self.items if item else self.calls)[(label, code.name)] += 1
        if code in FAILING:
            key = (label, code.name, _normalized(details))
            finding = self.findings.setdefault(
                key, Finding(label, code.name, details[:300], call.sketch)
            )
            finding.count += 1

    def failures(self) -> list[str]:
        out = [f"{f.count} × {f.label} {f.code}: {f.details}" for f in self.findings.values()]
        if self.exit_code is not None:
            out.append(f"the server process exited with {self.exit_code} during the run")
        if self.rss_peak_mb > self.rss_limit_mb:
            out.append(
                f"server RSS peaked at {self.rss_peak_mb:.0f} MB, above the bound of"
                f" {self.rss_limit_mb:.0f} MB"
            )
        return out

    def text(self) -> str:
        lines = [
            f"== {self.backend}: {self.requests:,} requests ({sum(self.items.values()):,}"
            f" batch/stream items)"
            f" in {self.seconds:.0f} s; server RSS {self.rss_first_mb:.0f} MB at start, peak"
            f" {self.rss_peak_mb:.0f} MB (bound {self.rss_limit_mb:.0f} MB)"
        ]
        for title, counter in (("calls", self.calls), ("items", self.items)):
            by_label: dict[str, dict[str, int]] = collections.defaultdict(dict)
            for (label, code), n in counter.items():
                by_label[label][code] = n
            if by_label:
                lines.append(f"{title} by method and code:")
            for label in sorted(by_label):
                codes = by_label[label]
                lines.append(
                    f"  {label:30s} {sum(codes.values()):7,}  "
                    + "  ".join(
                        f"{c} {n:,}" for c, n in sorted(codes.items(), key=lambda kv: -kv[1])
                    )
                )
        lines.append(
            "seconds by method: "
            + ", ".join(f"{m} {s:.0f}" for m, s in self.seconds_by_method.most_common())
        )
        if self.unanswered_stream_items:
            lines.append(
                f"stream items with no reply on streams that ended OK:"
                f" {self.unanswered_stream_items}"
            )
        if self.findings:
            lines.append(f"distinct INTERNAL/UNKNOWN findings: {len(self.findings)}")
            for f in sorted(self.findings.values(), key=lambda f: -f.count):
                lines.append(
                    f"  {f.count:6,} × {f.label} {f.code}: {f.details!r}\n           input:"
                    f" {f.sketch}"
                )
        if self.log_errors:
            lines.append("server log, error lines (distinct, with counts):")
            for text, n in self.log_errors.most_common(20):
                lines.append(f"  {n:6,} × {text}")
        if self.exit_code is not None:
            lines.append(f"SERVER EXITED with {self.exit_code}")
        return "\n".join(lines)


def _normalized(details: str) -> str:
    """Details with numbers, ids and quoted input taken out: one key per kind of failure."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", details)
    return re.sub(r"[0-9a-f]{8,}|\d+", "#", text)[:160]


# ============================================================================================
# Sending


class Sender:
    """Sends calls as raw bytes (identity serializers) on one channel, all of a list at once."""

    def __init__(self, address: str, catalogue: Catalogue, report: Report):
        self.channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
        grpc.channel_ready_future(self.channel).result(timeout=10)
        self.catalogue = catalogue
        self.report = report
        self._unary = {
            m: self.channel.unary_unary(p) for m, (p, shape) in METHODS.items() if shape == "unary"
        }
        self._stream = {
            m: self.channel.stream_stream(p)
            for m, (p, shape) in METHODS.items()
            if shape == "stream"
        }
        self._watch = {
            m: self.channel.unary_stream(p) for m, (p, shape) in METHODS.items() if shape == "watch"
        }

    def close(self) -> None:
        self.channel.close()

    def send(self, batch: list[Call]) -> None:
        started = []
        for call in batch:
            if call.shape == "stream":
                assert isinstance(call.body, tuple)
                started.append(
                    (call, self._stream[call.method](iter(call.body), timeout=CALL_TIMEOUT_S))
                )
            elif call.shape == "watch":
                started.append((call, self._watch[call.method](call.body, timeout=CALL_TIMEOUT_S)))
            else:
                started.append(
                    (call, self._unary[call.method].future(call.body, timeout=CALL_TIMEOUT_S))
                )
        for call, pending in started:
            if call.shape == "stream":
                self._finish_stream(call, pending)
            elif call.shape == "watch":
                self._finish_watch(call, pending)
            else:
                self._finish_unary(call, pending)

    def _finish_unary(self, call: Call, future: Any) -> None:
        try:
            data = future.result()
        except grpc.RpcError as exc:
            self.report.record(call, exc.code(), exc.details() or "")
            return
        self.report.record(call, grpc.StatusCode.OK, "")
        self._read_reply(call, data)

    def _finish_stream(self, call: Call, responses: Any) -> None:
        answered = 0
        try:
            for data in responses:
                answered += 1
                reply = pb.StreamEvaluateResponse.FromString(data)
                self._item(call, reply)
        except grpc.RpcError as exc:
            self.report.record(call, exc.code(), exc.details() or "")
            return
        self.report.record(call, grpc.StatusCode.OK, "")
        if call.label == call.method:  # structured: every item deserves a reply
            self.report.unanswered_stream_items += max(0, len(call.body) - answered)

    def _finish_watch(self, call: Call, responses: Any) -> None:
        """OK once the first response arrives (a watch never ends by itself)."""
        try:
            next(responses)
        except grpc.RpcError as exc:
            self.report.record(call, exc.code(), exc.details() or "")
            return
        except StopIteration:  # ended OK without a response
            pass
        responses.cancel()
        self.report.record(call, grpc.StatusCode.OK, "")

    def _item(self, call: Call, result: Any) -> None:
        if result.HasField("error"):
            code = CODE_BY_VALUE.get(result.error.code, grpc.StatusCode.UNKNOWN)
            self.report.record(call, code, result.error.message, item=True)
        else:
            self.report.record(call, grpc.StatusCode.OK, "", item=True)
            self.catalogue.remember(result.evaluation)

    def _read_reply(self, call: Call, data: bytes) -> None:
        """Count batch items; remember what was stored, to aim later calls at it."""
        if call.method == "BatchEvaluate":
            for result in pb.BatchEvaluateResponse.FromString(data).results:
                self._item(call, result)
        elif call.method == "Evaluate":
            self.catalogue.remember(pb.EvaluateResponse.FromString(data).evaluation)
        elif call.method == "ListEvaluations":
            token = pb.ListEvaluationsResponse.FromString(data).next_page_token
            if token and len(self.catalogue.evaluation_tokens) < 50:
                self.catalogue.evaluation_tokens.append(token)


# ============================================================================================
# The run


def read_catalogue(address: str) -> Catalogue:
    """The server's scorecards (full view, every page), plus one stored evaluation and a page
    token of ListEvaluations to aim Get/ListEvaluations at."""
    from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc

    with grpc.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.CreditEvaluationServiceStub(channel)
        cards, token = [], ""
        while True:
            page = stub.ListScorecards(
                pb.ListScorecardsRequest(view=pb.SCORECARD_VIEW_FULL, page_token=token), timeout=10
            )
            cards += [
                stub.GetScorecard(pb.GetScorecardRequest(name=c.name), timeout=10).scorecard
                for c in page.scorecards
            ]
            token = page.next_page_token
            if not token:
                break
        catalogue = Catalogue.from_scorecards(cards)
        taxi = pb.EvaluateRequest(scorecard="transport.taxi_driver")
        taxi.subject.kind, taxi.subject.id = 1, "11010519491231002X"
        taxi.indicators["violations_3pt"].count_value = 1
        for _ in range(2):
            catalogue.remember(stub.Evaluate(taxi, timeout=10).evaluation)
        token = stub.ListEvaluations(
            pb.ListEvaluationsRequest(page_size=1, purpose="supervision"), timeout=10
        ).next_page_token
        if token:
            catalogue.evaluation_tokens.append(token)
    return catalogue


def fuzz(
    address: str,
    pid: int,
    backend: str,
    *,
    requests: int,
    seconds: float,
    seed: int = 0,
    rss_limit_mb: float = 600.0,
    round_examples: int = ROUND_EXAMPLES,
    largest_batch: int = 1001,
    poll: Callable[[], int | None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Fuzz the server at `address` (process `pid`) until `requests` calls are made or
    `seconds` have passed; `poll()` returns the server's exit code once it has exited."""
    report = Report(backend, rss_limit_mb=rss_limit_mb)
    catalogue = read_catalogue(address)
    catalogue.largest_batch = largest_batch
    sender = Sender(address, catalogue, report)
    methods = list(METHODS)
    started = time.monotonic()
    deadline = started + seconds
    last_progress = started
    try:
        with MemoryWatch(pid) as memory:
            report.rss_first_mb = memory.first
            rnd = 0
            while report.requests < requests and time.monotonic() < deadline:
                # one method per round, in turn; of every 10 turns 3 are raw bytes, and one in
                # 10 of those starts with an oversize message
                method = methods[rnd % len(methods)]
                turn = rnd // len(methods)
                family = "raw" if turn % 10 in RAW_TURNS else "structured"
                t0 = time.monotonic()
                if family == "raw" and turn % 100 == RAW_TURNS[0]:
                    sender.send([oversize(method)])
                left = requests - report.requests
                _run_round(
                    sender,
                    catalogue,
                    method,
                    family,
                    seed + rnd,
                    examples=max(1, min(round_examples, left // 3)),
                    deadline=deadline,
                )
                report.seconds_by_method[method] += time.monotonic() - t0
                rnd += 1
                if poll is not None and (code := poll()) is not None:
                    report.exit_code = code
                    break
                if progress is not None and time.monotonic() - last_progress >= 10:
                    last_progress = time.monotonic()
                    progress(
                        f"{backend}: {report.requests:,} requests in {last_progress - started:.0f}"
                        f" s, "
                        f"RSS {memory.sample():.0f} MB, {len(report.findings)} distinct findings"
                    )
            memory.sample()
            report.rss_peak_mb = memory.peak
    finally:
        sender.close()
        report.seconds = time.monotonic() - started
    return report


def _run_round(
    sender: Sender,
    catalogue: Catalogue,
    method: str,
    family: str,
    round_seed: int,
    examples: int,
    deadline: float,
) -> None:
    @hypothesis_seed(round_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=False,
        print_blob=False,
    )
    @given(st.lists(calls(method, catalogue, family), min_size=1, max_size=6))
    def example(batch: list[Call]) -> None:
        if time.monotonic() < deadline:
            sender.send(batch)

    example()


def read_log_errors(log_text: str) -> collections.Counter[str]:
    """Error lines of a server's log: JSON records at level error or above, and any other
    line that looks like a traceback or an exception (grpc's own logging)."""
    out: collections.Counter[str] = collections.Counter()
    for line in log_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            if record.get("level") in ("error", "critical", "exception"):
                parts = [
                    str(record.get(k))
                    for k in ("event", "method", "code", "error")
                    if record.get(k)
                ]
                exc = str(record.get("exception", "")).strip().splitlines()
                if exc:
                    parts.append(exc[-1])
                out[_normalized(" ".join(parts))[:200]] += 1
        elif re.search(r"Traceback|Exception|Error", line):
            out[_normalized(line.strip())[:200]] += 1
    return out
