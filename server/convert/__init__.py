"""The one place that converts between proto messages (the wire) and domain types (the engine).

Wire conventions (see protos/sector_credit/v1/common.proto):
- Decimals travel as strings in plain notation (`"74.70"`, `"-20"`); an empty string is "none".
- A `Date` whose fields are all zero is "no date"; an `IndicatorValue` with no case set is the
  same as leaving the indicator out.

Callers import the names below from `sector_credit.server.convert`; the modules, one per seam:
- `wire`: the vocabulary they share (collections, enum values, views, filling small messages);
- `requests`: requests -> domain (`evaluation_input_from_proto`, resource names, text checks);
- `fragments` and `replies`: the hot path. The reply to every evaluation is assembled as
  bytes (`evaluation_bytes`) from fragments encoded once per scorecard, and
  `evaluation_to_proto` parses those bytes where a message is needed (reads, the what-if);
- `messages`: messages built field by field (masked and unreadable evaluations, item errors,
  the what-if's reply);
- `scorecards`: the Scorecard resource.
"""

from .messages import (
    field_violations_to_proto,
    item_error_to_proto,
    mask_subject,
    unreadable_evaluation_to_proto,
    whatif_to_proto,
)
from .replies import (
    acknowledgement_bytes,
    batch_result_bytes,
    evaluate_response_bytes,
    evaluation_bytes,
    evaluation_to_proto,
    stream_response_bytes,
)
from .requests import (
    MAX_DECIMAL_EXPONENT,
    check_texts,
    date_from_proto,
    evaluation_id_from_name,
    evaluation_input_from_proto,
    evaluation_name,
    indicator_value_from_proto,
    request_date,
    scorecard_id_from_name,
)
from .scorecards import scorecard_to_proto
from .wire import (
    EVALUATION_COLLECTION,
    SCORECARD_COLLECTION,
    VIEW_PROBLEM,
    date_to_proto,
    fill_provenance,
    full_view,
    indicator_value_to_proto,
    view_problem,
)

__all__ = [
    "EVALUATION_COLLECTION",
    "MAX_DECIMAL_EXPONENT",
    "SCORECARD_COLLECTION",
    "VIEW_PROBLEM",
    "acknowledgement_bytes",
    "batch_result_bytes",
    "check_texts",
    "date_from_proto",
    "date_to_proto",
    "evaluate_response_bytes",
    "evaluation_bytes",
    "evaluation_id_from_name",
    "evaluation_input_from_proto",
    "evaluation_name",
    "evaluation_to_proto",
    "field_violations_to_proto",
    "fill_provenance",
    "full_view",
    "indicator_value_from_proto",
    "indicator_value_to_proto",
    "item_error_to_proto",
    "mask_subject",
    "request_date",
    "scorecard_id_from_name",
    "scorecard_to_proto",
    "stream_response_bytes",
    "unreadable_evaluation_to_proto",
    "view_problem",
    "whatif_to_proto",
]
