"""Limits checked on request bytes before they are parsed into messages.

Parsing is the one cost a caller imposes before any of our code runs: an EvaluateRequest with
700,000 indicator map entries (10 MB, well inside the message limit) takes protobuf many
seconds to turn into a map. So, for the evaluation methods, the bytes are first read as a
*skeleton*: the same field numbers, with each indicator entry kept as opaque bytes (a C-level
copy, about 60 ms for those 700,000). An item with more than `limits.MAX_INDICATORS` entries
refuses the call there, naming the field, and the real parse never happens. A request of
ordinary size pays under a microsecond for the skeleton.

The skeleton types are built from the real descriptors' field numbers at import, in a
private descriptor pool, so they cannot drift from the API.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from sector_credit.scorecards import limits
from sector_credit.scorecards.model import FieldViolation
from sector_credit.v1 import credit_evaluation_service_pb2 as pb

_SERVICE = "/sector_credit.v1.CreditEvaluationService/"
_F = descriptor_pb2.FieldDescriptorProto


def _skeletons() -> dict[str, Any]:  # classes made at run time: no fields for a type checker
    number = {
        "indicators": pb.EvaluateRequest.DESCRIPTOR.fields_by_name["indicators"].number,
        "requests": pb.BatchEvaluateRequest.DESCRIPTOR.fields_by_name["requests"].number,
        "request": pb.StreamEvaluateRequest.DESCRIPTOR.fields_by_name["request"].number,
    }
    fd = descriptor_pb2.FileDescriptorProto(
        name="sector_credit_internal/skeleton.proto",
        package="sector_credit_internal",
        syntax="proto3",
    )
    item = fd.message_type.add(name="Item")
    item.field.add(
        name="indicators", number=number["indicators"], type=_F.TYPE_BYTES, label=_F.LABEL_REPEATED
    )
    batch = fd.message_type.add(name="Batch")
    batch.field.add(
        name="requests",
        number=number["requests"],
        type=_F.TYPE_MESSAGE,
        type_name=".sector_credit_internal.Item",
        label=_F.LABEL_REPEATED,
    )
    stream = fd.message_type.add(name="Stream")
    stream.field.add(
        name="request",
        number=number["request"],
        type=_F.TYPE_MESSAGE,
        type_name=".sector_credit_internal.Item",
        label=_F.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"sector_credit_internal.{name}")
        )
        for name in ("Item", "Batch", "Stream")
    }


_SKELETON = _skeletons()


def _too_many(field: str, n: int) -> FieldViolation:
    return FieldViolation(field, f"{n} indicators; a request has at most {limits.MAX_INDICATORS}")


def _evaluate(data: bytes) -> FieldViolation | None:
    n = len(_SKELETON["Item"].FromString(data).indicators)
    return _too_many("indicators", n) if n > limits.MAX_INDICATORS else None


def _batch(data: bytes) -> FieldViolation | None:
    for i, item in enumerate(_SKELETON["Batch"].FromString(data).requests):
        if len(item.indicators) > limits.MAX_INDICATORS:
            return _too_many(f"requests[{i}].indicators", len(item.indicators))
    return None


def _stream(data: bytes) -> FieldViolation | None:
    n = len(_SKELETON["Stream"].FromString(data).request.indicators)
    return _too_many("request.indicators", n) if n > limits.MAX_INDICATORS else None


_CHECKS: dict[str, Callable[[bytes], FieldViolation | None]] = {
    _SERVICE + "Evaluate": _evaluate,
    _SERVICE + "BatchEvaluate": _batch,
    _SERVICE + "StreamEvaluate": _stream,
}


def precheck(method: str) -> Callable[[bytes], FieldViolation | None] | None:
    """The check of a method's request bytes (None: the method has none). The check gives the
    violation that refuses the request, or None; DecodeError for bytes that do not parse."""
    return _CHECKS.get(method)


__all__ = ["DecodeError", "precheck"]
