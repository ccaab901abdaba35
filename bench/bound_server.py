"""The real server with parts switched off: the measured bound of issue 12.

    SECTOR_CREDIT_BENCH_OFF=store,log .venv/bin/python bench/bound_server.py --listen ... \
        [every argument of `sector-credit-server`, as it takes them]

It runs `sector_credit.server.main.main()` with the same argv, after replacing, in this
process, the parts named in `SECTOR_CREDIT_BENCH_OFF` (a comma list; unset or empty: none,
and it is the real server) by ones that cost (nearly) nothing:

- `store`: no durable write. `EvaluationStore.save_many` still builds every row (the
  evaluation's documents, its id and time, the access records), but hands nothing to the
  writer thread: its future resolves at the end of the event loop's turn (when the real
  store hands its rows over) with every row "inserted", so `save`,
  `save_many` and `record_access` return what they would after a commit (a fresh id and
  create time per evaluation, as the store gives). What remains is the rest of the service.
- `rows`: `store`, and the rows are not built either: `save_many` returns at once, per
  record, a `StoredEvaluation` with a fresh id and create time (rows.evaluation_row's), no
  request digest computed (the record's own, or ""), no access row built.
- `log`: no per-RPC log line: `LoggingInterceptor` puts no layer around any method (the
  layer's enter, leave, `log_fields` and the JSON line go, errors' lines too); start-up and
  shut-down lines stay.
- `score`: no validation and scoring by the engine: the servicer's `_evaluate` scores the
  first request of each scorecard (id and version) for real and answers every later one with
  that result (its subject is the first request's). The request's parsing, the card's
  resolution, the reply's conversion to bytes, the interceptors, the access record and the
  durable write all stay. (`validate_only` requests still go through the engine.)

Nothing here changes the service's code: the replacements are made on its classes in this
process, at import time of this module. Each of the server's child processes (the workers,
the migrating child) is a fresh interpreter that imports the parent's `__main__` (this file)
as `__mp_main__` before it runs, as multiprocessing's spawn does (server/workers.py): the
module-level `switch_off()` below reaches every worker too. Each process that switched
something off says so on stderr (`bound_server: pid N: off store,log`), which
tests/test_bench_bound.py reads.

bench/service_bench.py runs it for its `*-nostore`, `*-nolog`, `*-norows`, `*-noscore`
configurations (docs/benchmarks.md, "The measured bound (issue 12): how to run it").
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

ENV = "SECTOR_CREDIT_BENCH_OFF"
PARTS = ("store", "rows", "log", "score")


def parts_off(value: str | None) -> tuple[str, ...]:
    """The parts named in the variable's value, in PARTS order; ValueError for another name."""
    names = {p.strip() for p in (value or "").split(",") if p.strip()}
    unknown = names - set(PARTS)
    if unknown:
        raise ValueError(f"{ENV}: unknown part(s) {', '.join(sorted(unknown))}; of {PARTS}")
    return tuple(p for p in PARTS if p in names)


def _store_off() -> None:
    """Rows built, not written: the writer's hand-off answers at once, every row inserted."""
    from sector_credit.server.db.errors import StoreUnavailable
    from sector_credit.server.db.groupcommit import Pending
    from sector_credit.server.db.store import EvaluationStore

    def inserted(pending: Pending) -> None:
        if not pending.future.done():  # None: the row went in as built
            pending.future.set_result([None] * len(pending.rows))

    def _submit(self: EvaluationStore, pending: Pending) -> None:
        if self._closed:
            raise StoreUnavailable("the audit store is closed")
        # answered at the end of this turn of the event loop, as the hand-over to the writer
        # is made: the caller still waits one turn, only not for a commit
        pending.loop.call_soon(inserted, pending)

    EvaluationStore._submit = _submit  # type: ignore[method-assign]


def _rows_off() -> None:
    """Rows not built either: each record answered as stored, with a fresh id and time."""
    from sector_credit.server.db.errors import StoreUnavailable
    from sector_credit.server.db.ids import new_evaluation_id
    from sector_credit.server.db.rows import StoredEvaluation
    from sector_credit.server.db.store import EvaluationStore

    async def save_many(
        self: EvaluationStore, records: Sequence[Any], access: Sequence[Any] = ()
    ) -> list[Any]:
        if self._closed:
            raise StoreUnavailable("the audit store is closed")
        out: list[Any] = []
        for record in records:
            evaluation_id, created = new_evaluation_id()
            out.append(
                StoredEvaluation(
                    id=str(evaluation_id),
                    created_at=created,
                    input=record.input,
                    result=record.result,
                    request_id=record.request_id or None,
                    request_digest=record.request_digest or "",
                    caller=record.caller,
                )
            )
        return out

    EvaluationStore.save_many = save_many  # type: ignore[method-assign]


def _log_off() -> None:
    """No layer of the log interceptor around any method: no per-RPC line."""
    from sector_credit.server.interceptors import LoggingInterceptor

    def layer_for(self: LoggingInterceptor, method: str, handler: Any) -> None:
        return None

    LoggingInterceptor.layer_for = layer_for  # type: ignore[assignment, method-assign]


def _score_off() -> None:
    """The engine's evaluate once per scorecard version; its result reused for every call."""
    from sector_credit.server.servicer import CreditEvaluationServicer

    results: dict[tuple[str, str], Any] = {}

    def _evaluate(
        self: CreditEvaluationServicer, compiled: Any, subject: Any, indicators: Any, as_of: Any
    ) -> Any:
        key = (compiled.id, compiled.version)
        result = results.get(key)
        if result is None:
            result = results[key] = compiled.evaluate(subject, indicators, as_of)
        self.metrics.observe_engine(compiled.id, 0.0)  # the metric stays, as the rest does
        return result

    CreditEvaluationServicer._evaluate = _evaluate  # type: ignore[method-assign]


_SWITCHES = {"store": _store_off, "rows": _rows_off, "log": _log_off, "score": _score_off}


def switch_off(parts: Sequence[str]) -> None:
    """Replace the named parts in this process (see the module docstring)."""
    for part in parts:
        _SWITCHES[part]()
    if parts:
        print(
            f"bound_server: pid {os.getpid()}: off {','.join(parts)}", file=sys.stderr, flush=True
        )


# At import time, in the launching process and in every worker (as __mp_main__).
try:
    OFF = parts_off(os.environ.get(ENV))
except ValueError as exc:  # a misspelt part must not measure the whole server unnoticed
    raise SystemExit(f"bound_server: {exc}") from None
switch_off(OFF)


if __name__ == "__main__":
    from sector_credit.server.main import main

    sys.exit(main(sys.argv[1:]))
