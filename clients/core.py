"""What the sync client (client.py) and the asyncio client (aio.py) share, with no I/O: resource
names, the views of a reply, the scorecard cache, the building of requests and the reading of
replies (`ClientCore`), and the chunking of batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import grpc
from sector_credit.v1 import access_log_service_pb2 as access_pb
from sector_credit.v1 import (
    credit_evaluation_service_pb2 as pb,
)

from .channel import (
    Deadlines,
    RetryPolicy,
    caller_metadata,
    channel_options,
    credentials_for,
    token_metadata,
)
from .errors import CreditError, error_from_item
from .inputs import EvaluationItem, date_value, evaluate_request
from .resources import (
    AccessRecord,
    AccessRecordPage,
    Evaluation,
    Scorecard,
    SubjectAccess,
    SubjectAccessPage,
)

ItemResult = Evaluation | CreditError
"""The outcome of one batch or stream item: its evaluation, or the error that refused it
(returned, not raised: one bad item does not fail the rest)."""

DEFAULT_CHUNK = 500  # items per BatchEvaluate call; the server takes up to 1,000 by default
SCORECARDS = "scorecards/"
EVALUATIONS = "evaluations/"
# the views of an evaluation reply (AIP-157): "basic" leaves out the lines, "full" has them;
# the stored evaluation is the full one either way (get_evaluation returns it)
VIEWS = {"full": pb.EVALUATION_VIEW_FULL, "basic": pb.EVALUATION_VIEW_BASIC}


def scorecard_name(scorecard: str) -> str:
    return scorecard if scorecard.startswith(SCORECARDS) else SCORECARDS + scorecard


def scorecard_id(scorecard: str) -> str:
    return scorecard.removeprefix(SCORECARDS)


def evaluation_name(name_or_id: str) -> str:
    return name_or_id if name_or_id.startswith(EVALUATIONS) else EVALUATIONS + name_or_id


class ClientCore:
    """What the sync and asyncio clients share: settings, metadata, the scorecard cache and
    the building of requests (no I/O here)."""

    def __init__(
        self,
        target: str,
        *,
        secure: bool | grpc.ChannelCredentials,
        caller: str | None,
        deadlines: Deadlines,
        retry: RetryPolicy | None,
        options: Sequence[tuple[str, Any]],
        metadata: Sequence[tuple[str, str]],
        purpose: str | None = None,
        purpose_note: str | None = None,
        token: str | None = None,
    ):
        self.target = target
        self.caller = caller
        self.purpose = purpose  # the default purpose of reads (GetEvaluation, ListEvaluations)
        self.purpose_note = purpose_note
        self.deadlines = deadlines
        self.retry = retry
        self.options = channel_options(retry, options)
        self.credentials = credentials_for(secure)
        self.metadata: tuple[tuple[str, str], ...] = (
            caller_metadata(caller) + token_metadata(token) + tuple(metadata)
        )
        self._cards: dict[tuple[str, str], Scorecard] = {}

    def _cached_card(self, scorecard: str, version: str) -> Scorecard | None:
        return self._cards.get((scorecard_id(scorecard), version))

    def _remember(self, scorecard: str, version: str, card: Scorecard) -> Scorecard:
        self._cards[(scorecard_id(scorecard), version)] = card
        return card

    @staticmethod
    def _get_scorecard_request(
        scorecard: str, version: str | None, as_of: dt.date | str | None, full: bool
    ) -> pb.GetScorecardRequest:
        request = pb.GetScorecardRequest(
            name=scorecard_name(scorecard),
            version=version or "",
            view=pb.SCORECARD_VIEW_FULL if full else pb.SCORECARD_VIEW_BASIC,
        )
        if as_of is not None:
            d = date_value(as_of)
            request.as_of.year, request.as_of.month, request.as_of.day = d.year, d.month, d.day
        return request

    @staticmethod
    def _item_request(
        card: Scorecard,
        scorecard: str,
        item: EvaluationItem,
        kind: str | None,
        version: str | None,
        validate_only: bool = False,
        view: str | None = None,
    ) -> pb.EvaluateRequest:
        request = evaluate_request(
            card,
            scorecard_id(scorecard),
            item,
            kind=kind,
            version=version or "",
            validate_only=validate_only,
        )
        if view is not None:
            request.view = view_value(view)
        return request

    def _purpose(self, purpose: str | None, note: str | None) -> dict[str, str]:
        """The purpose fields of a read: the call's, else the client's default; the server
        refuses a read without one (INVALID_ARGUMENT naming `purpose`)."""
        return {
            "purpose": purpose or self.purpose or "",
            "purpose_note": note if note is not None else self.purpose_note or "",
        }

    def _get_evaluation_request(
        self, name: str, purpose: str | None, note: str | None
    ) -> pb.GetEvaluationRequest:
        return pb.GetEvaluationRequest(name=evaluation_name(name), **self._purpose(purpose, note))

    @classmethod
    def _explore_request(
        cls,
        card: Scorecard,
        scorecard: str,
        item: EvaluationItem,
        kind: str | None,
        version: str | None,
    ) -> pb.ExploreEvaluationRequest:
        evaluation = cls._item_request(card, scorecard, item, kind, version)
        evaluation.request_id = ""  # a what-if is never stored
        return pb.ExploreEvaluationRequest(evaluation=evaluation)

    def _list_evaluations_request(
        self,
        subject_id: str | None,
        scorecard: str | None,
        page_size: int,
        page_token: str,
        purpose: str | None = None,
        note: str | None = None,
    ) -> pb.ListEvaluationsRequest:
        return pb.ListEvaluationsRequest(
            subject_id=subject_id or "",
            scorecard=scorecard_id(scorecard) if scorecard else "",
            page_size=page_size,
            page_token=page_token,
            **self._purpose(purpose, note),
        )

    @staticmethod
    def _list_access_records_request(
        subject_id: str | None,
        caller: str | None,
        start_time: dt.datetime | None,
        end_time: dt.datetime | None,
        page_size: int,
        page_token: str,
    ) -> access_pb.ListAccessRecordsRequest:
        request = access_pb.ListAccessRecordsRequest(
            subject_id=subject_id or "",
            caller=caller or "",
            page_size=page_size,
            page_token=page_token,
        )
        if start_time is not None:
            request.start_time.FromDatetime(start_time)
        if end_time is not None:
            request.end_time.FromDatetime(end_time)
        return request

    @staticmethod
    def _access_page(response: access_pb.ListAccessRecordsResponse) -> AccessRecordPage:
        return AccessRecordPage(
            tuple(AccessRecord.from_proto(r) for r in response.access_records),
            response.next_page_token,
        )

    @staticmethod
    def _subject_page(response: access_pb.ListSubjectAccessesResponse) -> SubjectAccessPage:
        return SubjectAccessPage(
            tuple(SubjectAccess.from_proto(a) for a in response.accesses), response.next_page_token
        )

    @staticmethod
    def _batch_results(response: pb.BatchEvaluateResponse) -> list[ItemResult]:
        return [
            Evaluation.from_proto(r.evaluation)
            if r.HasField("evaluation")
            else error_from_item(r.error, f"requests[{i}].")
            for i, r in enumerate(response.results)
        ]

    @staticmethod
    def _stream_result(response: pb.StreamEvaluateResponse) -> tuple[int, ItemResult]:
        index = int(response.correlation_id)
        if response.HasField("evaluation"):
            return index, Evaluation.from_proto(response.evaluation)
        return index, error_from_item(response.error, "request.")


def view_value(view: str) -> pb.EvaluationView.ValueType:
    """The EvaluationView of "basic" or "full"; ValueError for anything else."""
    try:
        return VIEWS[view]
    except KeyError:
        raise ValueError(f"view is 'basic' or 'full', not {view!r}") from None


def chunks(items: Iterable[EvaluationItem], size: int) -> Iterator[list[EvaluationItem]]:
    if size < 1:
        raise ValueError("chunk_size must be at least 1")
    chunk: list[EvaluationItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
