"""Subject id check characters: GB 11643 (resident id) and GB 32100 (unified social credit code).

SCORECARDS.md §1: a person's 18-character resident id and an organization's 18-character unified
social credit code are validated; a typed lowercase `x` is the check character `X`.
"""

from __future__ import annotations

import pytest
from sector_credit.scorecards.subject_ids import normalize, resident_id_problem, uscc_problem

# (id, fragment of the reason; None: valid)
RESIDENT_IDS = [
    ("11010519491231002X", None),  # the GB 11643 example: check character X
    ("440524188001010014", None),  # the other standard example: check digit 4
    ("11010119900307803X", None),
    ("110105194912310021", "GB 11643 gives X"),  # wrong check digit
    ("110105194912310020", "GB 11643 gives X"),
    ("11010519491231002Y", "17 digits and a check character"),  # Y is no check character
    ("11010519491231002x", "17 digits and a check character"),  # lowercase only after normalize
    ("1101051949123100", "has 16"),  # too short
    ("11010519491231002X0", "has 19"),  # too long
    ("", "has 0"),
    ("110105194902300021", "birth date 19490230"),  # 30 February
    ("110105194913010021", "birth date 19491301"),  # month 13
    ("11010519491231A02X", "17 digits"),  # a letter in the body
    ("１１010519491231002X", "17 digits"),  # full-width digits are not ASCII digits
]

# (code, fragment of the reason; None: valid)
USCCS = [
    ("91350100M000100Y43", None),  # the GB 32100 example
    ("914403001922038216", None),  # check character a digit
    ("9144030071526726XG", None),  # check character a letter
    ("91330100799655058B", None),
    ("91110108551385082Q", None),
    ("91350100M000100Y44", "GB 32100 gives 3"),  # wrong check character
    ("91350100M000100Y4", "has 17"),  # too short
    ("91350100M000100Y430", "has 19"),  # too long
    ("91350100I000100Y43", "not allowed in a unified social credit code: I"),
    ("9135010OM000100Y43", "not allowed in a unified social credit code: O"),
    ("91350100Z000100Y43", "not allowed in a unified social credit code: Z"),
    ("91350100S000100Y43", "not allowed in a unified social credit code: S"),
    ("91350100V000100Y43", "not allowed in a unified social credit code: V"),
    ("91350100m000100y43", "not allowed"),  # lowercase only after normalize
]


@pytest.mark.parametrize(("value", "reason"), RESIDENT_IDS)
def test_resident_id(value: str, reason: str | None) -> None:
    problem = resident_id_problem(value)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem


@pytest.mark.parametrize(("value", "reason"), USCCS)
def test_unified_social_credit_code(value: str, reason: str | None) -> None:
    problem = uscc_problem(value)
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem


@pytest.mark.parametrize(
    ("typed", "normalized"),
    [
        ("11010519491231002x", "11010519491231002X"),
        ("  11010519491231002X\n", "11010519491231002X"),
        ("91350100m000100y43", "91350100M000100Y43"),
    ],
)
def test_normalize_makes_typed_ids_valid(typed: str, normalized: str) -> None:
    assert normalize(typed) == normalized
    check = (
        resident_id_problem if len(normalized) == 18 and normalized[:17].isdigit() else uscc_problem
    )
    assert check(normalize(typed)) is None


def test_every_wrong_check_character_is_refused() -> None:
    """Of the 11 possible resident-id check characters exactly one is right, and of the 31
    code characters exactly one completes a unified social credit code."""
    body = "11010519491231002"
    assert [c for c in "0123456789X" if resident_id_problem(body + c) is None] == ["X"]
    code = "91350100M000100Y4"
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    assert [c for c in chars if uscc_problem(code + c) is None] == ["3"]


# --------------------------------------------------------------------------------------------
# The fast weighted sums and the birth-date table agree with the textbook definitions


def _textbook_11643(body: str) -> int:
    return (
        sum(int(d) * w for d, w in zip(body, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)))
        % 11
    )


def _textbook_32100(body: str) -> int:
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    return sum(chars.index(ch) * w for ch, w in zip(body, weights)) % 31


def test_weighted_sums_agree_with_the_textbook() -> None:
    import random

    from sector_credit.scorecards import subject_ids

    rng = random.Random(11643)
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    for _ in range(5000):
        digits = "".join(rng.choice("0123456789") for _ in range(17))
        assert subject_ids._weighted_sum_11643(digits) == _textbook_11643(digits), digits
        code = "".join(rng.choice(chars) for _ in range(17))
        assert subject_ids._weighted_sum_32100(code) == _textbook_32100(code), code
    for body in ("0" * 17, "9" * 17, "Y" * 17):
        if body.isdigit():
            assert subject_ids._weighted_sum_11643(body) == _textbook_11643(body)
        assert subject_ids._weighted_sum_32100(body) == _textbook_32100(body)


def test_birth_date_table_agrees_with_datetime() -> None:
    import datetime as dt

    from sector_credit.scorecards import subject_ids

    for year in (0, 1, 1900, 1949, 1996, 2000, 2023, 2024, 2100, 9999):
        for month in range(14):
            for day in range(33):
                text = f"{year:04d}{month:02d}{day:02d}"
                try:
                    dt.date(year, month, day)
                    real = True
                except ValueError:
                    real = False
                assert subject_ids._is_date(text) is real, text


def test_the_fast_resident_id_check_agrees_with_the_reasons() -> None:
    """resident_id_problem's shortcut for a valid id accepts exactly what the full check does."""
    import random

    from sector_credit.scorecards import subject_ids

    rng = random.Random(18)
    for _ in range(5000):
        body = (
            f"{rng.randrange(10**6):06d}{rng.choice(['1996', '2000', '1900', '0000', '2024'])}"
            f"{rng.randrange(0, 14):02d}{rng.randrange(0, 32):02d}{rng.randrange(1000):03d}"
        )
        good = body + "10X98765432"[_textbook_11643(body)]
        for value in (
            good,
            body + rng.choice("0123456789Xx"),
            good[:-1],
            good + "1",
            "A" + good[1:],
        ):
            assert resident_id_problem(value) == subject_ids._resident_id_reason(value), value
