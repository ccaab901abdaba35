"""Page tokens, one scheme for every List of the store (AIP-158).

A token is base64url (unpadded) JSON `{"v": 1, "after": <key>, "f": <fingerprint>}`: the
ordering key of the last row of the page, and a fingerprint of the listing's filters, so that
a token is refused, with a clear error, by a listing with other filters. The key is text (a
UUID as 32 hex digits, the key of every listing today); a listing ordered by something else
passes its own pair of functions to `Listing`. Tokens are opaque to clients, but a token
handed out by an earlier version of the service keeps working: the format is fixed here.

    listing = Listing(("access", subject_id, caller), keep="the filters")
    after = listing.after(request.page_token)       # None for the first page
    ... rows newest first, `WHERE id < after`, LIMIT size + 1 ...
    page, next_token = listing.page(rows, size)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import operator
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import InvalidListRequest

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

K = TypeVar("K")
R = TypeVar("R")


def page_size(requested: int) -> int:
    """The rows of one page: 0 means the default (50), above 1000 is coerced to 1000; a
    negative size raises `InvalidListRequest`."""
    if requested < 0:
        raise InvalidListRequest("page_size", "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def fingerprint(filters: Sequence[str | None]) -> str:
    """The fingerprint of a listing's filters, as tokens carry it."""
    text = json.dumps(list(filters), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _uuid_text(key: uuid.UUID) -> str:
    return key.hex


def _uuid_key(text: str) -> uuid.UUID:
    return uuid.UUID(hex=text)


@dataclass(frozen=True)
class Listing(Generic[K]):
    """The tokens of one listing: its filters (None for a filter not set) and what the
    caller must keep the same while paging (for the error). `key_text` / `key_of_text` turn
    the ordering key into the token's text and back (default: a UUID as hex)."""

    filters: tuple[str | None, ...]
    keep: str = "the filters"
    key_text: Callable[[K], str] = _uuid_text  # type: ignore[assignment]
    key_of_text: Callable[[str], K] = _uuid_key  # type: ignore[assignment]

    def token_after(self, key: K) -> str:
        """The token of the page that continues after the row with this key."""
        data = json.dumps(
            {"v": 1, "after": self.key_text(key), "f": fingerprint(self.filters)},
            separators=(",", ":"),
        )
        return base64.urlsafe_b64encode(data.encode("ascii")).decode("ascii").rstrip("=")

    def after(self, token: str | None) -> K | None:
        """The key a page token continues after (None: no token, the first page); raises
        `InvalidListRequest` naming `page_token` for a token that is not one of ours or
        belongs to a listing with other filters."""
        if not token:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data: Any = json.loads(raw)
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("unknown token version")
            after = self.key_of_text(data["after"])
            token_filters = data["f"]
        except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidListRequest(
                "page_token",
                "not a page token of this service; pass back next_page_token as it was received",
            ) from exc
        if token_filters != fingerprint(self.filters):
            raise InvalidListRequest(
                "page_token",
                f"the page token belongs to a listing with other filters; keep {self.keep} the"
                " same while paging",
            )
        return after

    def page(
        self, rows: Sequence[R], size: int, key: Callable[[R], K] = operator.attrgetter("id")
    ) -> tuple[Sequence[R], str]:
        """The page of `rows` (read with LIMIT size + 1) and the next page's token ("" on
        the last page); `key` gives a row's ordering key (default: its `id`)."""
        if len(rows) <= size:
            return rows, ""
        return rows[:size], self.token_after(key(rows[size - 1]))
