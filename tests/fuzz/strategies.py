"""Hypothesis strategies for every request the service takes, as wire bytes.

Two families, per method:
- structure-aware: real request messages, each drawn valid and then changed in 0-3 places
  (about half stay valid): the scorecard ids, versions and indicator names the server itself
  reported (a `Catalogue` read from ListScorecards/GetScorecard), valid GB 11643 / GB 32100
  ids and near misses, values at and beyond the bounds in every wire case of IndicatorValue,
  calendar edge dates, huge, NUL, control and non-BMP strings, tokens the server issued and
  tokens it did not;
- raw: arbitrary bytes, a valid request mutated (bits flipped, cut, spliced, garbage
  appended), and hand-made wire data (wrong wire types, invalid UTF-8 in string fields,
  lengths beyond the end, over-long varints, deep nesting, groups).

`structured` and `raw` yield `Call`s: the method, its shape and the bytes (one message, or
the messages of a stream).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from grpc_health.v1 import health_pb2
from hypothesis import strategies as st
from sector_credit.v1 import common_pb2, scorecard_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb

SERVICE = "/sector_credit.v1.CreditEvaluationService/"
HEALTH = "/grpc.health.v1.Health/"
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CreditEvaluationService"].full_name

# method label -> (path, shape): unary, stream (requests and responses) or watch (one request,
# responses until cancelled: the first one is read, then the call is cancelled)
METHODS: dict[str, tuple[str, str]] = {
    "ListScorecards": (SERVICE + "ListScorecards", "unary"),
    "GetScorecard": (SERVICE + "GetScorecard", "unary"),
    "Evaluate": (SERVICE + "Evaluate", "unary"),
    "BatchEvaluate": (SERVICE + "BatchEvaluate", "unary"),
    "StreamEvaluate": (SERVICE + "StreamEvaluate", "stream"),
    "GetEvaluation": (SERVICE + "GetEvaluation", "unary"),
    "ListEvaluations": (SERVICE + "ListEvaluations", "unary"),
    "Health.Check": (HEALTH + "Check", "unary"),
    "Health.Watch": (HEALTH + "Watch", "watch"),
}


@dataclass(frozen=True)
class Call:
    label: str  # the method, with " (raw)" for the raw-bytes family
    method: str  # key of METHODS
    body: bytes | tuple[bytes, ...]  # one message; a stream's messages
    describe: Callable[[], str]  # a short description of the input, made only when reported

    @property
    def sketch(self) -> str:
        return self.describe()

    @property
    def shape(self) -> str:
        return METHODS[self.method][1]


@dataclass(frozen=True)
class IndicatorInfo:
    name: str
    type: int  # scorecard_pb2.IndicatorType
    minimum: str
    maximum: str
    choices: tuple[str, ...]
    required: bool = False
    past: bool = False  # a date that must not lie after as_of
    derived: bool = False  # read from credit records by the server: a valid request omits it


@functools.cache
def derived_indicators() -> dict[str, frozenset[str]]:
    """The indicators each installed card derives from credit records (`from_records`): the
    server fills them and refuses a submitted value. The Scorecard message does not say which
    they are, so the fuzzer asks the cards installed with it (the server's own)."""
    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry

    return {
        c.id: frozenset(i.name for i in c.card.indicators if i.from_records is not None)
        for c in build_registry(get_plugin_manager()).all()
    }


@dataclass(frozen=True)
class CardInfo:
    id: str
    versions: tuple[str, ...]
    kind: int  # common_pb2.SubjectKind
    indicators: tuple[IndicatorInfo, ...]


@dataclass
class Catalogue:
    """What the server reported about itself, and what the run has seen it store."""

    cards: tuple[CardInfo, ...]
    evaluation_names: list[str] = field(default_factory=list)
    evaluation_tokens: list[str] = field(default_factory=list)
    subject_ids: list[str] = field(default_factory=list)
    largest_batch: int = 1001  # the most items a BatchEvaluate may have (the limit is 1,000)

    @classmethod
    def from_scorecards(cls, scorecards: list[scorecard_pb2.Scorecard]) -> Catalogue:
        cards = []
        for sc in scorecards:
            cards.append(
                CardInfo(
                    id=sc.scorecard_id,
                    versions=tuple(v.version for v in sc.versions) or (sc.version,),
                    kind=sc.subject_kind,
                    indicators=tuple(
                        IndicatorInfo(
                            i.name,
                            i.type,
                            i.minimum,
                            i.maximum,
                            tuple(i.choices),
                            i.required,
                            i.past,
                            i.name in derived_indicators().get(sc.scorecard_id, ()),
                        )
                        for i in sc.indicators
                    ),
                )
            )
        return cls(tuple(cards))

    def remember(self, evaluation: Any) -> None:
        """Keep a few stored names and subjects to aim Get/ListEvaluations at (bounded)."""
        if evaluation.name and len(self.evaluation_names) < 200:
            self.evaluation_names.append(evaluation.name)
        if evaluation.subject.id and len(self.subject_ids) < 200:
            self.subject_ids.append(evaluation.subject.id)


# ============================================================================================
# Building blocks


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
BATCH_BYTES = 1 << 20  # large batches are repeated items up to about this size
OVERSIZE_BYTES = 17 << 20  # just over the server's default message limit of 16 MiB

# strings that have hurt services before: empty, blanks, NUL, control and format characters,
# right-to-left override, non-BMP, combining marks, other scripts' digits, SQL and path noise
EDGE_STRINGS = (
    "",
    " ",
    "\t",
    "\x00",
    "a\x00b",
    "\x00" * 64,
    "\r\n",
    "\x7f",
    "\u200b",
    "\ufeff",
    "\u202e",
    "😀",
    "𝟙𝟚𝟛",
    "١٢٣",
    "１２３",
    "e\u0301",
    "张三",
    "'; DROP TABLE evaluations; --",
    "%s%n",
    "../../etc/passwd",
    "null",
    "None",
    "NaN",
    "\\",
    '"',
    "\U0010ffff",
)


def resident_id(area: str, birth: dt.date, seq: int) -> str:
    body = f"{area}{birth:%Y%m%d}{seq:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS)) % 11]


def uscc(body17: str) -> str:
    total = sum(_USCC_CHARS.index(c) * w for c, w in zip(body17, _USCC_WEIGHTS))
    return body17 + _USCC_CHARS[(31 - total % 31) % 31]


@functools.cache
def huge_strings() -> st.SearchStrategy[str]:
    """Long strings cheaply: a character repeated up to 300,000 times (up to ~1 MB UTF-8)."""
    return st.builds(
        lambda ch, n: ch * n,
        st.sampled_from(["A", "字", "😀", "\x00", "9"]),
        st.sampled_from([255, 256, 257, 1023, 1024, 1025, 4096, 10_000, 65_536, 300_000]),
    )


@functools.cache
def strings() -> st.SearchStrategy[str]:
    """Any string a hostile client might send (never a lone surrogate: it cannot be encoded)."""
    return st.one_of(st.sampled_from(EDGE_STRINGS), st.text(max_size=40), huge_strings())


@functools.cache
def valid_resident_ids() -> st.SearchStrategy[str]:
    return st.builds(
        resident_id,
        st.sampled_from(["110105", "310101", "440305", "350102", "000000"]),
        st.dates(dt.date(1900, 1, 1), dt.date(2026, 12, 31)),
        st.integers(0, 999),
    )


@functools.cache
def valid_usccs() -> st.SearchStrategy[str]:
    return st.builds(
        lambda head, rest: uscc(head + rest),
        st.sampled_from(["91", "92", "93", "51", "52", "11", "Y1"]),
        st.text(_USCC_CHARS, min_size=15, max_size=15),
    )


def near_miss_id(valid: str, how: int, pos: int, ch: str) -> str:
    """A valid id changed the way people mistype them."""
    pos %= len(valid)
    return [
        valid[:17] + ("0" if valid[17] != "0" else "1"),  # wrong check character
        valid.lower(),
        f"  {valid} ",
        valid[:17],
        valid + "0",
        valid[:pos] + ch + valid[pos + 1 :],
        valid.replace("X", "x"),
        valid[:6] + "20230229" + valid[14:],  # not a date
        "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in valid),  # full-width digits
    ][how % 9]


def subject_ids(catalogue: Catalogue) -> st.SearchStrategy[str]:
    valid = st.one_of(valid_resident_ids(), valid_usccs())
    seen = [st.sampled_from(catalogue.subject_ids)] if catalogue.subject_ids else []
    return st.one_of(
        valid,
        *seen,
        st.builds(
            near_miss_id,
            valid,
            st.integers(0, 8),
            st.integers(0, 17),
            st.sampled_from("0X\x00字 Z-"),
        ),
        strings(),
    )


@functools.cache
def wire_dates() -> st.SearchStrategy[common_pb2.Date]:
    edge = st.sampled_from(
        [
            (0, 0, 0),
            (1, 1, 1),
            (9999, 12, 31),
            (10000, 1, 1),
            (0, 1, 1),
            (2024, 2, 29),
            (2023, 2, 29),
            (2026, 4, 31),
            (2026, 13, 1),
            (2026, 0, 1),
            (2026, 1, 0),
            (-1, 1, 1),
            (2026, 1, 32),
            (INT32[1], 12, 31),
            (INT32[0], INT32[0], INT32[0]),
            (2026, 6, 0),
        ]
    )
    real = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(lambda d: (d.year, d.month, d.day))
    near = st.dates(dt.date(2015, 1, 1), dt.date(2030, 12, 31)).map(
        lambda d: (d.year, d.month, d.day)
    )
    anyint = st.tuples(st.integers(*INT32), st.integers(*INT32), st.integers(*INT32))
    return st.one_of(edge, real, near, anyint).map(
        lambda t: common_pb2.Date(year=t[0], month=t[1], day=t[2])
    )


def _around(text: str) -> list[str]:
    """Decimal strings at and just beyond a bound given as a decimal string."""
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(text)
    except InvalidOperation:
        return []
    out = [text]
    for delta in ("1", "0.1", "0.01", "0.001", "0.000001"):
        out += [str(d + Decimal(delta)), str(d - Decimal(delta))]
    return out


@functools.cache
def decimal_strings(bounds: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    edge = [
        "0",
        "-0",
        "1",
        "-1",
        "0.5",
        "1e19",
        "1E-400",
        "1e308",
        "9" * 20,
        "9" * 5000,
        "0." + "1" * 60,
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "sNaN",
        " 5 ",
        "+5",
        "5.",
        ".5",
        "1_0",
        "١٢",
        "１２",
        "𝟙𝟚",
        "0x10",
        "1,5",
        "",
        "-",
        ".",
        "1e",
        "2**63",
        str(2**63),
        str(2**64),
        str(-(2**63) - 1),
        "4294967296",
        "100.000000001",
        "99.9999999999",
    ]
    bound_values = [v for b in bounds if b for v in _around(b)]
    return st.one_of(
        st.sampled_from(edge + bound_values),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.integers(-(10**25), 10**25).map(str),
        st.decimals(min_value=-1000, max_value=1000, places=3).map(str),
    )


@functools.cache
def doubles(bounds: tuple[str, ...] = ()) -> st.SearchStrategy[float]:
    edge = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.1,
        1e19,
        1e308,
        -1e308,
        5e-324,
        math.nan,
        math.inf,
        -math.inf,
        9.223372036854776e18,
        2.0**53,
        2.0**53 + 2,
        0.30000000000000004,
    ]
    near = []
    for b in bounds:
        try:
            x = float(b)
        except ValueError:
            continue
        near += [x, math.nextafter(x, math.inf), math.nextafter(x, -math.inf), x + 0.001, x - 0.001]
    return st.one_of(st.sampled_from(edge + near), st.floats())


@functools.cache
def counts() -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from(
            [
                0,
                1,
                2,
                10,
                100,
                10**6,
                10**6 + 1,
                2**31 - 1,
                2**31,
                2**53,
                2**62,
                INT64[1],
                -1,
                INT64[0],
            ]
        ),
        st.integers(0, 20),
        st.integers(*INT64),
    )


@functools.cache
def any_value(
    bounds: tuple[str, ...] = (), choices: tuple[str, ...] = ()
) -> st.SearchStrategy[common_pb2.IndicatorValue]:
    """An IndicatorValue in any wire case (or none set)."""
    choice = st.one_of(st.sampled_from(choices), strings()) if choices else strings()
    return st.one_of(
        st.builds(lambda v: common_pb2.IndicatorValue(count_value=v), counts()),
        st.builds(lambda v: common_pb2.IndicatorValue(decimal_value=v), decimal_strings(bounds)),
        st.builds(lambda v: common_pb2.IndicatorValue(number_value=v), doubles(bounds)),
        st.builds(lambda v: common_pb2.IndicatorValue(flag_value=v), st.booleans()),
        st.builds(lambda v: common_pb2.IndicatorValue(choice_value=v), choice),
        st.builds(lambda v: common_pb2.IndicatorValue(date_value=v), wire_dates()),
        st.just(common_pb2.IndicatorValue()),
    )


@functools.cache
def value_for(ind: IndicatorInfo) -> st.SearchStrategy[common_pb2.IndicatorValue]:
    """An edge value for the indicator: mostly in its own wire case, at and beyond its bounds;
    sometimes in any case."""
    bounds = (ind.minimum, ind.maximum)
    t = scorecard_pb2
    if ind.type == t.INDICATOR_TYPE_COUNT:
        lo = int(ind.minimum) if ind.minimum.lstrip("-").isdigit() else 0
        hi = int(ind.maximum) if ind.maximum.lstrip("-").isdigit() else 50
        right = st.one_of(st.integers(lo, hi), st.sampled_from([lo - 1, hi + 1]), counts()).map(
            lambda v: common_pb2.IndicatorValue(count_value=v)
        )
        right = st.one_of(
            right,
            st.builds(
                lambda v: common_pb2.IndicatorValue(decimal_value=v),
                st.one_of(st.integers(lo, hi).map(str), decimal_strings(bounds)),
            ),
        )
    elif ind.type in (t.INDICATOR_TYPE_NUMBER, t.INDICATOR_TYPE_PERCENT):
        right = st.one_of(
            st.builds(
                lambda v: common_pb2.IndicatorValue(decimal_value=v), decimal_strings(bounds)
            ),
            st.builds(lambda v: common_pb2.IndicatorValue(number_value=v), doubles(bounds)),
            st.builds(lambda v: common_pb2.IndicatorValue(count_value=v), counts()),
        )
    elif ind.type == t.INDICATOR_TYPE_FLAG:
        right = st.builds(lambda v: common_pb2.IndicatorValue(flag_value=v), st.booleans())
    elif ind.type == t.INDICATOR_TYPE_CHOICE:
        right = st.builds(
            lambda v: common_pb2.IndicatorValue(choice_value=v),
            st.one_of(
                st.sampled_from(ind.choices or ("",)),
                st.sampled_from(ind.choices or ("",)).map(lambda c: c.upper() + " "),
            ),
        )
    else:  # date
        right = st.builds(lambda v: common_pb2.IndicatorValue(date_value=v), wire_dates())
    return st.one_of(right, right, right, any_value(bounds, ind.choices))


# ============================================================================================
# Request messages


# Each request is drawn valid first (a real card, its version, a subject of its kind with a
# valid id, every required indicator and some optional ones with values in range, often at a
# bound), then changed by 0-3 perturbations drawn from the method's list: about half of the
# requests stay valid, the others are wrong in one to three places, near the edges.
PERTURBATIONS = st.sampled_from([0, 0, 0, 0, 0, 1, 1, 1, 2, 3])
Perturbation = Callable[[st.DrawFn, Any], None]


@st.composite
def _perturbed(
    draw: st.DrawFn, valid: st.SearchStrategy[Any], perturbations: tuple[Perturbation, ...]
) -> Any:
    msg = draw(valid)
    for _ in range(draw(PERTURBATIONS)):
        draw(st.sampled_from(perturbations))(draw, msg)
    return msg


@functools.cache
def valid_value(ind: IndicatorInfo) -> st.SearchStrategy[common_pb2.IndicatorValue]:
    """A value the indicator takes, in its own wire case, often at a bound."""
    from decimal import Decimal

    t = scorecard_pb2
    if ind.type == t.INDICATOR_TYPE_COUNT:
        lo = int(ind.minimum or 0)
        hi = int(ind.maximum) if ind.maximum else lo + 30
        return st.one_of(st.sampled_from([lo, hi]), st.integers(lo, hi)).map(
            lambda v: common_pb2.IndicatorValue(count_value=v)
        )
    if ind.type in (t.INDICATOR_TYPE_NUMBER, t.INDICATOR_TYPE_PERCENT):
        lo = Decimal(ind.minimum or "0")
        hi = Decimal(ind.maximum) if ind.maximum else lo + 1000
        texts = st.one_of(
            st.sampled_from([str(lo), str(hi), f"{lo:.2f}", f"{hi:.1f}"]),
            st.decimals(min_value=lo, max_value=hi, places=2).map(str),
        )
        return st.one_of(
            texts.map(lambda v: common_pb2.IndicatorValue(decimal_value=v)),
            texts.map(lambda v: common_pb2.IndicatorValue(number_value=float(v))),
        )
    if ind.type == t.INDICATOR_TYPE_FLAG:
        return st.booleans().map(lambda v: common_pb2.IndicatorValue(flag_value=v))
    if ind.type == t.INDICATOR_TYPE_CHOICE:
        return st.sampled_from(ind.choices or ("",)).map(
            lambda v: common_pb2.IndicatorValue(choice_value=v)
        )
    past = dt.date(2024, 12, 31) if ind.past else dt.date(2035, 12, 31)
    return st.dates(dt.date(2000, 1, 1), past).map(
        lambda d: common_pb2.IndicatorValue(
            date_value=common_pb2.Date(year=d.year, month=d.month, day=d.day)
        )
    )


def _valid_subject_id(kind: int) -> st.SearchStrategy[str]:
    return valid_resident_ids() if kind == common_pb2.SUBJECT_KIND_PERSON else valid_usccs()


VALID_AS_OF = st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31)).map(
    lambda d: common_pb2.Date(year=d.year, month=d.month, day=d.day)
)


@functools.cache
def valid_evaluate_requests(card: CardInfo) -> st.SearchStrategy[pb.EvaluateRequest]:
    required = [i for i in card.indicators if i.required and not i.derived]
    optional = [i for i in card.indicators if not i.required and not i.derived]
    some_optional = st.integers(0, 2 ** len(optional) - 1)

    @st.composite
    def build(draw: st.DrawFn) -> pb.EvaluateRequest:
        req = pb.EvaluateRequest(
            scorecard=draw(st.sampled_from([card.id, "scorecards/" + card.id])),
            version=draw(st.sampled_from(["", "", card.versions[0]])),
        )
        req.subject.kind = card.kind
        req.subject.id = draw(_valid_subject_id(card.kind))
        req.subject.display_name = draw(
            st.sampled_from(["", "张三", "深圳市某某运输有限公司", "O'Brien"])
        )
        if draw(st.booleans()):
            req.as_of.CopyFrom(draw(VALID_AS_OF))
        mask = draw(
            some_optional
        )  # one draw for the choice of optional indicators: cheaper than a list
        chosen = required + [ind for k, ind in enumerate(optional) if mask >> k & 1]
        for ind in chosen:
            req.indicators[ind.name].CopyFrom(draw(valid_value(ind)))
        req.request_id = draw(st.one_of(st.just(""), st.just(""), st.uuids().map(str)))
        req.validate_only = draw(st.booleans())
        return req

    return build()


def _evaluate_perturbations(catalogue: Catalogue, small: bool) -> tuple[Perturbation, ...]:
    subjects = subject_ids(catalogue)
    extras = st.sampled_from([1, 2, 5] if small else [1, 2, 5, 300, 5000])

    def card_of(msg: pb.EvaluateRequest) -> CardInfo:
        sid = msg.scorecard.removeprefix("scorecards/")
        return next((c for c in catalogue.cards if c.id == sid), catalogue.cards[0])

    def scorecard(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        msg.scorecard = draw(_card_draws(card_of(msg)).scorecard)

    def version(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        msg.version = draw(_card_draws(card_of(msg)).version)

    def kind(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        msg.subject.kind = draw(_KINDS)

    def subject_id(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        msg.subject.id = draw(subjects)

    def no_subject(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        msg.ClearField("subject")

    def display_name(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        msg.subject.display_name = draw(strings())

    def as_of(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        msg.as_of.CopyFrom(draw(wire_dates()))

    def value(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        card = card_of(msg)
        if card.indicators:
            ind = draw(st.sampled_from(card.indicators))
            msg.indicators[ind.name].CopyFrom(draw(value_for(ind)))

    def missing(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        if msg.indicators:
            del msg.indicators[draw(st.sampled_from(sorted(msg.indicators)))]

    def unknown(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        card = card_of(msg)
        n = draw(extras)
        template = (
            draw(strings())
            if draw(st.booleans()) or not card.indicators
            else draw(st.sampled_from(card.indicators)).name.upper()
        )
        for k in range(n):
            msg.indicators[f"{template[:64]}{k}" if n > 1 else template].CopyFrom(
                draw(any_value()) if k < 3 else common_pb2.IndicatorValue(count_value=k)
            )

    def request_id(draw: st.DrawFn, msg: pb.EvaluateRequest) -> None:
        # a fixed id now and then: replays and conflicts (the same id for another request)
        msg.request_id = draw(st.one_of(st.just("fuzz-same-request-id"), strings()))

    return (
        scorecard,
        version,
        kind,
        subject_id,
        no_subject,
        display_name,
        as_of,
        value,
        value,
        value,
        missing,
        unknown,
        request_id,
    )


def evaluate_requests(
    catalogue: Catalogue, small: bool = False
) -> st.SearchStrategy[pb.EvaluateRequest]:
    """EvaluateRequests for the catalogue's cards: valid ones, near their bounds, and ones
    wrong in one to three places (names, versions, subjects, dates, values in range or not
    and in any wire case, missing, unknown and many indicators (up to 5,000 unless `small`),
    request ids)."""
    valid = st.sampled_from(catalogue.cards).flatmap(valid_evaluate_requests)
    return _perturbed(valid, _evaluate_perturbations(catalogue, small))


@dataclass(frozen=True)
class _CardDraws:
    """A card's wrong names and versions, built once (building strategies is the slow part)."""

    scorecard: st.SearchStrategy[str]
    version: st.SearchStrategy[str]


@functools.cache
def _card_draws(card: CardInfo) -> _CardDraws:
    return _CardDraws(
        scorecard=st.one_of(
            st.sampled_from(
                [
                    card.id.upper(),
                    card.id + " ",
                    "scorecards/",
                    "scorecards/scorecards/" + card.id,
                    card.id.split(".")[0],
                    "transport.taxi_drive",
                    card.id + "\x00",
                    "",
                ]
            ),
            strings(),
        ),
        version=st.one_of(
            st.sampled_from(["0", "2025.1", "9999.9", "latest", card.versions[0] + " "]), strings()
        ),
    )


_KINDS = st.sampled_from([0, 1, 2, 3, -1, INT32[1]])


def batch_requests(catalogue: Catalogue) -> st.SearchStrategy[pb.BatchEvaluateRequest]:
    """Batches of 0 to 1,001 items (the limit is 1,000; 2 in 15 batches have 1,000 or more):
    up to 5 items drawn, repeated to size."""
    sizes = [
        n
        for n in (0, 1, 1, 2, 3, 3, 5, 5, 8, 8, 20, 20, 50, 1000, 1001)
        if n <= catalogue.largest_batch
    ]
    return _batch_requests(evaluate_requests(catalogue, small=True), st.sampled_from(sizes))


@st.composite
def _batch_requests(
    draw: st.DrawFn,
    items_strategy: st.SearchStrategy[pb.EvaluateRequest],
    sizes: st.SearchStrategy[int],
) -> pb.BatchEvaluateRequest:
    n = draw(sizes)
    items = draw(st.lists(items_strategy, min_size=min(n, 2), max_size=min(n, 5)))
    req = pb.BatchEvaluateRequest(requests=items)
    # large batches: the drawn items repeated (with their request ids emptied, or not), up to
    # about BATCH_BYTES so that a run stays quick (oversize messages have their own strategy)
    sizes = [item.ByteSize() + 4 for item in items]
    total = sum(sizes)
    while items and len(req.requests) < n and total < BATCH_BYTES:
        k = len(req.requests) % len(items)
        req.requests.append(items[k])
        total += sizes[k]
    if n > 8 and draw(st.booleans()):
        for item in req.requests:
            item.request_id = ""
    return req


def stream_requests(
    catalogue: Catalogue,
) -> st.SearchStrategy[tuple[pb.StreamEvaluateRequest, ...]]:
    """Streams of 0 to 5 items, correlation ids in sequence, all alike, empty or any string;
    now and then an item with no request at all."""
    return _stream_requests(evaluate_requests(catalogue, small=True))


@st.composite
def _stream_requests(
    draw: st.DrawFn, items_strategy: st.SearchStrategy[pb.EvaluateRequest]
) -> tuple[pb.StreamEvaluateRequest, ...]:
    items = draw(st.lists(items_strategy, max_size=5))
    style = draw(st.sampled_from(["seq", "seq", "same", "empty", "any"]))
    out = []
    for i, item in enumerate(items):
        cid = (
            {"seq": str(i), "same": "x", "empty": ""}.get(style)
            if style != "any"
            else draw(strings())
        )
        msg = pb.StreamEvaluateRequest(correlation_id=cid)
        if draw(st.integers(0, 9)) > 0:
            msg.request.CopyFrom(item)
        out.append(msg)
    return tuple(out)


def _set(name: str, values: st.SearchStrategy[Any]) -> Perturbation:
    """A perturbation that sets one field to a drawn value."""

    def perturb(draw: st.DrawFn, msg: Any) -> None:
        value = draw(values)
        if isinstance(value, common_pb2.Date):
            getattr(msg, name).CopyFrom(value)
        else:
            setattr(msg, name, value)

    return perturb


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@functools.cache
def scorecard_tokens() -> st.SearchStrategy[str]:
    """Page tokens ListScorecards did not issue (it issues base64 of `o:{offset}`)."""
    return st.one_of(
        st.sampled_from(
            ["o:-1", "o:9999999999999999999999", "o:", "o:1.5", "x:1", "o:１", "o:1\x00"]
        ).map(_b64),
        st.sampled_from(["b2", "====", "o:1", "\x00", "AAAA" * 1000]),
        strings(),
    )


PAGE_SIZES = st.one_of(
    st.sampled_from([-1, INT32[0], INT32[1], 1001, 100_000]), st.integers(*INT32)
)
VIEWS = st.sampled_from([3, -1, INT32[1]])  # not a ScorecardView


@functools.cache
def list_scorecards_requests() -> st.SearchStrategy[pb.ListScorecardsRequest]:
    valid = st.builds(
        pb.ListScorecardsRequest,
        page_size=st.sampled_from([0, 0, 1, 2, 5, 100, 101]),
        page_token=st.one_of(
            st.just(""), st.sampled_from([0, 1, 3, 8, 9, 100]).map(lambda n: _b64(f"o:{n}"))
        ),
        view=st.sampled_from([0, 1, 2]),
    )
    return _perturbed(
        valid,
        (
            _set("page_size", PAGE_SIZES),
            _set("page_token", scorecard_tokens()),
            _set("view", VIEWS),
        ),
    )


def get_scorecard_requests(catalogue: Catalogue) -> st.SearchStrategy[pb.GetScorecardRequest]:
    @st.composite
    def valid(draw: st.DrawFn) -> pb.GetScorecardRequest:
        card = draw(st.sampled_from(catalogue.cards))
        req = pb.GetScorecardRequest(
            name="scorecards/" + card.id,
            version=draw(st.sampled_from(["", card.versions[0]])),
            view=draw(st.sampled_from([0, 1, 2])),
        )
        if draw(st.booleans()):
            req.as_of.CopyFrom(draw(VALID_AS_OF))
        return req

    names = st.one_of(
        st.sampled_from([c.id for c in catalogue.cards]),  # the id without `scorecards/`
        st.sampled_from(
            [
                "scorecards/",
                "scorecards/x",
                "scorecards/transport.taxi_driver/x",
                "SCORECARDS/transport.taxi_driver",
                "scorecards/transport.taxi_drive",
            ]
        ),
        strings(),
    )
    return _perturbed(
        valid(),
        (
            _set("name", names),
            _set("version", st.one_of(st.sampled_from(["0", "9999.9"]), strings())),
            _set("view", VIEWS),
            _set("as_of", wire_dates()),
        ),
    )


# reads state why (issue 9): a known purpose code, or one of these to be refused
PURPOSES = st.sampled_from(
    [
        "recruitment_review",
        "bid_review",
        "annual_assessment",
        "credit_repair",
        "subject_request",
        "supervision",
    ]
)
BAD_PURPOSES = st.one_of(st.sampled_from(["", "curiosity", "Bid_Review", "bid_review "]), strings())


def get_evaluation_requests(catalogue: Catalogue) -> st.SearchStrategy[pb.GetEvaluationRequest]:
    known = st.sampled_from(
        catalogue.evaluation_names or ["evaluations/01a21fb8-de30-7064-ad3e-134ccbf912a4"]
    )
    valid = st.builds(
        pb.GetEvaluationRequest,
        name=st.one_of(known, st.uuids().map(lambda u: f"evaluations/{u}")),
        purpose=PURPOSES,
    )
    names = st.one_of(
        st.sampled_from(
            [
                "evaluations/",
                "evaluations/x",
                "evaluations/" + "0" * 36,
                "evaluation/1",
                "evaluations/01a21fb8-de30-7064-ad3e-134ccbf912a4/extra",
            ]
        ),
        known.map(lambda n: n.upper()),
        known.map(lambda n: n.removeprefix("evaluations/")),
        strings(),
    )
    return _perturbed(
        valid, (_set("name", names), _set("purpose", BAD_PURPOSES), _set("purpose_note", strings()))
    )


def list_evaluations_requests(catalogue: Catalogue) -> st.SearchStrategy[pb.ListEvaluationsRequest]:
    tokens = st.sampled_from(catalogue.evaluation_tokens or [""])
    subjects = st.sampled_from(catalogue.subject_ids or ["11010519491231002X"])
    cards = st.sampled_from(
        [c.id for c in catalogue.cards] + ["scorecards/" + c.id for c in catalogue.cards]
    )
    valid = st.builds(
        pb.ListEvaluationsRequest,
        page_size=st.sampled_from([0, 1, 2, 50, 1000]),
        page_token=st.one_of(st.just(""), tokens),
        subject_id=st.one_of(st.just(""), subjects),
        scorecard=st.one_of(st.just(""), cards),
        purpose=PURPOSES,
    )
    bad_tokens = st.one_of(
        tokens.map(lambda s: s[:-1]),
        tokens.map(lambda s: s + "A"),
        tokens.map(lambda s: s[::-1]),
        scorecard_tokens(),
    )
    return _perturbed(
        valid,
        (
            _set("page_size", PAGE_SIZES),
            _set("page_token", bad_tokens),
            _set("subject_id", subject_ids(catalogue)),
            _set("scorecard", strings()),
            _set("purpose", BAD_PURPOSES),
            _set("purpose_note", strings()),
        ),
    )


@functools.cache
def health_requests() -> st.SearchStrategy[health_pb2.HealthCheckRequest]:
    valid = st.builds(health_pb2.HealthCheckRequest, service=st.sampled_from(["", SERVICE_NAME]))
    return _perturbed(
        valid,
        (
            _set(
                "service",
                st.one_of(
                    st.sampled_from(["grpc.health.v1.Health", SERVICE_NAME + " "]), strings()
                ),
            ),
        ),
    )


def structured(method: str, catalogue: Catalogue) -> st.SearchStrategy[Call]:
    """Calls of `method` with a real request message."""

    def one(msg: Any) -> Call:
        return Call(method, method, msg.SerializeToString(), lambda: _sketch(msg))

    def many(msgs: tuple[Any, ...]) -> Call:
        return Call(
            method,
            method,
            tuple(m.SerializeToString() for m in msgs),
            lambda: f"{len(msgs)} items: " + " | ".join(_sketch(m) for m in msgs[:3]),
        )

    return {
        "ListScorecards": list_scorecards_requests().map(one),
        "GetScorecard": get_scorecard_requests(catalogue).map(one),
        "Evaluate": evaluate_requests(catalogue).map(one),
        "BatchEvaluate": batch_requests(catalogue).map(one),
        "StreamEvaluate": stream_requests(catalogue).map(many),
        "GetEvaluation": get_evaluation_requests(catalogue).map(one),
        "ListEvaluations": list_evaluations_requests(catalogue).map(one),
        "Health.Check": health_requests().map(one),
        "Health.Watch": health_requests().map(one),
    }[method]


def _sketch(msg: Any, limit: int = 300) -> str:
    """A one-line description of a message: text format with long strings cut."""
    from google.protobuf import text_format

    try:
        text = text_format.MessageToString(msg, as_one_line=True, as_utf8=True)
    except Exception as exc:  # noqa: BLE001  (a sketch must never stop the run)
        text = f"<{type(exc).__name__}>"
    return f"{type(msg).__name__}{{{_cut(text, limit)}}}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


# ============================================================================================
# Raw bytes


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers as protobuf writes them: ten bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


@functools.cache
def handmade_fields() -> st.SearchStrategy[bytes]:
    """One field of hand-made wire data: every wire type at field numbers the messages use,
    including the wrong type for the field, invalid UTF-8, lengths past the end and
    over-long varints."""
    number = st.one_of(st.integers(1, 8), st.sampled_from([0, 15, 16, 2047, 2**29 - 1, 2**29]))
    return st.one_of(
        st.builds(lambda n, v: tag(n, 0) + varint(v), number, st.integers(-(2**63), 2**64 - 1)),
        st.builds(lambda n, b: tag(n, 1) + b, number, st.binary(min_size=0, max_size=8)),
        st.builds(
            lambda n, b: length_delimited(n, b),
            number,
            st.one_of(
                st.binary(max_size=40),
                st.sampled_from(
                    [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"a\x00b", b"\xf4\x90\x80\x80"]
                ),
            ),
        ),
        st.builds(
            lambda n, k: tag(n, 2) + varint(k),
            number,
            st.sampled_from([1, 100, 2**31, 2**32 + 1, 2**63]),
        ),
        st.builds(lambda n: tag(n, 3) + tag(n, 4), number),  # an empty group
        st.builds(lambda n: tag(n, 3), number),  # a group never closed
        st.builds(lambda n: tag(n, 4), number),  # an end-group with no start
        st.builds(lambda n, b: tag(n, 5) + b, number, st.binary(min_size=0, max_size=4)),
        st.builds(lambda n, w: tag(n, w), number, st.sampled_from([6, 7])),  # no such wire types
        st.just(b"\xff" * 10 + b"\x01"),  # an over-long varint tag
        st.builds(lambda d: _nested(d), st.sampled_from([10, 64, 101, 1000, 5000])),
    )


def _nested(depth: int) -> bytes:
    """A sub-message nested `depth` deep in field 3 (the EvaluateRequest's subject, then
    unknown fields): beyond protobuf's recursion limit of 100 at depth > 100."""
    payload = b""
    for _ in range(depth):
        payload = length_delimited(3, payload)
    return payload


def mutate(data: bytes, how: int, pos: int, blob: bytes) -> bytes:
    pos = pos % (len(data) + 1)
    return [
        data[:pos],  # cut short
        data[:pos] + blob + data[pos:],  # bytes inserted
        data[:pos] + bytes([data[pos] ^ (1 << (blob[0] % 8 if blob else 0))]) + data[pos + 1 :]
        if pos < len(data)
        else data + blob,
        data + blob,  # garbage appended
        data + data,  # the message twice (a valid merge, mostly)
        data[pos:],  # the start cut off
        data[:pos] + b"\x80" * 11,  # an unfinished varint
    ][how % 7]


@functools.cache
def _changes() -> st.SearchStrategy[Callable[[bytes], bytes]]:
    """Ways to spoil one valid message: replace it with junk or hand-made fields, mutate it,
    or append a hand-made field (built once: a strategy per message would be slow)."""
    junk = st.one_of(
        st.binary(max_size=200), st.lists(handmade_fields(), min_size=1, max_size=6).map(b"".join)
    )
    mutation = st.tuples(
        st.integers(0, 6), st.integers(0, 10_000), st.binary(min_size=1, max_size=16)
    )
    return st.one_of(
        junk.map(lambda j: lambda _: j),
        mutation.map(lambda m: lambda data: mutate(data, *m)),
        handmade_fields().map(lambda f: lambda data: data + f),
        mutation.map(lambda m: lambda data: mutate(data, *m)),
    )


def raw(method: str, catalogue: Catalogue) -> st.SearchStrategy[Call]:
    """Calls of `method` with bytes that are mostly not a valid request: a valid request (each
    message of a valid stream) spoilt by one of `_changes`."""
    label = method + " (raw)"
    valid = structured(method, catalogue)
    if METHODS[method][1] == "stream":

        @st.composite
        def messages(draw: st.DrawFn) -> tuple[bytes, ...]:
            out = []
            for message in draw(valid).body[:6] or (
                b"",
            ):  # a loop: hypothesis looks for draw() in the body
                out.append(draw(_changes())(message))
            return tuple(out)

        return messages().map(
            lambda bodies: Call(
                label,
                method,
                bodies,
                lambda: f"{len(bodies)} messages: " + " | ".join(_hex(b, 120) for b in bodies[:3]),
            )
        )
    return st.tuples(valid, _changes()).map(lambda vc: _raw_call(label, method, vc[1](vc[0].body)))


def _raw_call(label: str, method: str, body: bytes) -> Call:
    return Call(label, method, body, lambda: _hex(body, 300))


def _hex(data: bytes, limit: int) -> str:
    return (
        f"{data[: limit // 2].hex()}… ({len(data)} bytes)" if len(data) > limit // 2 else data.hex()
    )


def oversize(method: str) -> Call:
    """A message just over the server's message limit (an unknown field of OVERSIZE_BYTES)."""
    body = length_delimited(2047, b"A" * OVERSIZE_BYTES)
    return Call(
        method + " (raw)",
        method,
        (body,) if METHODS[method][1] == "stream" else body,
        lambda: f"one unknown field of {OVERSIZE_BYTES:,} bytes",
    )


def calls(method: str, catalogue: Catalogue, family: str) -> st.SearchStrategy[Call]:
    """Calls of `method`: `structured` ones or `raw` bytes."""
    return structured(method, catalogue) if family == "structured" else raw(method, catalogue)
