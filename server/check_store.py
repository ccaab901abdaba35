"""`sector-credit-server check-store`: read every stored evaluation back and report each one
that does not round-trip.

For every row: its documents are read (`EvaluationStore.scan`, which gives an
`UnreadableEvaluation` for a row whose documents cannot be read), encoded again as the store
encodes them and read again (the same input and result must come back), and rendered as the
Evaluation message a reader would get, within the server's message size limit. One line per
row that fails (`evaluations/{id}: why`, no personal data), then a summary line. Exit code 0
when every row round-trips, 1 when any does not (EXIT_NOT_ROUND_TRIP).
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

from sector_credit.scorecards.codec import input_from_dict

from . import convert
from .db import EvaluationStore, StoredEvaluation, UnreadableEvaluation
from .db.rowjson import input_json, result_from_document, result_json_compact
from .settings import Settings

EXIT_NOT_ROUND_TRIP = 1
PAGE_ROWS = 500


def problem_of(
    stored: StoredEvaluation | UnreadableEvaluation, store: EvaluationStore, max_message_bytes: int
) -> str | None:
    """Why a stored evaluation does not round-trip, or None."""
    if isinstance(stored, UnreadableEvaluation):
        return stored.why
    try:
        text, _digest = input_json(stored.input)
        if input_from_dict(json.loads(text)) != stored.input:
            return "its input does not read back equal when encoded again"
        result = stored.result
        again = result_from_document(
            json.loads(result_json_compact(result, store.parts_for(result.digest))), store.parts_for
        )
        if again != result:
            return "its result does not read back equal when encoded again"
        message = convert.evaluation_to_proto(
            result,
            evaluation_id=stored.id,
            create_time=stored.created_at,
            request_id=stored.request_id or "",
            caller=stored.caller or "",
        )
        size = message.ByteSize()
    except Exception as exc:  # whatever fails, it fails for this row alone
        return f"it cannot be encoded or rendered again ({type(exc).__name__})"
    if size > max_message_bytes:
        return (
            f"its Evaluation message is {size} bytes,"
            f" over the {max_message_bytes}-byte message limit"
        )
    return None


async def check_store(settings: Settings, out: TextIO = sys.stdout) -> int:
    store = await EvaluationStore.open(settings.database_url)
    try:
        checked = bad = 0
        after: str | None = None
        while True:
            page, after = await store.scan(after, PAGE_ROWS)
            for stored in page:
                checked += 1
                why = problem_of(stored, store, settings.max_message_bytes)
                if why is not None:
                    bad += 1
                    print(f"{stored.name}: {why}", file=out)
            if after is None:
                break
    finally:
        await store.close()
    print(
        f"checked {checked} stored evaluation{'s' if checked != 1 else ''}: "
        f"{'all round-trip' if not bad else f'{bad} do not round-trip'}",
        file=out,
    )
    return EXIT_NOT_ROUND_TRIP if bad else 0
