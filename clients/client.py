"""The synchronous client. `AsyncCreditClient` (aio.py) has the same methods, awaited.

    from sector_credit.clients import CreditClient

    with CreditClient("127.0.0.1:50051", caller="transport-bureau") as client:
        result = client.evaluate("transport.taxi_driver", "11010519491231002X",
                                 {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": 2})
        print(result.grade.code, result.score, result.points_to_next_grade)  # AA 14.00 6.00

Every call has a default deadline (`Deadlines`), is retried on UNAVAILABLE by the channel's
service config (`RetryPolicy`), and raises a `CreditError` subclass carrying the server's
reason and field violations. `evaluate` looks the scorecard up once (GetScorecard, cached) to
learn the subject kind and each indicator's type.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Self, TypeVar

import grpc
from google.protobuf import json_format
from sector_credit.v1 import access_log_service_pb2 as access_pb
from sector_credit.v1 import access_log_service_pb2_grpc as access_pb_grpc
from sector_credit.v1 import api_key_service_pb2 as kpb
from sector_credit.v1 import api_key_service_pb2_grpc as kpb_grpc
from sector_credit.v1 import (
    credit_evaluation_service_pb2 as pb,
)
from sector_credit.v1 import (
    credit_evaluation_service_pb2_grpc as pb_grpc,
)

from .channel import (
    DEFAULT_DEADLINES,
    DEFAULT_RETRY,
    DEFAULT_TARGET,
    Deadlines,
    RetryPolicy,
)
from .core import (
    DEFAULT_CHUNK,
    ClientCore,
    ItemResult,
    chunks,
    evaluation_name,
    view_value,
)
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


class CreditClient(ClientCore):
    """A blocking client over one channel; thread-safe, close it (or use `with`) when done.

    `secure`: False (plaintext), True (TLS with the system's roots) or ChannelCredentials
    (`channel.tls_credentials(ca, cert, key)` for a private CA and mutual TLS).
    `token`: an API key or JWT, sent as `authorization: Bearer <token>`. `caller`: a label
    sent as `x-caller`; the server records who the credentials prove, not this.
    `purpose`, `purpose_note`: the default purpose of reads of evaluations (a purpose code of
    the server, e.g. `bid_review`); without one the server refuses reads.
    `channel`: an existing channel to use instead of building one.
    """

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
        channel: grpc.Channel | None = None,
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
                channel = grpc.insecure_channel(target, options=self.options)
            else:
                channel = grpc.secure_channel(target, self.credentials, options=self.options)
        self.channel = channel
        self._stub = pb_grpc.CreditEvaluationServiceStub(channel)
        self._access = access_pb_grpc.AccessLogServiceStub(channel)
        self._keys = kpb_grpc.ApiKeyServiceStub(channel)
        self._lock = threading.Lock()

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Callable[..., R], request: Any, timeout: float | None) -> R:
        try:
            return method(request, timeout=timeout, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    # -- API keys (admin) ----------------------------------------------------------------

    def create_api_key(
        self,
        caller: str,
        *,
        description: str = "",
        expire_time: dt.datetime | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Issue a key for `caller` (admin role); the result's `token` is the only copy."""
        request = kpb.CreateApiKeyRequest(caller=caller, description=description)
        if expire_time is not None:
            request.expire_time.FromDatetime(expire_time)
        reply = self._call(self._keys.CreateApiKey, request, timeout or self.deadlines.unary)
        return {**_message_dict(reply.api_key), "token": reply.token}

    def list_api_keys(self, *, timeout: float | None = None) -> list[dict[str, Any]]:
        reply = self._call(
            self._keys.ListApiKeys, kpb.ListApiKeysRequest(), timeout or self.deadlines.unary
        )
        return [_message_dict(k) for k in reply.api_keys]

    def revoke_api_key(self, name: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Revoke `apiKeys/{key_id}` (or the bare key id) at once."""
        reply = self._call(
            self._keys.RevokeApiKey,
            kpb.RevokeApiKeyRequest(name=name),
            timeout or self.deadlines.unary,
        )
        return _message_dict(reply.api_key)

    # -- scorecards ----------------------------------------------------------------------

    def list_scorecards(
        self, *, full: bool = False, all_versions: bool = False, timeout: float | None = None
    ) -> list[Scorecard]:
        """Every scorecard, in the version in force today (all pages); with `all_versions`,
        every loaded version of each, newest effective_from first within an id."""
        cards: list[Scorecard] = []
        token = ""
        while True:
            response = self._call(
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

    def get_scorecard(
        self,
        scorecard: str,
        *,
        version: str | None = None,
        as_of: dt.date | str | None = None,
        full: bool = True,
        timeout: float | None = None,
    ) -> Scorecard:
        """A scorecard's definition: by id or name, the version given or in force on as_of."""
        request = self._get_scorecard_request(scorecard, version, as_of, full)
        response = self._call(self._stub.GetScorecard, request, timeout or self.deadlines.unary)
        card = Scorecard.from_proto(response.scorecard)
        if full and as_of is None:
            self._remember(scorecard, version or "", card)
        return card

    def definition(self, scorecard: str, version: str | None = None) -> Scorecard:
        """The scorecard's full definition, fetched once per client and cached."""
        card = self._cached_card(scorecard, version or "")
        if card is None:
            with self._lock:
                card = self._cached_card(scorecard, version or "")
                if card is None:
                    card = self.get_scorecard(scorecard, version=version)
        return card

    def _definition_to_evaluate(self, scorecard: str, version: str | None) -> Scorecard:
        """`definition`, for an evaluation: a scorecard it does not find is the evaluation's
        `scorecard` field at fault (GetScorecard calls it `name`), as the server would say."""
        try:
            return self.definition(scorecard, version)
        except CreditError as exc:
            raise as_evaluation_error(exc) from None

    # -- evaluations ---------------------------------------------------------------------

    def evaluate(
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
        """Evaluate one subject. `kind` (person/organization) defaults to the scorecard's;
        `request_id` None sends a fresh one (so the channel's retries cannot score twice);
        a repeated `request_id` returns the stored evaluation. `view="basic"`: the reply
        without its lines (the full one is stored; `get_evaluation` returns it)."""
        card = self._definition_to_evaluate(scorecard, version)
        item = EvaluationItem(subject_id, indicators or {}, as_of, request_id, display_name)
        request = self._item_request(card, scorecard, item, kind, version, validate_only, view)
        response = self._call(self._stub.Evaluate, request, timeout or self.deadlines.unary)
        return Evaluation.from_proto(response.evaluation)

    def batch_evaluate_chunk(
        self,
        scorecard: str,
        items: Sequence[EvaluationItem],
        *,
        kind: str | None = None,
        version: str | None = None,
        view: str = "full",
        timeout: float | None = None,
    ) -> list[ItemResult]:
        """One BatchEvaluate call for `items` (at most the server's batch limit): one result
        per item, in order. An item the server (or the client, before sending) refuses gets
        its CreditError in its place; a failed call raises. `view` as for `evaluate`."""
        card = self._definition_to_evaluate(scorecard, version)
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
        response = self._call(self._stub.BatchEvaluate, request, timeout or self.deadlines.batch)
        answered = iter(self._batch_results(response))
        return [slot if slot is not None else next(answered) for slot in slots]

    def batch_evaluate(
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
        """Evaluate many subjects with BatchEvaluate calls of `chunk_size` items: one result
        per item, in order (see `batch_evaluate_chunk`)."""
        results: list[ItemResult] = []
        for chunk in chunks(items, chunk_size):
            results.extend(
                self.batch_evaluate_chunk(
                    scorecard, chunk, kind=kind, version=version, view=view, timeout=timeout
                )
            )
        return results

    def stream_evaluate(
        self,
        scorecard: str,
        items: Iterable[EvaluationItem],
        *,
        kind: str | None = None,
        version: str | None = None,
        view: str = "full",
        timeout: float | None = None,
    ) -> Iterator[tuple[int, ItemResult]]:
        """Evaluate items over one StreamEvaluate call; yields (index of the item, result) as
        results arrive, possibly out of order. The server's flow control paces the input.
        `view` as for `evaluate`."""
        card = self._definition_to_evaluate(scorecard, version)
        refused: collections.deque[tuple[int, ItemResult]] = collections.deque()
        view_value(view)  # an unknown view fails here, not inside the request iterator

        def requests() -> Iterator[pb.StreamEvaluateRequest]:
            for index, item in enumerate(items):
                try:
                    request = self._item_request(card, scorecard, item, kind, version, view=view)
                except CreditError as exc:
                    refused.append((index, exc))
                    continue
                yield pb.StreamEvaluateRequest(correlation_id=str(index), request=request)

        call = self._stub.StreamEvaluate(
            requests(), timeout=timeout or self.deadlines.stream, metadata=self.metadata
        )
        try:
            for response in call:
                while refused:
                    yield refused.popleft()
                yield self._stream_result(response)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
        finally:
            call.cancel()
        while refused:
            yield refused.popleft()

    def explore(
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
        card = self._definition_to_evaluate(scorecard, version)
        request = self._explore_request(
            card,
            scorecard,
            EvaluationItem(subject_id, indicators or {}, as_of, "", display_name),
            kind,
            version,
        )
        return Exploration.from_proto(
            self._call(self._stub.ExploreEvaluation, request, timeout or self.deadlines.unary)
        )

    def explore_evaluation(
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
            self._call(self._stub.ExploreEvaluation, request, timeout or self.deadlines.unary)
        )

    def get_evaluation(
        self,
        name: str,
        *,
        purpose: str | None = None,
        purpose_note: str | None = None,
        timeout: float | None = None,
    ) -> Evaluation:
        """A stored evaluation by name (`evaluations/{id}`) or id, read for `purpose` (or the
        client's default purpose)."""
        response = self._call(
            self._stub.GetEvaluation,
            self._get_evaluation_request(name, purpose, purpose_note),
            timeout or self.deadlines.unary,
        )
        return Evaluation.from_proto(response.evaluation)

    def list_evaluations(
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
        """One page of stored evaluations, newest first (page_size 0: the server's default),
        read for `purpose` (or the client's default purpose)."""
        request = self._list_evaluations_request(
            subject_id, scorecard, page_size, page_token, purpose, purpose_note
        )
        response = self._call(self._stub.ListEvaluations, request, timeout or self.deadlines.unary)
        return EvaluationPage(
            tuple(Evaluation.from_proto(e) for e in response.evaluations), response.next_page_token
        )

    def iter_evaluations(
        self,
        *,
        subject_id: str | None = None,
        scorecard: str | None = None,
        page_size: int = 0,
        purpose: str | None = None,
        purpose_note: str | None = None,
    ) -> Iterator[Evaluation]:
        """Every matching evaluation, newest first, fetching pages as it goes."""
        token = ""
        while True:
            page = self.list_evaluations(
                subject_id=subject_id,
                scorecard=scorecard,
                page_size=page_size,
                page_token=token,
                purpose=purpose,
                purpose_note=purpose_note,
            )
            yield from page.evaluations
            token = page.next_page_token
            if not token:
                return

    # -- the query audit -----------------------------------------------------------------

    def list_access_records(
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
        """One page of the query audit, newest first, filtered by subject, caller and the
        time range [start_time, end_time) (aware datetimes)."""
        request = self._list_access_records_request(
            subject_id, caller, start_time, end_time, page_size, page_token
        )
        return self._access_page(
            self._call(self._access.ListAccessRecords, request, timeout or self.deadlines.unary)
        )

    def iter_access_records(self, **filters: Any) -> Iterator[AccessRecord]:
        """Every matching access record, newest first (filters as `list_access_records`)."""
        token = ""
        while True:
            page = self.list_access_records(page_token=token, **filters)
            yield from page.access_records
            token = page.next_page_token
            if not token:
                return

    def list_subject_accesses(
        self,
        subject_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
    ) -> SubjectAccessPage:
        """Who looked at one subject: callers, purposes and dates, newest first."""
        request = access_pb.ListSubjectAccessesRequest(
            subject_id=subject_id, page_size=page_size, page_token=page_token
        )
        return self._subject_page(
            self._call(self._access.ListSubjectAccesses, request, timeout or self.deadlines.unary)
        )


def _message_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
