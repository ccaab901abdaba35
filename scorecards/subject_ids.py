"""Subject id check characters: GB 11643 (resident id) and GB 32100 (unified social credit code).

Both checks run on every evaluation, so the valid case is made cheap: the weighted sums are read
as one integer in a suitable base (see `_weighted_sum_*`), and a birth date is checked against a
table of month-days instead of building a `date`. The reasons for an invalid id are unchanged.
"""

from __future__ import annotations

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(_USCC_CHARS)}
_USCC_ALLOWED = frozenset(_USCC_CHARS)
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# every MMDD of a leap year; 29 February is then checked against the year
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MMDD = frozenset(
    f"{m:02d}{d:02d}" for m, days in enumerate(_MONTH_DAYS, 1) for d in range(1, days + 1)
)


def _weighted_sum_11643(body: str) -> int:
    """Σ digit × weight (mod 11), the GB 11643 weights being 2^(17-i) mod 11 for i = 0..16.

    Read the 17 digits as a number in base 13: that is Σ digit × 13^(16-i), and since
    13 ≡ 2 (mod 11), it is ≡ Σ digit × 2^(16-i); twice that is the weighted sum (mod 11).
    `body` must be 17 ASCII digits (int() would also take letters and underscores)."""
    return 2 * int(body, 13) % 11


def _weighted_sum_32100(body: str) -> int:
    """Σ value × weight (mod 31), the GB 32100 weights being 3^i mod 31 for i = 0..16.

    Each allowed character is written as the base-34 digit of its value (0-9, a-u), the 17
    characters reversed and read in base 34: since 34 ≡ 3 (mod 31), that number is ≡ the
    weighted sum. `body` must be 17 allowed characters."""
    return int(body[::-1].translate(_USCC_TO_BASE34), 34) % 31


_USCC_TO_BASE34 = str.maketrans(
    {ch: "0123456789abcdefghijklmnopqrstu"[i] for i, ch in enumerate(_USCC_CHARS)}
)


def _is_date(yyyymmdd: str) -> bool:
    """Whether 8 ASCII digits are a calendar date (year 0001-9999, as `datetime.date` takes)."""
    mmdd = yyyymmdd[4:]
    if mmdd not in _MMDD or yyyymmdd[:4] == "0000":
        return False
    if mmdd == "0229":
        y = int(yyyymmdd[:4])
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return True


def resident_id_problem(value: str) -> str | None:
    """Why `value` is not a valid 18-character resident id (GB 11643), or None if it is."""
    # the common case, a valid id, in as few steps as possible; any doubt: the reasons below
    # (_is_date and _weighted_sum_11643 written out: this runs on every evaluation of a person)
    if len(value) == 18:
        body = value[:17]
        if body.isdigit() and body.isascii():
            mmdd = value[10:14]
            if (
                mmdd in _MMDD
                and value[6:10] != "0000"
                and (mmdd != "0229" or _is_date(value[6:14]))
                and value[17] == _ID_CHECK[2 * int(body, 13) % 11]
            ):
                return None
    return _resident_id_reason(value)


def _resident_id_reason(value: str) -> str | None:
    if len(value) != 18:
        return f"a resident id has 18 characters, this one has {len(value)}"
    body, check = value[:17], value[17]
    if not body.isascii() or not body.isdigit() or not (check.isdigit() or check == "X"):
        return "a resident id is 17 digits and a check character (a digit or X)"
    if not _is_date(body[6:14]):
        return f"the birth date {body[6:14]} in the resident id is not a date"
    expected = _ID_CHECK[_weighted_sum_11643(body)]
    if check != expected:
        return f"the check character is {check}, GB 11643 gives {expected}"
    return None


def uscc_problem(value: str) -> str | None:
    """Why `value` is not a valid unified social credit code (GB 32100), or None if it is."""
    if len(value) != 18:
        return f"a unified social credit code has 18 characters, this one has {len(value)}"
    if not _USCC_ALLOWED.issuperset(value):
        bad = sorted({ch for ch in value if ch not in _USCC_VALUE})
        return f"characters not allowed in a unified social credit code: {''.join(bad)}"
    expected = _USCC_CHARS[(31 - _weighted_sum_32100(value[:17])) % 31]
    if value[17] != expected:
        return f"the check character is {value[17]}, GB 32100 gives {expected}"
    return None


def normalize(value: str) -> str:
    """Ids are compared upper-case and without surrounding blanks (a typed 'x' is 'X')."""
    return value.strip().upper()


def mask_id(value: str) -> str:
    """Keep the first 4 and last 2 characters: enough to tell ids apart in an incident or on a
    printed report, not enough to read the person's id (logs, the credit report)."""
    if len(value) <= 6:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 6) + value[-2:]


def mask_name(name: str) -> str:
    """A person's name with only its first character kept (张三丰 -> 张**)."""
    return name[:1] + "*" * (len(name) - 1)
