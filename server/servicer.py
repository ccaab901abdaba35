"""The gRPC servicer: proto in, domain calls, proto out. Nothing else lives here.

Validation and scoring are the engine's, conversion is `convert`'s, storage the store's,
statuses the error interceptor's; this module only sequences them, and says on the call's
request context (`request_context.py`) what the call did, for its log line and its metrics.

Over 500 lines for a reason: one handler per RPC of the service (eight), all on one shared path
(`_prepare`, `_save`, `_stored_to_proto`); the three that take many items (BatchEvaluate,
StreamEvaluate with its flow control, ExploreEvaluation) are 290 of its lines and belong with
that path.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from sector_credit.scorecards import limits, whatif
from sector_credit.scorecards.engine import CompiledScorecard
from sector_credit.scorecards.model import (
    DomainError,
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

from . import convert, errors, request_context, security
from .access import QueryAudit
from .db import (
    AccessRecord,
    EvaluationRecord,
    EvaluationStore,
    StoredEvaluation,
    UnreadableEvaluation,
)
from .grpc_types import Context
from .logs import log
from .metrics import Metrics
from .request_context import RequestContext

STREAM_WINDOW = 512  # stream items evaluated but not yet stored, per stream
MAX_SCORECARD_PAGE = 100
# bytes a reply grows by once acknowledged (name and create_time), and per item of a batch
# reply (the BatchEvaluateResult around it): reserved when a reply's size is settled
ACK_BYTES = 96
DEFAULT_MAX_REPLY_BYTES = 16 * 1024 * 1024
# BatchEvaluate calls scored and stored at once in one process; the others wait their turn
# holding only their request. Each holds about 8 KB per item (its replies, rows and results)
# until its rows are committed, and a process is one core of Python work: two keep it busy (one
# scores while the other's rows commit), a third adds only memory (issue 12: a kernel that
# gives one worker three of four connections took it past 300 MB)
BATCHES_AT_ONCE = 2


@dataclass(frozen=True)
class _Prepared:
    """One request item after validation and scoring, ready to be stored."""

    record: EvaluationRecord | None  # None: answered already (validate_only)
    # the serialized Evaluation (convert.evaluation_bytes): the whole answer when `record` is
    # None; else the reply to send once the record is committed (built, and its size
    # settled, before anything is stored)
    response: bytes
    access: AccessRecord | None = None  # the access record of an item answered already
    full: bool = True  # the reply's view: FULL (with the lines) or BASIC
    grade: str = ""  # the grade code scored, for the call's log line


class CreditEvaluationServicer(pb_grpc.CreditEvaluationServiceServicer):
    def __init__(
        self,
        registry: ScorecardRegistry,
        store: EvaluationStore,
        metrics: Metrics,
        today: Callable[[], dt.date],
        batch_limit: int,
        on_stored: Callable[[StoredEvaluation], None] | None = None,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        audit: QueryAudit | None = None,
        records: Any = None,
    ):
        self.max_reply_bytes = max_reply_bytes
        self.records = records  # records_servicer.RecordFiller: indicators derived from records
        self.registry = registry
        self.audit = audit or QueryAudit(store)
        self.store = store
        self.metrics = metrics
        self.today = today
        self.batch_limit = batch_limit
        self.on_stored = on_stored
        self._batch_turns = asyncio.Semaphore(BATCHES_AT_ONCE)

    # -- scorecards ----------------------------------------------------------------------

    async def ListScorecards(
        self, request: pb.ListScorecardsRequest, context: Context
    ) -> pb.ListScorecardsResponse:
        convert.check_texts(("page_token", request.page_token, limits.MAX_PAGE_TOKEN))
        full = request.view == pb.SCORECARD_VIEW_FULL
        if request.page_size < 0:
            raise errors.BadRequest(
                "page_size must not be negative",
                violations=[FieldViolation("page_size", "must not be negative")],
            )
        start = _offset_from_token(request.page_token, "page_token")
        size = min(request.page_size or MAX_SCORECARD_PAGE, MAX_SCORECARD_PAGE)
        # one entry per scorecard (the version in force) or, with all_versions, per version
        entries: list[tuple[str, CompiledScorecard | None]] = [
            (sid, c)
            for sid in self.registry.ids()
            for c in (self.registry.versions(sid) if request.all_versions else [None])
        ]
        today = self.today()
        cards = []
        for sid, compiled in entries[start : start + size]:
            versions = self.registry.versions(sid)
            if compiled is None:
                try:
                    compiled = self.registry.resolve(sid, as_of=today)
                except ScorecardNotFound:  # every version takes effect later: show the earliest
                    compiled = versions[-1]
            cards.append(
                convert.scorecard_to_proto(compiled.card, [c.card for c in versions], full=full)
            )
        nxt = _token_for_offset(start + size) if start + size < len(entries) else ""
        return pb.ListScorecardsResponse(scorecards=cards, next_page_token=nxt)

    async def GetScorecard(
        self, request: pb.GetScorecardRequest, context: Context
    ) -> pb.GetScorecardResponse:
        convert.check_texts(
            ("name", request.name, limits.MAX_SCORECARD_ID),
            ("version", request.version, limits.MAX_VERSION),
        )
        sid = convert.scorecard_id_from_name(request.name)
        if not sid:
            raise errors.BadRequest(
                "name is required: scorecards/{scorecard_id}",
                violations=[FieldViolation("name", "required: scorecards/{scorecard_id}")],
            )
        # without a version, unset as_of is today, as in Evaluate: the card shown is the one
        # an evaluation uses; a version asked for by name is shown even before it takes effect
        as_of = self._as_of(request, "as_of")
        if as_of is None and not request.version:
            as_of = self.today()
        try:
            compiled = self.registry.resolve(sid, request.version or None, as_of)
        except ScorecardNotFound as exc:  # GetScorecardRequest names the scorecard `name`
            raise (exc.at("name") if exc.field == "scorecard" else exc) from None
        full = request.view != pb.SCORECARD_VIEW_BASIC
        versions = [c.card for c in self.registry.versions(sid)]
        return pb.GetScorecardResponse(
            scorecard=convert.scorecard_to_proto(compiled.card, versions, full=full)
        )

    # -- evaluations ---------------------------------------------------------------------

    async def Evaluate(self, request: pb.EvaluateRequest, context: Context) -> pb.EvaluateResponse:
        self.audit.in_handler()  # a refusal from here on is this call's own record
        ctx = _context()
        async with self.audit.call(
            "Evaluate",
            subject_id=request.subject.id,
            scorecard_id=convert.scorecard_id_from_name(request.scorecard),
        ) as call:
            prepared = await self._prepare(
                request, ctx, method="Evaluate", full=convert.full_view(request.view)
            )
            if prepared.record is None:  # validate_only: on record, with nothing stored
                assert prepared.access is not None
                call.add(prepared.access)
                ctx.grade = prepared.grade
                return convert.evaluate_response_bytes(prepared.response)  # type: ignore[return-value]
            call.linked()
            stored = await self._save(prepared.record)
        ctx.grade = stored.result.grade.code  # a replayed request id: the grade stored then
        # replies are bytes (see add_to_server): assembled, never built as messages
        return convert.evaluate_response_bytes(self._acknowledged(prepared, stored, ctx))  # type: ignore[return-value]

    async def BatchEvaluate(
        self, request: pb.BatchEvaluateRequest, context: Context
    ) -> pb.BatchEvaluateResponse:
        n = len(request.requests)
        if n > self.batch_limit:
            raise errors.TooLarge(
                f"a batch holds at most {self.batch_limit} items; this one has {n}: split it",
                metadata={"limit": str(self.batch_limit), "items": str(n)},
                violations=[
                    FieldViolation(
                        "requests", f"{n} items, more than the limit of {self.batch_limit}"
                    )
                ],
            )
        if (why := convert.view_problem(request.view)) is not None:
            raise errors.BadRequest(f"view {why}", violations=[FieldViolation("view", why)])
        self.audit.in_handler()  # a refused item is recorded with the batch's other items
        async with self._batch_turns:  # BATCHES_AT_ONCE
            return await self._batch(request, n)  # type: ignore[return-value]

    async def _batch(self, request: pb.BatchEvaluateRequest, n: int) -> bytes:
        """BatchEvaluate's items, scored, stored and answered: the reply's bytes."""
        ctx = _context()
        # each item's BatchEvaluateResult as bytes; the reply is their concatenation
        results: list[bytes] = [b""] * n
        codes: list[grpc.StatusCode] = [grpc.StatusCode.OK] * n  # for the log line and item metrics
        to_store: list[tuple[int, _Prepared]] = []
        access: list[AccessRecord] = []  # of the items that store nothing; one per item
        reply_bytes = 0
        records = await self._batch_records(request.requests)
        for i, item in enumerate(request.requests):
            try:
                prepared = await self._prepare(
                    item,
                    ctx,
                    prefix=f"requests[{i}].",
                    method="BatchEvaluate",
                    full=convert.full_view(item.view or request.view),
                    records=records,
                )
            except (errors.ServiceError, DomainError) as exc:
                err = _item_error(exc)
                results[i], codes[i] = (
                    convert.batch_result_bytes(error=err),
                    errors.code_of(err.code),
                )
                reply_bytes += len(results[i]) + 8
                access.append(self._item_failure("BatchEvaluate", exc, item))
                continue
            reply_bytes += len(prepared.response) + ACK_BYTES
            if prepared.record is None:
                results[i] = convert.batch_result_bytes(prepared.response)
                assert prepared.access is not None
                access.append(prepared.access)
            else:
                to_store.append((i, prepared))
        if reply_bytes > self.max_reply_bytes:
            # settled before anything is stored: a reply the caller could not receive would
            # leave stored evaluations it never heard of
            raise errors.TooLarge(
                f"the reply to this batch would be about {reply_bytes} bytes, over the"
                f" {self.max_reply_bytes}-byte message limit; nothing was stored: split the batch",
                metadata={"limit": str(self.max_reply_bytes), "reply_bytes": str(reply_bytes)},
                violations=[
                    FieldViolation(
                        "requests",
                        f"the reply would be about {reply_bytes} bytes;"
                        f" at most {self.max_reply_bytes}",
                    )
                ],
            )
        if to_store or access:
            outcomes = await self._save_many([p.record for _, p in to_store], access)  # type: ignore[misc]
            for k, outcome in enumerate(outcomes):
                i, prepared = to_store[k]
                # each item's domain objects go as soon as its reply is built: the batch's peak
                # memory is then about one copy of it, not the domain and the proto side by side
                to_store[k] = outcomes[k] = None  # type: ignore[call-overload]
                if isinstance(outcome, StoredEvaluation):
                    results[i] = convert.batch_result_bytes(
                        self._acknowledged(prepared, outcome, ctx)
                    )
                else:
                    err = _item_error(outcome, prefix=f"requests[{i}].")
                    results[i], codes[i] = (
                        convert.batch_result_bytes(error=err),
                        errors.code_of(err.code),
                    )
                del outcome, prepared
        for code in codes:  # each item's outcome, for the log line and the item metrics
            ctx.item_done(code)
        return b"".join(results)

    async def StreamEvaluate(
        self, requests: AsyncIterator[pb.StreamEvaluateRequest], context: Context
    ) -> AsyncIterator[pb.StreamEvaluateResponse]:
        """Items are scored as they arrive and stored by group commit; replies go out as each
        commit lands (so possibly out of order). Every item gets its reply or its item error
        (a store failure: UNAVAILABLE for that item). Flow control: at most STREAM_WINDOW
        items are read and not yet sent; a client that does not read its replies stops the
        reading of its requests, and HTTP/2 then slows its sending, instead of the replies
        piling up in the server."""
        self.audit.in_handler()  # a refused item is recorded as the stream's other items
        ctx = _context()
        # holds only items whose permit is taken, so it never exceeds STREAM_WINDOW
        # a reply is a message (an item error) or bytes (an evaluation; see add_to_server)
        out: asyncio.Queue[pb.StreamEvaluateResponse | bytes | BaseException | None] = (
            asyncio.Queue()
        )
        window = asyncio.Semaphore(STREAM_WINDOW)  # a permit per item read and not yet sent
        saving: set[asyncio.Task[None]] = set()
        items = 0

        async def store_one(cid: str, prepared: _Prepared) -> None:
            try:
                assert prepared.record is not None
                stored = await self._save(prepared.record)
                reply = convert.stream_response_bytes(
                    cid, self._acknowledged(prepared, stored, ctx)
                )
            except errors.EXPECTED as exc:  # this item only: UNAVAILABLE when the store failed
                out.put_nowait(
                    pb.StreamEvaluateResponse(
                        correlation_id=cid, error=_item_error(exc, "request.")
                    )
                )
            except Exception as exc:  # a bug: the stream ends with it (INTERNAL, logged)
                out.put_nowait(exc)
            else:
                out.put_nowait(reply)

        async def answer_one(
            cid: str, reply: pb.StreamEvaluateResponse | bytes, access: AccessRecord
        ) -> None:
            """An item that stores nothing: its access record, then its reply."""
            try:
                await self.audit.commit(access)
            except errors.EXPECTED as exc:  # UNAVAILABLE: the record could not be kept
                out.put_nowait(
                    pb.StreamEvaluateResponse(
                        correlation_id=cid, error=_item_error(exc, "request.")
                    )
                )
            except Exception as exc:  # a bug: the stream ends with it (INTERNAL, logged)
                out.put_nowait(exc)
            else:
                out.put_nowait(reply)

        async def read() -> None:
            nonlocal items
            try:
                async for msg in requests:
                    await window.acquire()
                    cid = msg.correlation_id or str(items)
                    items += 1
                    try:
                        prepared = await self._prepare(
                            msg.request,
                            ctx,
                            prefix="request.",
                            method="StreamEvaluate",
                            full=convert.full_view(msg.request.view),
                        )
                    except (errors.ServiceError, DomainError) as exc:
                        reply = pb.StreamEvaluateResponse(
                            correlation_id=cid, error=_item_error(exc)
                        )
                        answer = answer_one(
                            cid, reply, self._item_failure("StreamEvaluate", exc, msg.request)
                        )
                    else:
                        if prepared.record is None:
                            assert prepared.access is not None
                            answer = answer_one(
                                cid,
                                convert.stream_response_bytes(cid, prepared.response),
                                prepared.access,
                            )
                        else:
                            answer = store_one(cid, prepared)
                    task = asyncio.ensure_future(answer)
                    saving.add(task)
                    task.add_done_callback(saving.discard)
                if saving:  # each puts its own reply; none raises
                    await asyncio.wait(set(saving))
                out.put_nowait(None)
            except Exception as exc:  # the request stream broke, or a bug: end with it
                out.put_nowait(exc)

        reader = asyncio.ensure_future(read())
        try:
            while (item := await out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                # bytes are an evaluation (see add_to_server); a message is an item error
                ctx.item_done(
                    grpc.StatusCode.OK
                    if isinstance(item, bytes) or not item.HasField("error")
                    else errors.code_of(item.error.code)
                )
                yield item  # type: ignore[misc]  # bytes: the serializer passes them on
                window.release()  # sent: the reader may take one more request
        finally:
            reader.cancel()
            for task in list(saving):  # the rows are committed all the same (store.save_many)
                task.cancel()

    async def GetEvaluation(
        self, request: pb.GetEvaluationRequest, context: Context
    ) -> pb.GetEvaluationResponse:
        self.audit.in_handler()  # a refusal from here on is this call's own record
        async with self.audit.call("GetEvaluation") as call:
            call.check_purpose(request)
            eid = convert.evaluation_id_from_name(request.name)
            stored = await self.store.get(eid)
            if stored is None:
                raise errors.NotFound(
                    f"no evaluation {request.name}", metadata={"name": request.name}
                )
            subject, scorecard_id = _subject_and_scorecard(stored)
            call.subject_id, call.scorecard_id = (
                subject,
                scorecard_id,
            )  # a refusal's record names them
            security.require_read(scorecard_id or "", stored.caller)
            call.touched(subject, scorecard_id, 1)
            _context().touched(stored.name)
        return pb.GetEvaluationResponse(
            evaluation=_as_read(self._stored_to_proto(stored), security.may_see_ids())
        )

    async def ListEvaluations(
        self, request: pb.ListEvaluationsRequest, context: Context
    ) -> pb.ListEvaluationsResponse:
        # page_size and the token's meaning are checked by the store (InvalidListRequest)
        convert.check_texts(
            ("subject_id", request.subject_id, limits.MAX_SUBJECT_ID),
            ("scorecard", request.scorecard, limits.MAX_SCORECARD_ID),
            ("page_token", request.page_token, limits.MAX_PAGE_TOKEN),
        )
        subject_id = request.subject_id.strip().upper() or None
        scorecard = convert.scorecard_id_from_name(request.scorecard) or None
        self.audit.in_handler()
        async with self.audit.call(
            "ListEvaluations", subject_id=subject_id, scorecard_id=scorecard
        ) as call:
            call.check_purpose(request)
            own = security.read_scope(
                scorecard
            )  # a grant's scorecards, or its own evaluations only
            rows, token = await self.store.list(
                subject_id=subject_id,
                scorecard_id=scorecard,
                caller=own,
                page_size=request.page_size or 50,
                page_token=request.page_token or None,
            )
            response = pb.ListEvaluationsResponse()
            size = 0
            returned: dict[str, int] = {}  # one access record per subject the page shows
            see_ids = security.may_see_ids()
            for k, row in enumerate(rows):
                message = _as_read(self._stored_to_proto(row), see_ids)
                size += message.ByteSize() + ACK_BYTES
                if size > self.max_reply_bytes - ACK_BYTES and k > 0:
                    # a page that would not fit in one message ends here; the next page goes on
                    token = self.store.page_token_after(
                        rows[k - 1].id, subject_id=subject_id, scorecard_id=scorecard, caller=own
                    )
                    break
                response.evaluations.append(message)
                subject = _subject_and_scorecard(row)[0]
                returned[subject] = returned.get(subject, 0) + 1
            for subject, n in returned.items():
                call.touched(subject, scorecard, n)
            response.next_page_token = token or ""
        return response

    # -- what-if --------------------------------------------------------------------------

    async def ExploreEvaluation(
        self, request: pb.ExploreEvaluationRequest, context: Context
    ) -> pb.ExploreEvaluationResponse:
        """What would change the grade (scorecards/whatif.py); never stored, always on record.
        By name it reads a stored evaluation: the reader grant on its scorecard (and its own
        evaluations only, if the grant says so) and a purpose, as GetEvaluation. On an input
        it is a what-if: the evaluator grant on the scorecard, as Evaluate."""
        self.audit.in_handler()  # a refusal from here on is this call's own record
        source = request.WhichOneof("source")
        if source == "name":
            async with self.audit.call("ExploreEvaluation") as call:
                call.check_purpose(request)
                stored = await self.store.get(convert.evaluation_id_from_name(request.name))
                if stored is None:
                    raise errors.NotFound(
                        f"no evaluation {request.name}", metadata={"name": request.name}
                    )
                subject, scorecard_id = _subject_and_scorecard(stored)
                call.subject_id, call.scorecard_id = (
                    subject,
                    scorecard_id,
                )  # a refusal's record names them
                security.require_read(scorecard_id or "", stored.caller)
                if not isinstance(stored, StoredEvaluation):
                    raise errors.FailedPrecondition(
                        f"{request.name} cannot be read back by this version of the service:"
                        f" {stored.why}",
                        violations=[
                            FieldViolation("name", "its stored result cannot be read back")
                        ],
                    )
                made = stored.result
                compiled = self._made_with(request.name, made)
                evaluation = _as_read(self._stored_to_proto(stored), security.may_see_ids())
                explored = await asyncio.to_thread(
                    whatif.explore_values, compiled, made.subject, made.indicators, made.as_of
                )
                call.touched(subject, scorecard_id, 1)
        elif source == "evaluation":
            item = request.evaluation
            async with self.audit.call(
                "ExploreEvaluation",
                subject_id=item.subject.id,
                scorecard_id=convert.scorecard_id_from_name(item.scorecard),
            ) as call:
                if request.purpose or request.purpose_note:
                    call.check_purpose(request)
                refused = [
                    FieldViolation(f"evaluation.{f}", "a what-if is never stored; leave it empty")
                    for f, set_ in (
                        ("request_id", bool(item.request_id)),
                        ("validate_only", item.validate_only),
                    )
                    if set_
                ]
                if refused:
                    raise errors.BadRequest("a what-if is never stored", violations=refused)
                try:
                    inp = convert.evaluation_input_from_proto(item)
                    as_of = inp.as_of or self.today()
                    compiled = self.registry.resolve(inp.scorecard_id, inp.version, as_of)
                    security.require_scorecard(compiled.id)  # before any indicator is scored
                    _context().scorecard = compiled.id
                    evidence: tuple[Any, ...] = ()
                    if self.records is not None and self.records.derived(compiled.card):
                        # as Evaluate: from the records as of the explored as_of, none submitted
                        inp, evidence = await self.records.fill(compiled, inp, as_of)
                    explored = await asyncio.to_thread(
                        whatif.explore, compiled, inp.subject, inp.indicators, as_of
                    )
                    if evidence:  # the reply's evaluation cites the records it read
                        explored = dataclasses.replace(
                            explored,
                            result=dataclasses.replace(explored.result, evidence=evidence),
                        )
                except InvalidInput as exc:
                    raise InvalidInput(
                        [
                            FieldViolation("evaluation." + v.field, v.description)
                            for v in exc.violations
                        ]
                    ) from None
                except ScorecardNotFound as exc:
                    raise exc.at("evaluation." + exc.field) from None
                evaluation = convert.evaluation_to_proto(explored.result, caller=_context().caller)
                call.touched(explored.result.subject.id, compiled.id, 0)  # nothing stored was read
        else:
            raise errors.BadRequest(
                "name or evaluation is required",
                violations=[
                    FieldViolation(
                        "name", "required unless evaluation is given: evaluations/{evaluation_id}"
                    )
                ],
            )
        ctx = _context()
        ctx.scorecard, ctx.grade = compiled.id, explored.result.grade.code
        if source == "name":
            ctx.touched(request.name)
        return convert.whatif_to_proto(explored, evaluation)

    def _made_with(self, name: str, made: EvaluationResult) -> CompiledScorecard:
        """The scorecard version a stored evaluation was made with, as it was then."""
        try:
            compiled = self.registry.resolve(made.scorecard_id, made.version, made.as_of)
        except ScorecardNotFound:
            compiled = None
        if compiled is None or compiled.digest != made.digest:
            raise errors.FailedPrecondition(
                f"{name} was made with {made.scorecard_id} {made.version} ({made.digest}), which"
                f" this"
                " server does not have loaded with that definition",
                metadata={
                    "scorecard": made.scorecard_id,
                    "version": made.version,
                    "digest": made.digest,
                },
                violations=[
                    FieldViolation(
                        "name", "its scorecard version is not loaded with the same definition"
                    )
                ],
            )
        return compiled

    # -- the shared path -------------------------------------------------------------------

    async def _batch_records(self, items: Any) -> dict[str, list[Any]] | None:
        """The credit records of every subject of the batch whose scorecard (some version of
        it) derives indicators from records, read in one go before any item is scored, not
        one query per item (None: no such item)."""
        if self.records is None:
            return None
        derives: dict[str, bool] = {}
        subjects = []
        for item in items:
            sid = convert.scorecard_id_from_name(item.scorecard)
            if sid not in derives:
                derives[sid] = self.records.derive_any(self.registry.versions(sid))
            if derives[sid]:
                subjects.append(item.subject.id)
        return await self.records.prefetch(subjects) if subjects else None

    def _as_of(self, request: Any, field: str) -> dt.date | None:
        return convert.request_date(request, field)

    async def _prepare(
        self,
        request: pb.EvaluateRequest,
        ctx: RequestContext,
        prefix: str = "",
        method: str = "Evaluate",
        full: bool = True,
        records: dict[str, list[Any]] | None = None,
    ) -> _Prepared:
        """Validate and score one request; raise for bad input; replay a known request_id.
        The record to store carries the item's access record (`method`). `full`: the reply
        has the lines (FULL view) or not (BASIC); the record is the whole result either way.
        `records`: the credit records of a batch's subjects, read beforehand."""
        caller = ctx.caller
        if request.request_id:  # the caller's own id joins the log line to its evaluation
            ctx.requested(request.request_id)
        try:
            inp = convert.evaluation_input_from_proto(request)
            as_of = inp.as_of or self.today()
            compiled = self.registry.resolve(inp.scorecard_id, inp.version, as_of)
            security.require_scorecard(compiled.id)  # before any indicator is validated or scored
            ctx.scorecard = compiled.id
            evidence: tuple[Any, ...] = ()
            if self.records is not None and self.records.derived(compiled.card):
                inp, evidence = await self.records.fill(compiled, inp, as_of, records)
            if request.validate_only:
                subject, values = compiled.validate(inp.subject, inp.indicators, as_of)
                scored = dataclasses.replace(
                    compiled.score(subject, values, as_of), evidence=evidence
                )
                return _Prepared(
                    None,
                    convert.evaluation_bytes(
                        scored, request_id=request.request_id, caller=caller, lines=full
                    ),
                    self.audit.record(method, subject_id=subject.id, scorecard_id=compiled.id),
                    full,
                    scored.grade.code,
                )
            result = self._evaluate(compiled, inp.subject, inp.indicators, as_of)
            if evidence:
                result = dataclasses.replace(result, evidence=evidence)
        except InvalidInput as exc:
            if prefix:
                raise InvalidInput(
                    [FieldViolation(prefix + v.field, v.description) for v in exc.violations]
                ) from None
            raise
        except ScorecardNotFound as exc:
            if prefix:
                raise exc.at(prefix + exc.field) from None
            raise
        # the reply is built now, before anything is stored: what cannot be answered is not kept
        reply = convert.evaluation_bytes(
            result, request_id=request.request_id, caller=caller, lines=full
        )
        size = len(reply) + ACK_BYTES
        if size > self.max_reply_bytes:
            raise errors.TooLarge(
                f"the reply would be about {size} bytes, over the {self.max_reply_bytes}-byte"
                f" message"
                " limit; nothing was stored",
                metadata={"limit": str(self.max_reply_bytes)},
            )
        access = self.audit.record(
            method, subject_id=result.subject.id, scorecard_id=result.scorecard_id, returned=1
        )
        return _Prepared(
            EvaluationRecord(
                input=inp,
                result=result,
                caller=caller,
                request_id=request.request_id or None,
                access=access,
                made_by=compiled.card,
            ),
            reply,
            full=full,
            grade=result.grade.code,
        )

    def _item_failure(
        self, method: str, exc: BaseException, request: pb.EvaluateRequest
    ) -> AccessRecord:
        return self.audit.failure(
            method,
            exc,
            subject_id=request.subject.id,
            scorecard_id=convert.scorecard_id_from_name(request.scorecard),
        )

    def _evaluate(
        self, compiled: CompiledScorecard, subject: Any, indicators: Any, as_of: dt.date
    ) -> EvaluationResult:
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

    async def _save_many(
        self, records: list[EvaluationRecord], access: list[AccessRecord]
    ) -> list[StoredEvaluation | BaseException]:
        outcomes = await self.store.save_many(records, access)
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

    def _acknowledged(
        self, prepared: _Prepared, stored: StoredEvaluation, ctx: RequestContext
    ) -> bytes:
        """The serialized reply for a committed record: the one built before the commit,
        named and timed; for a replayed request id, the evaluation stored earlier (in the
        view asked for now)."""
        ctx.touched(stored.name)
        if stored.replayed:
            return bytes(self._stored_to_proto(stored, lines=prepared.full).SerializeToString())
        return prepared.response + convert.acknowledgement_bytes(stored.id, stored.created_at)

    @staticmethod
    def _stored_to_proto(
        stored: StoredEvaluation | UnreadableEvaluation, lines: bool = True
    ) -> Any:
        """A stored evaluation as read back (`lines=False`: in the BASIC view); one that cannot
        be rendered is shown with what its row says and `unreadable` set, never as an error
        hiding the rest of a page."""
        if isinstance(stored, StoredEvaluation):
            try:
                return convert.evaluation_to_proto(
                    stored.result,
                    evaluation_id=stored.id,
                    create_time=stored.created_at,
                    request_id=stored.request_id or "",
                    caller=stored.caller or "",
                    lines=lines,
                )
            except Exception:  # this row's alone: logged for the operator, marked for the caller
                log.exception("a stored evaluation cannot be rendered", evaluation=stored.id)
                result = stored.result
                return convert.unreadable_evaluation_to_proto(
                    evaluation_id=stored.id,
                    create_time=stored.created_at,
                    scorecard_id=result.scorecard_id,
                    version=result.version,
                    digest=result.digest,
                    subject_kind=result.subject.kind.value,
                    subject_id=result.subject.id,
                    as_of=result.as_of,
                    grade=result.grade.code,
                    score=None if result.score is None else str(result.score),
                    request_id=stored.request_id,
                    caller=stored.caller,
                    why="its stored result cannot be shown by this version of the service",
                )
        return convert.unreadable_evaluation_to_proto(
            evaluation_id=stored.id,
            create_time=stored.created_at,
            scorecard_id=stored.scorecard_id,
            version=stored.scorecard_version,
            digest=stored.scorecard_digest,
            subject_kind=stored.subject_kind,
            subject_id=stored.subject_id,
            as_of=stored.as_of,
            grade=stored.grade,
            score=stored.score,
            request_id=stored.request_id,
            caller=stored.caller,
            why=stored.why,
        )


def _as_read(message: Any, see_ids: bool) -> Any:
    """A stored evaluation as this caller may read it: a person's id and name masked unless
    its reader grant has `see_ids` (security.may_see_ids). The query audit and the store's
    filters keep the whole id: a caller still looks a subject up by the id it knows."""
    return message if see_ids else convert.mask_subject(message)


def _subject_and_scorecard(stored: StoredEvaluation | UnreadableEvaluation) -> tuple[str, str]:
    if isinstance(stored, StoredEvaluation):
        return stored.result.subject.id, stored.result.scorecard_id
    return stored.subject_id, stored.scorecard_id


def _context() -> RequestContext:
    """The call's request context (opened by the first interceptor); a detached one for a
    handler called without the interceptors."""
    return request_context.current() or RequestContext("", "")


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
    raise errors.BadRequest(
        "page_token is not a token this service issued",
        violations=[FieldViolation(field, "not a token from a previous ListScorecards call")],
    )


def _pass_bytes(serialize: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """A response serializer that sends bytes as they are (replies the servicer assembled,
    convert.evaluation_bytes) and serializes messages."""

    def serializer(response: Any) -> bytes:
        return response if type(response) is bytes else serialize(response)

    return serializer


def add_to_server(servicer: CreditEvaluationServicer, server: grpc.aio.Server) -> None:
    """Register the service as the generated `add_CreditEvaluationServiceServicer_to_server`
    does, from the service's descriptor, with response serializers that let Evaluate,
    BatchEvaluate and StreamEvaluate answer with bytes assembled from cached fragments
    instead of messages built per item (docs/benchmarks.md)."""
    service = pb.DESCRIPTOR.services_by_name["CreditEvaluationService"]
    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    handlers = {}
    for method in service.methods:
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        make = kinds[method.client_streaming, method.server_streaming]
        handlers[method.name] = make(
            getattr(servicer, method.name),
            request_deserializer=request_type.FromString,
            response_serializer=_pass_bytes(response_type.SerializeToString),
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)
