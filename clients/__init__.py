"""What integrators use: the Python client (sync and asyncio) and the `credit` CLI.

    from sector_credit.clients import CreditClient, InvalidRequestError

    with CreditClient("127.0.0.1:50051", caller="transport-bureau") as client:
        try:
            result = client.evaluate("transport.taxi_driver", "11010519491231002X",
                                     {"violations_3pt": 1, "bonus_points": 2})
        except InvalidRequestError as exc:
            for v in exc.violations:
                print(v.field, v.description)

This package imports the wire types (`sector_credit.v1`) and the pure domain helpers
(`sector_credit.scorecards`), never the server.
"""

from .aio import AsyncCreditClient
from .channel import Deadlines, RetryPolicy, channel_options, service_config
from .client import CreditClient
from .core import ItemResult
from .errors import (
    CreditError,
    InvalidRequestError,
    NotFoundError,
    ResourceExhaustedError,
    UnavailableError,
)
from .inputs import EvaluationItem
from .resources import (
    AccessRecord,
    AccessRecordPage,
    AppliedMeasure,
    ChangeProposal,
    Evaluation,
    EvaluationPage,
    Exploration,
    FieldViolation,
    FiredOverride,
    Grade,
    GradeTarget,
    Indicator,
    IndicatorChange,
    Line,
    Measure,
    OverrideEnd,
    Reason,
    RecordEvidence,
    Scorecard,
    SubjectAccess,
    SubjectAccessPage,
    Title,
)

__all__ = [
    "AccessRecord",
    "AccessRecordPage",
    "AppliedMeasure",
    "AsyncCreditClient",
    "ChangeProposal",
    "CreditClient",
    "CreditError",
    "Deadlines",
    "Evaluation",
    "EvaluationItem",
    "EvaluationPage",
    "Exploration",
    "FieldViolation",
    "FiredOverride",
    "RecordEvidence",
    "Grade",
    "GradeTarget",
    "Indicator",
    "IndicatorChange",
    "InvalidRequestError",
    "ItemResult",
    "Line",
    "Measure",
    "NotFoundError",
    "OverrideEnd",
    "Reason",
    "ResourceExhaustedError",
    "RetryPolicy",
    "Scorecard",
    "SubjectAccess",
    "SubjectAccessPage",
    "Title",
    "UnavailableError",
    "channel_options",
    "service_config",
]
