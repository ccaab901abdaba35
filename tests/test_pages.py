"""Page tokens (server/db/pages.py): one scheme for every List. Tokens handed out before the
store was taken apart still page on (the literals below were made by that code), a token
is refused by a listing with other filters, and the scheme takes other ordering keys."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sector_credit.server.db import EvaluationStore, InvalidListRequest
from sector_credit.server.db.pages import Listing, page_size

LAST = uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat()

# (what is listed, its filters, the token the code before the split gave after LAST)
TOKENS_OF_BEFORE = [
    (
        "evaluations of a subject",
        ("S-1", None),
        "eyJ2IjoxLCJhZnRlciI6IjAxOTBhMWIyYzNkNDdlNWY4YTliMGMxZDJlM2Y0"
        "YTViIiwiZiI6ImZhM2IwMTk0Y2M3YjdkZTcifQ",
    ),
    (
        "a reader's own evaluations of a card",
        (None, "transport.taxi_driver", "alice"),
        "eyJ2IjoxLCJhZnRlciI6IjAxOTBhMWIyYzNkNDdlNWY4YTliMGMxZDJlM2Y0"
        "YTViIiwiZiI6Ijg3NGE2NTgyYmJjNmU1YjEifQ",
    ),
    (
        "access records of a subject since T0 that succeeded",
        ("access", "S-1", None, T0, None, "OK"),
        "eyJ2IjoxLCJhZnRlciI6IjAxOTBhMWIyYzNkNDdlNWY4YTliMGMxZDJlM2Y0"
        "YTViIiwiZiI6IjZiOGMyYTQ4NzVjZTllN2UifQ",
    ),
]


@pytest.mark.parametrize(
    "what,filters,token", TOKENS_OF_BEFORE, ids=[t[0] for t in TOKENS_OF_BEFORE]
)
def test_tokens_are_those_handed_out_before(
    what: str, filters: tuple[str | None, ...], token: str
) -> None:
    listing: Listing[uuid.UUID] = Listing(filters)
    assert listing.token_after(LAST) == token
    assert listing.after(token) == LAST


def test_the_store_gives_listevaluations_the_same_tokens() -> None:
    assert EvaluationStore.page_token_after(str(LAST), subject_id="S-1") == TOKENS_OF_BEFORE[0][2]
    assert (
        EvaluationStore.page_token_after(
            str(LAST), scorecard_id="transport.taxi_driver", caller="alice"
        )
        == TOKENS_OF_BEFORE[1][2]
    )


GOOD = TOKENS_OF_BEFORE[0][2]
REFUSED = [
    ("not base64", "%%%", "not a page token of this service"),
    ("not JSON", "bm90IGpzb24", "not a page token of this service"),
    ("another version", "eyJ2IjoyfQ", "not a page token of this service"),
    ("no key", "eyJ2IjoxfQ", "not a page token of this service"),
    ("another listing's", TOKENS_OF_BEFORE[1][2], "keep subject_id and scorecard the same"),
]


@pytest.mark.parametrize("what,token,message", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_token_that_is_not_this_listings_is_refused_naming_page_token(
    what: str, token: str, message: str
) -> None:
    listing: Listing[uuid.UUID] = Listing(("S-1", None), keep="subject_id and scorecard")
    with pytest.raises(InvalidListRequest) as refused:
        listing.after(token)
    assert refused.value.field == "page_token"
    assert message in str(refused.value.violations[0].description)
    assert listing.after(GOOD) == LAST


@pytest.mark.parametrize(
    "requested,rows", [(0, 50), (1, 1), (50, 50), (1000, 1000), (1001, 1000), (10**9, 1000)]
)
def test_page_sizes(requested: int, rows: int) -> None:
    assert page_size(requested) == rows


def test_a_negative_page_size_is_refused() -> None:
    with pytest.raises(InvalidListRequest) as refused:
        page_size(-1)
    assert refused.value.field == "page_size"


@pytest.mark.parametrize(
    "rows,size,page,more",
    [
        ([5, 4, 3], 2, [5, 4], True),
        ([5, 4], 2, [5, 4], False),
        ([], 2, [], False),
    ],
)
def test_another_ordering_key_pages_the_same_way(
    rows: list[int], size: int, page: list[int], more: bool
) -> None:
    listing: Listing[int] = Listing(("records", "S-1"), key_text=str, key_of_text=int)
    got, token = listing.page(rows, size, key=lambda row: row)
    assert list(got) == page
    assert bool(token) == more
    if more:
        assert listing.after(token) == page[-1]
