"""Subject id check characters: GB 11643 (resident id) and GB 32100 (unified social credit code)."""

from __future__ import annotations

import datetime as dt

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(_USCC_CHARS)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def resident_id_problem(value: str) -> str | None:
    """Why `value` is not a valid 18-character resident id (GB 11643), or None if it is."""
    if len(value) != 18:
        return f"a resident id has 18 characters, this one has {len(value)}"
    body, check = value[:17], value[17]
    if not body.isascii() or not body.isdigit() or not (check.isdigit() or check == "X"):
        return "a resident id is 17 digits and a check character (a digit or X)"
    try:
        dt.date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return f"the birth date {body[6:14]} in the resident id is not a date"
    expected = _ID_CHECK[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS)) % 11]
    if check != expected:
        return f"the check character is {check}, GB 11643 gives {expected}"
    return None


def uscc_problem(value: str) -> str | None:
    """Why `value` is not a valid unified social credit code (GB 32100), or None if it is."""
    if len(value) != 18:
        return f"a unified social credit code has 18 characters, this one has {len(value)}"
    bad = sorted({ch for ch in value if ch not in _USCC_VALUE})
    if bad:
        return f"characters not allowed in a unified social credit code: {''.join(bad)}"
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(value[:17], _USCC_WEIGHTS))
    expected = _USCC_CHARS[(31 - total % 31) % 31]
    if value[17] != expected:
        return f"the check character is {value[17]}, GB 32100 gives {expected}"
    return None


def normalize(value: str) -> str:
    """Ids are compared upper-case and without surrounding blanks (a typed 'x' is 'X')."""
    return value.strip().upper()
