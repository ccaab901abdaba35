"""The asyncio client: `CreditClient`'s methods, awaited, over a `grpc.aio` channel.

    async with AsyncCreditClient("127.0.0.1:50051", caller="procurement-review") as client:
        result = await client.evaluate("procurement.supplier", "91350100M000100Y43", {})
        async for index, outcome in client.stream_evaluate("transport.taxi_driver", items):
            ...

Create it inside the event loop that uses it (grpc.aio channels belong to one loop).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Self, TypeVar

import grpc
from sector_credit.v1 import access_log_service_pb2 as access_pb
from sector_credit.v1 import access_log_service_pb2_grpc as access_pb_grpc
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc

from .channel import DEFAULT_DEADLINES, DEFAULT_RETRY, DEFAULT_TARGET, Deadlines, RetryPolicy
from .core import DEFAULT_CHUNK, ClientCore, ItemResult, chunks, evaluation_name, view_value
from .errors import CreditError, as_evaluation_error, error_from_rpc
from .inputs import EvaluationItem
from .resources import (
    AccessRecord,
    AccessRecordPage,
    Evaluation,
    EvaluationPage,
    Exploration,
    Scorecard,
    SubjectAccessPage,
)

R = TypeVar("R")


class AsyncCreditClient(ClientCore):
    """An asyncio client over one `grpc.aio` channel; `await client.close()` (or use
    `async with`) when done. Arguments as for `CreditClient`."""

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        secure: bool | grpc.ChannelCredentials = False,
        caller: str | None = None,
        deadlines: Deadlines = DEFAULT_DEADLINES,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        options: Sequence[tuple[str, Any]] = (),
        metadata: Sequence[tuple[str, str]] = (),
        channel: grpc.aio.Channel | None = None,
        purpose: str | None = None,
        purpose_note: str | None = None,
        token: str | None = None,
    ):
        super().__init__(
            target,
            secure=secure,
            caller=caller,
            deadlines=deadlines,
            retry=retry,
            options=options,
            metadata=metadata,
            purpose=purpose,
            purpose_note=purpose_note,
            token=token,
        )
        if channel is None:
            if self.credentials is None:
                channel = grpc.aio.insecure_channel(target, options=self.options)
            else:
                channel = grpc.aio.secure_channel(target, self.credentials, options=self.options)
        self.channel = channel
        self._stub = pb_grpc.CreditEvaluationServiceStub(channel)
        self._access = access_pb_grpc.AccessLogServiceStub(channel)
        self._fetching: dict[tuple[str, str], asyncio.Task[Scorecard]] = {}

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(
        self, method: Callable[..., Awaitable[R]], request: Any, timeout: float | None
    ) -> R:
        try:
            return await method(request, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    # -- scorecards ----------------------------------------------------------------------

    async def list_scorecards(
        self, *, full: bool = False, all_versions: bool = False, timeout: float | None = None
    ) -> list[Scorecard]:
        cards: list[Scorecard] = []
        token = ""
        while True:
            response = await self._call(
                self._stub.ListScorecards,
                pb.ListScorecardsRequest(
                    page_token=token,
                    view=pb.SCORECARD_VIEW_FULL if full else pb.SCORECARD_VIEW_BASIC,
                    all_versions=all_versions,
                ),
                timeout or self.deadlines.unary,
            )
            cards.extend(Scorecard.from_proto(c) for c in response.scorecards)
            token = response.next_page_token
            if not token:
                return cards

    async def get_scorecard(
        self,
        scorecard: str,
        *,
        version: str | None = None,
        as_of: dt.date | str | None = None,
        full: bool = True,
        timeout: float | None = None,
    ) -> Scorecard:
        request = self._get_scorecard_request(scorecard, version, as_of, full)
        response = await self._call(
            self._stub.GetScorecard, request, timeout or self.deadlines.unary
        )
        card = Scorecard.from_proto(response.scorecard)
        if full and as_of is None:
            self._remember(scorecard, version or "", card)
        return card

    async def definition(self, scorecard: str, version: str | None = None) -> Scorecard:
        """The scorecard's full definition, fetched once per client and cached."""
        card = self._cached_card(scorecard, version or "")
        if card is not None:
            return card
        key = (scorecard, version or "")
        task = self._fetching.get(key)
        if task is None:  # concurrent first calls share one GetScorecard
            task = asyncio.ensure_future(self.get_scorecard(scorecard, version=version))
            self._fetching[key] = task
            task.add_done_callback(lambda _: self._fetching.pop(key, None))
        return await asyncio.shield(task)

    async def _definition_to_evaluate(self, scorecard: str, version: str | None) -> Scorecard:
        """`definition`, for an evaluation (see CreditClient._definition_to_evaluate)."""
        try:
            return await self.definition(scorecard, version)
        except CreditError as exc:
            raise as_evaluation_error(exc) from None

    # -- evaluations ---------------------------------------------------------------------

    async def evaluate(
        self,
        scorecard: str,
        subject_id: str,
        indicators: Mapping[str, object] | None = None,
        *,
        kind: str | None = None,
        as_of: dt.date | str | None = None,
        request_id: str | None = None,
        display_name: str = "",
        version: str | None = None,
        validate_only: bool = False,
        view: str = "full",
        timeout: float | None = None,
    ) -> Evaluation:
        """As `CreditClient.evaluate`."""
        card = await self._definition_to_evaluate(scorecard, version)
        item = EvaluationItem(subject_id, indicators or {}, as_of, request_id, display_name)
        request = self._item_request(card, scorecard, item, kind, version, validate_only, view)
        response = await self._call(self._stub.Evaluate, request, timeout or self.deadlines.unary)
        return Evaluation.from_proto(response.evaluation)

    async def batch_evaluate_chunk(
        self,
        scorecard: str,
        items: Sequence[EvaluationItem],
        *,
        kind: str | None = None,
        version: str | None = None,
        view: str = "full",
        timeout: float | None = None,
    ) -> list[ItemResult]:
        """One BatchEvaluate call for `items` (at most the server's batch limit)."""
        card = await self._definition_to_evaluate(scorecard, version)
        slots: list[ItemResult | None] = []
        request = pb.BatchEvaluateRequest(view=view_value(view))
        for item in items:
            try:
                request.requests.append(self._item_request(card, scorecard, item, kind, version))
                slots.append(None)
            except CreditError as exc:
                slots.append(exc)
        if not request.requests:
            return [s for s in slots if s is not None]
        response = await self._call(
            self._stub.BatchEvaluate, request, timeout or self.deadlines.batch
        )
        answered = iter(self._batch_results(response))
        return [slot if slot is not None else next(answered) for slot in slots]

    async def batch_evaluate(
        self,
        scorecard: str,
        items: Iterable[EvaluationItem],
        *,
        kind: str | None = None,
        version: str | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        view: str = "full",
        timeout: float | None = None,
    ) -> list[ItemResult]:
        """As `CreditClient.batch_evaluate`: one result per item, in order."""
        results: list[ItemResult] = []
        for chunk in chunks(items, chunk_size):
            results.extend(
                await self.batch_evaluate_chunk(
                    scorecard, chunk, kind=kind, version=version, view=view, timeout=timeout
                )
            )
        return results

    async def stream_evaluate(
        self,
        scorecard: str,
        items: Iterable[EvaluationItem] | AsyncIterable[EvaluationItem],
        *,
        kind: str | None = None,
        version: str | None = None,
        view: str = "full",
        timeout: float | None = None,
    ) -> AsyncIterator[tuple[int, ItemResult]]:
        """Evaluate items over one StreamEvaluate call: an async iterator of (index of the
        item, result) as results arrive, possibly out of order."""
        card = await self._definition_to_evaluate(scorecard, version)
        refused: collections.deque[tuple[int, ItemResult]] = collections.deque()
        view_value(view)  # an unknown view fails here, not inside the request iterator

        async def requests() -> AsyncIterator[pb.StreamEvaluateRequest]:
            index = 0
            async for item in _aiter(items):
                try:
                    request = self._item_request(card, scorecard, item, kind, version, view=view)
                except CreditError as exc:
                    refused.append((index, exc))
                else:
                    yield pb.StreamEvaluateRequest(correlation_id=str(index), request=request)
                index += 1

        call = self._stub.StreamEvaluate(
            requests(), timeout=timeout or self.deadlines.stream, metadata=self.metadata
        )
        try:
            async for response in call:
                while refused:
                    yield refused.popleft()
                yield self._stream_result(response)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            call.cancel()
        while refused:
            yield refused.popleft()

    async def explore(
        self,
        scorecard: str,
        subject_id: str,
        indicators: Mapping[str, object] | None = None,
        *,
        kind: str | None = None,
        as_of: dt.date | str | None = None,
        display_name: str = "",
        version: str | None = None,
        timeout: float | None = None,
    ) -> Exploration:
        """What would change the grade of this input (docs/whatif.md); nothing is stored."""
        card = await self._definition_to_evaluate(scorecard, version)
        request = self._explore_request(
            card,
            scorecard,
            EvaluationItem(subject_id, indicators or {}, as_of, "", display_name),
            kind,
            version,
        )
        return Exploration.from_proto(
            await self._call(self._stub.ExploreEvaluation, request, timeout or self.deadlines.unary)
        )

    async def explore_evaluation(
        self,
        name: str,
        *,
        purpose: str | None = None,
        purpose_note: str | None = None,
        timeout: float | None = None,
    ) -> Exploration:
        """What would change the grade of a stored evaluation (by name or id), read for
        `purpose` (or the client's default purpose) like get_evaluation."""
        stated = self._purpose(purpose, purpose_note)
        request = pb.ExploreEvaluationRequest(
            name=evaluation_name(name),
            purpose=stated["purpose"],
            purpose_note=stated["purpose_note"],
        )
        return Exploration.from_proto(
            await self._call(self._stub.ExploreEvaluation, request, timeout or self.deadlines.unary)
        )

    async def get_evaluation(
        self,
        name: str,
        *,
        purpose: str | None = None,
        purpose_note: str | None = None,
        timeout: float | None = None,
    ) -> Evaluation:
        response = await self._call(
            self._stub.GetEvaluation,
            self._get_evaluation_request(name, purpose, purpose_note),
            timeout or self.deadlines.unary,
        )
        return Evaluation.from_proto(response.evaluation)

    async def list_evaluations(
        self,
        *,
        subject_id: str | None = None,
        scorecard: str | None = None,
        page_size: int = 0,
        page_token: str = "",
        purpose: str | None = None,
        purpose_note: str | None = None,
        timeout: float | None = None,
    ) -> EvaluationPage:
        request = self._list_evaluations_request(
            subject_id, scorecard, page_size, page_token, purpose, purpose_note
        )
        response = await self._call(
            self._stub.ListEvaluations, request, timeout or self.deadlines.unary
        )
        return EvaluationPage(
            tuple(Evaluation.from_proto(e) for e in response.evaluations), response.next_page_token
        )

    async def iter_evaluations(
        self,
        *,
        subject_id: str | None = None,
        scorecard: str | None = None,
        page_size: int = 0,
        purpose: str | None = None,
        purpose_note: str | None = None,
    ) -> AsyncIterator[Evaluation]:
        token = ""
        while True:
            page = await self.list_evaluations(
                subject_id=subject_id,
                scorecard=scorecard,
                page_size=page_size,
                page_token=token,
                purpose=purpose,
                purpose_note=purpose_note,
            )
            for evaluation in page.evaluations:
                yield evaluation
            token = page.next_page_token
            if not token:
                return

    # -- the query audit -----------------------------------------------------------------

    async def list_access_records(
        self,
        *,
        subject_id: str | None = None,
        caller: str | None = None,
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> AccessRecordPage:
        request = self._list_access_records_request(
            subject_id, caller, start_time, end_time, page_size, page_token
        )
        return self._access_page(
            await self._call(
                self._access.ListAccessRecords, request, timeout or self.deadlines.unary
            )
        )

    async def iter_access_records(self, **filters: Any) -> AsyncIterator[AccessRecord]:
        token = ""
        while True:
            page = await self.list_access_records(page_token=token, **filters)
            for record in page.access_records:
                yield record
            token = page.next_page_token
            if not token:
                return

    async def list_subject_accesses(
        self,
        subject_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> SubjectAccessPage:
        request = access_pb.ListSubjectAccessesRequest(
            subject_id=subject_id, page_size=page_size, page_token=page_token
        )
        return self._subject_page(
            await self._call(
                self._access.ListSubjectAccesses, request, timeout or self.deadlines.unary
            )
        )


async def _aiter(
    items: Iterable[EvaluationItem] | AsyncIterable[EvaluationItem],
) -> AsyncIterator[EvaluationItem]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
