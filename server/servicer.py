"""The gRPC servicer: proto in, domain calls, proto out. Nothing else lives here.

Validation and scoring are the engine's, conversion is `convert`'s, storage the store's,
statuses the error interceptor's; this module only sequences them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from sector_credit.scorecards.engine import CompiledScorecard
from sector_credit.scorecards.model import (
    EvaluationResult,
    FieldViolation,
    InvalidInput,
    ScorecardNotFound,
)
from sector_credit.scorecards.registry import ScorecardRegistry
from sector_credit.v1 import (
    credit_evaluation_service_pb2 as pb,
)
from sector_credit.v1 import (
    credit_evaluation_service_pb2_grpc as pb_grpc,
)

from . import convert, errors, security
from .db import EvaluationRecord, EvaluationStore, InvalidRecord, StoredEvaluation
from .metrics import Metrics

STREAM_WINDOW = 512  # stream items evaluated but not yet stored, per stream
MAX_SCORECARD_PAGE = 100


@dataclass(frozen=True)
class _Prepared:
    """One request item after validation and scoring, ready to be stored."""

    record: EvaluationRecord | None  # None: answered already (validate_only or replay)
    response: Any  # the Evaluation message when answered already


class CreditEvaluationServicer(pb_grpc.CreditEvaluationServiceServicer):
    def __init__(self, registry: ScorecardRegistry, store: EvaluationStore, metrics: Metrics,
                 today: Callable[[], dt.date], batch_limit: int,
                 on_stored: Callable[[StoredEvaluation], None] | None = None):
        self.registry = registry
        self.store = store
        self.metrics = metrics
        self.today = today
        self.batch_limit = batch_limit
        self.on_stored = on_stored

    # -- scorecards ----------------------------------------------------------------------

    async def ListScorecards(self, request: pb.ListScorecardsRequest, context: grpc.aio.ServicerContext) -> pb.ListScorecardsResponse:
        full = request.view == pb.SCORECARD_VIEW_FULL
        ids = self.registry.ids()
        if request.page_size < 0:
            raise errors.BadRequest("page_size must not be negative",
                                    violations=[FieldViolation("page_size", "must not be negative")])
        start = _offset_from_token(request.page_token, "page_token")
        size = min(request.page_size or MAX_SCORECARD_PAGE, MAX_SCORECARD_PAGE)
        today = self.today()
        cards = []
        for sid in ids[start:start + size]:
            versions = self.registry.versions(sid)
            try:
                current = self.registry.resolve(sid, as_of=today)
            except ScorecardNotFound:  # every version takes effect later: show the earliest
                current = versions[-1]
            cards.append(convert.scorecard_to_proto(current.card, [c.card for c in versions], full=full))
        nxt = _token_for_offset(start + size) if start + size < len(ids) else ""
        return pb.ListScorecardsResponse(scorecards=cards, next_page_token=nxt)

    async def GetScorecard(self, request: pb.GetScorecardRequest, context: grpc.aio.ServicerContext) -> pb.GetScorecardResponse:
        sid = convert.scorecard_id_from_name(request.name)
        if not sid:
            raise errors.BadRequest("name is required: scorecards/{scorecard_id}",
                                    violations=[FieldViolation("name", "required: scorecards/{scorecard_id}")])
        as_of = self._as_of(request, "as_of")
        try:
            compiled = self.registry.resolve(sid, request.version or None, as_of)
        except ScorecardNotFound as exc:  # GetScorecardRequest names the scorecard `name`
            raise (exc.at("name") if exc.field == "scorecard" else exc) from None
        full = request.view != pb.SCORECARD_VIEW_BASIC
        versions = [c.card for c in self.registry.versions(sid)]
        return pb.GetScorecardResponse(scorecard=convert.scorecard_to_proto(compiled.card, versions, full=full))

    # -- evaluations ---------------------------------------------------------------------

    async def Evaluate(self, request: pb.EvaluateRequest, context: grpc.aio.ServicerContext) -> pb.EvaluateResponse:
        caller = _caller(context)
        prepared = await self._prepare(request, caller)
        if prepared.record is None:
            return pb.EvaluateResponse(evaluation=prepared.response)
        stored = await self._save(prepared.record)
        return pb.EvaluateResponse(evaluation=self._stored_to_proto(stored))

    async def BatchEvaluate(self, request: pb.BatchEvaluateRequest, context: grpc.aio.ServicerContext) -> pb.BatchEvaluateResponse:
        n = len(request.requests)
        if n > self.batch_limit:
            raise errors.TooLarge(
                f"a batch holds at most {self.batch_limit} items; this one has {n}: split it",
                metadata={"limit": str(self.batch_limit), "items": str(n)},
                violations=[FieldViolation("requests", f"{n} items, more than the limit of {self.batch_limit}")])
        caller = _caller(context)
        # filled in place: a response built from a list of results would copy every one
        response = pb.BatchEvaluateResponse()
        results: list[pb.BatchEvaluateResult] = [response.results.add() for _ in range(n)]
        to_store: list[tuple[int, EvaluationRecord]] = []
        for i, item in enumerate(request.requests):
            try:
                prepared = await self._prepare(item, caller, prefix=f"requests[{i}].")
            except (errors.ServiceError, errors.DomainError) as exc:
                results[i].error.CopyFrom(_item_error(exc))
                continue
            if prepared.record is None:
                results[i].evaluation.CopyFrom(prepared.response)
            else:
                to_store.append((i, prepared.record))
        if to_store:
            outcomes = await self._save_many([r for _, r in to_store])
            for k, outcome in enumerate(outcomes):
                i = to_store[k][0]
                # each item's domain objects go as soon as its reply is built: the batch's peak
                # memory is then about one copy of it, not the domain and the proto side by side
                to_store[k] = outcomes[k] = None  # type: ignore[call-overload]
                if isinstance(outcome, StoredEvaluation):
                    results[i].evaluation.CopyFrom(self._stored_to_proto(outcome))
                else:
                    results[i].error.CopyFrom(_item_error(outcome, prefix=f"requests[{i}]."))
                del outcome
        structlog.contextvars.bind_contextvars(items=n, failed=sum(1 for r in results if r.HasField("error")))
        return response

    async def StreamEvaluate(self, requests: AsyncIterator[pb.StreamEvaluateRequest],
                             context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamEvaluateResponse]:
        """Items are scored as they arrive and stored by group commit; replies go out as each
        commit lands (so possibly out of order), with at most STREAM_WINDOW items in flight."""
        caller = _caller(context)
        out: asyncio.Queue[pb.StreamEvaluateResponse | None] = asyncio.Queue()
        window = asyncio.Semaphore(STREAM_WINDOW)
        pending: set[asyncio.Task[None]] = set()

        async def store_one(cid: str, record: EvaluationRecord) -> None:
            try:
                stored = await self._save(record)
                await out.put(pb.StreamEvaluateResponse(correlation_id=cid, evaluation=self._stored_to_proto(stored)))
            except (errors.ServiceError, errors.DomainError, InvalidRecord) as exc:  # this item only
                await out.put(pb.StreamEvaluateResponse(correlation_id=cid, error=_item_error(exc, "request.")))
            finally:
                window.release()

        async def read() -> int:
            n = 0
            try:
                async for msg in requests:
                    await window.acquire()
                    cid = msg.correlation_id or str(n)
                    n += 1
                    try:
                        prepared = await self._prepare(msg.request, caller, prefix="request.")
                    except (errors.ServiceError, errors.DomainError) as exc:
                        window.release()
                        await out.put(pb.StreamEvaluateResponse(correlation_id=cid, error=_item_error(exc)))
                        continue
                    if prepared.record is None:
                        window.release()
                        await out.put(pb.StreamEvaluateResponse(correlation_id=cid, evaluation=prepared.response))
                        continue
                    task = asyncio.ensure_future(store_one(cid, prepared.record))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                if pending:
                    await asyncio.gather(*pending)
                return n
            finally:
                await out.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (item := await out.get()) is not None:
                yield item
            # re-raise what stopped the reader (e.g. the store went down)
            structlog.contextvars.bind_contextvars(items=await reader)
        finally:
            if not reader.done():
                reader.cancel()

    async def GetEvaluation(self, request: pb.GetEvaluationRequest, context: grpc.aio.ServicerContext) -> pb.GetEvaluationResponse:
        eid = convert.evaluation_id_from_name(request.name)
        stored = await self.store.get(eid)
        if stored is None:
            raise errors.NotFound(f"no evaluation {request.name}", metadata={"name": request.name})
        security.require_read(stored.result.scorecard_id, stored.caller)
        return pb.GetEvaluationResponse(evaluation=self._stored_to_proto(stored))

    async def ListEvaluations(self, request: pb.ListEvaluationsRequest, context: grpc.aio.ServicerContext) -> pb.ListEvaluationsResponse:
        # page_size and page_token are checked by the store (InvalidListRequest)
        subject_id = request.subject_id.strip().upper() or None
        scorecard = convert.scorecard_id_from_name(request.scorecard) or None
        own = security.read_scope(scorecard)  # a grant's scorecards, or its own evaluations only
        rows, token = await self.store.list(subject_id=subject_id, scorecard_id=scorecard, caller=own,
                                            page_size=request.page_size or 50, page_token=request.page_token or None)
        return pb.ListEvaluationsResponse(evaluations=[self._stored_to_proto(r) for r in rows], next_page_token=token or "")

    # -- the shared path -------------------------------------------------------------------

    def _as_of(self, request: Any, field: str) -> dt.date | None:
        if not request.HasField(field):
            return None
        try:
            return convert.date_from_proto(getattr(request, field))
        except ValueError as exc:
            raise InvalidInput([FieldViolation(field, str(exc))]) from None

    async def _prepare(self, request: pb.EvaluateRequest, caller: str, prefix: str = "") -> _Prepared:
        """Validate and score one request; raise for bad input; replay a known request_id."""
        try:
            inp = convert.evaluation_input_from_proto(request)
            as_of = inp.as_of or self.today()
            compiled = self.registry.resolve(inp.scorecard_id, inp.version, as_of)
            security.require_scorecard(compiled.id)  # before any indicator is validated or scored
            structlog.contextvars.bind_contextvars(scorecard=compiled.id)
            if request.validate_only:
                subject, values = compiled.validate(inp.subject, inp.indicators, as_of)
                return _Prepared(None, convert.evaluation_to_proto(
                    compiled.score(subject, values, as_of), request_id=request.request_id, caller=caller))
            result = self._evaluate(compiled, inp.subject, inp.indicators, as_of)
        except InvalidInput as exc:
            if prefix:
                raise InvalidInput([FieldViolation(prefix + v.field, v.description) for v in exc.violations]) from None
            raise
        except ScorecardNotFound as exc:
            if prefix:
                raise exc.at(prefix + exc.field) from None
            raise
        structlog.contextvars.bind_contextvars(grade=result.grade.code)
        return _Prepared(EvaluationRecord(input=inp, result=result, caller=caller,
                                          request_id=request.request_id or None), None)

    def _evaluate(self, compiled: CompiledScorecard, subject: Any, indicators: Any, as_of: dt.date) -> EvaluationResult:
        t0 = time.perf_counter()
        result = compiled.evaluate(subject, indicators, as_of)
        self.metrics.observe_engine(compiled.id, time.perf_counter() - t0)
        return result

    async def _save(self, record: EvaluationRecord) -> StoredEvaluation:
        """Durable before it returns; a known request_id comes back as the stored evaluation
        (`replayed`), or raises RequestConflict when it was used for another request."""
        stored = await self.store.save(record)
        self._stored(stored)
        return stored

    async def _save_many(self, records: list[EvaluationRecord]) -> list[StoredEvaluation | BaseException]:
        outcomes = await self.store.save_many(records)
        for o in outcomes:
            if isinstance(o, StoredEvaluation):
                self._stored(o)
        return list(outcomes)

    def _stored(self, stored: StoredEvaluation) -> None:
        if stored.replayed:
            return
        self.metrics.count_evaluation(stored.result.scorecard_id, stored.result.grade.code)
        if self.on_stored is not None:
            self.on_stored(stored)

    @staticmethod
    def _stored_to_proto(stored: StoredEvaluation) -> Any:
        return convert.evaluation_to_proto(
            stored.result, evaluation_id=stored.id, create_time=stored.created_at,
            request_id=stored.request_id or "", caller=stored.caller or "")


def _caller(context: grpc.aio.ServicerContext) -> str:
    """The authenticated identity (security.current_principal), never the x-caller header."""
    principal = security.current_principal()
    return principal.name if principal is not None else "anonymous"


def _item_error(exc: BaseException, prefix: str = "") -> Any:
    """The ItemError of one batch or stream item: the status a single Evaluate would get.
    `prefix` names the item in violations raised after validation (the store's)."""
    st = errors.status_for(exc)
    violations = [FieldViolation(prefix + v.field, v.description) for v in errors.violations_of(st)]
    return convert.item_error_to_proto(st.code, st.message, _reason(exc), violations)


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", "INTERNAL"))


def _token_for_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _offset_from_token(token: str, field: str) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if text.startswith("o:") and int(text[2:]) >= 0:
            return int(text[2:])
    except (ValueError, UnicodeDecodeError):
        pass
    raise errors.BadRequest("page_token is not a token this service issued",
                            violations=[FieldViolation(field, "not a token from a previous ListScorecards call")])
