"""What every `credit` command shares: the exit codes, the session the global options make
(where to connect, as whom, in which language), the two output streams, and the options and
argument checks more than one command takes.

A command gets the session with `@click.pass_obj` and returns its exit code; it raises
`UsageError` for a bad argument found after parsing (exit 2), and lets a `CreditError` of the
client through (the group in `app.py` turns it into exit 1 or 3, in one place).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
import grpc

from ..aio import AsyncCreditClient
from ..channel import Deadlines, tls_credentials
from ..client import CreditClient
from ..errors import CreditError
from ..inputs import date_value
from ..render import Style, colour_wanted

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
SERVER_ENV = "SECTOR_CREDIT_SERVER"
CALLER_ENV = "SECTOR_CREDIT_CALLER"
PURPOSE_ENV = "SECTOR_CREDIT_PURPOSE"
CA_ENV, CERT_ENV, KEY_ENV = "SECTOR_CREDIT_CA", "SECTOR_CREDIT_CERT", "SECTOR_CREDIT_KEY"
TOKEN_ENV = "SECTOR_CREDIT_TOKEN"
LANGS = ("zh", "en", "both")

F = TypeVar("F", bound=Callable[..., Any])


class UsageError(Exception):
    """A bad argument or file found after parsing: `credit: error: …`, exit 2."""


class Output:
    """Where a command writes: stdout for results, stderr for problems."""

    def __init__(self, stdout: TextIO, stderr: TextIO):
        self.stdout, self.stderr = stdout, stderr
        self.style = Style(colour_wanted(stdout))
        self.err_style = Style(colour_wanted(stderr))

    def lines(self, lines: list[str]) -> None:
        for line in lines:
            self.stdout.write(line + "\n")

    def json(self, data: object) -> None:
        self.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")

    def error(self, error: CreditError, prefix: str = "error") -> None:
        """The error, then each field violation on its own line."""
        s = self.err_style
        self.stderr.write(f"{s(prefix + ':', 'red', 'bold')} {error.headline}\n")
        for v in error.violations:
            self.stderr.write(f"  {s(v.field, 'bold')}: {v.description}\n")


@dataclasses.dataclass
class Session:
    """The global options of `credit`, as the commands (plugins' included) use them."""

    out: Output
    server: str
    caller: str | None
    tls: bool = False
    ca_file: str | None = None
    cert: str | None = None
    key: str | None = None
    token: str | None = None
    timeout: float | None = None
    lang: str = "both"

    def client(self) -> CreditClient:
        try:
            return CreditClient(
                self.server,
                secure=self._credentials(),
                caller=self.caller,
                deadlines=self._deadlines(),
                token=self.token,
            )
        except ValueError as exc:  # a caller or token that is not ASCII
            raise UsageError(str(exc)) from None

    def async_client(self) -> AsyncCreditClient:
        try:
            return AsyncCreditClient(
                self.server,
                secure=self._credentials(),
                caller=self.caller,
                deadlines=self._deadlines(),
                token=self.token,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def language(self, given: str | None) -> str:
        """A command's own `--lang`, else the one given before the command."""
        return given or self.lang

    def _credentials(self) -> bool | grpc.ChannelCredentials:
        if self.ca_file or self.cert or self.key:
            try:
                return tls_credentials(self.ca_file, self.cert, self.key)
            except OSError as exc:
                raise UsageError(f"{exc.filename}: {exc.strerror}") from None
            except ValueError as exc:
                raise UsageError(f"--cert and --key: {exc}") from None
        return self.tls

    def _deadlines(self) -> Deadlines:
        if self.timeout is None:
            return Deadlines()
        return Deadlines(unary=self.timeout, batch=max(self.timeout, 120.0), stream=None)


# -- options more than one command takes ---------------------------------------------------


def stack_options(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Several click decorators as one, applied in the order written."""

    def apply(fn: F) -> F:
        for decorator in reversed(decorators):
            fn = decorator(fn)
        return fn

    return apply


json_option = click.option("--json", "as_json", is_flag=True, help="print JSON")

lang_option = click.option(
    "--lang",
    type=click.Choice(LANGS),
    default=None,
    help="language of titles in tables (default: the one given before the command, or both)",
)

purpose_options = stack_options(
    click.option(
        "--purpose",
        metavar="CODE",
        envvar=PURPOSE_ENV,
        default=None,
        help="why you read these evaluations, a purpose code of the service (e.g. "
        "bid_review, recruitment_review), recorded in its query audit",
    ),
    click.option(
        "--purpose-note", metavar="TEXT", help="free text about the purpose (a case number)"
    ),
)

input_options = stack_options(
    click.option(
        "--set",
        "values",
        multiple=True,
        metavar="NAME=VALUE",
        help="an indicator value (repeatable); typed by the scorecard's definition",
    ),
    click.option(
        "--file",
        "values_file",
        type=click.Path(path_type=Path),
        metavar="JSON",
        help='indicator values as a JSON object ({"violations_3pt": 1, …}); --set wins over it',
    ),
    click.option(
        "--as-of", metavar="DATE", help="the day the evaluation speaks for (default today)"
    ),
    click.option("--version", help="a scorecard version (default: the one in force on as_of)"),
)


def limit_option(default: int) -> Callable[[F], F]:
    return click.option(
        "--limit",
        type=int,
        default=default,
        metavar="N",
        help=f"at most N (default {default}; 0: all)",
    )


# -- argument checks -----------------------------------------------------------------------


def date_arg(text: str | None, flag: str) -> str | None:
    if text is None:
        return None
    try:
        return date_value(text).isoformat()
    except ValueError:
        raise UsageError(f"{flag}: expected a date YYYY-MM-DD, not {text!r}") from None


def indicator_values(pairs: tuple[str, ...], path: Path | None) -> dict[str, object]:
    """`--file` (a JSON object) and then each `--set NAME=VALUE` over it."""
    values: dict[str, object] = {}
    if path is not None:
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"), parse_float=Decimal)
        except OSError as exc:
            raise UsageError(f"--file {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise UsageError(f"--file {path}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UsageError(f"--file {path}: expected a JSON object of indicator values")
        values.update(data)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set {pair!r}: expected NAME=VALUE")
        values[name.strip()] = value
    return values


def check_limit(limit: int) -> None:
    if limit < 0:
        raise UsageError("--limit must not be negative")


T = TypeVar("T")


def collect(
    fetch: Callable[[int, str], tuple[Sequence[T], str]], limit: int
) -> tuple[list[T], bool]:
    """Up to `limit` items (0: all) of a paged List, asking `fetch(page_size, page_token)` for
    pages of at most 100; and whether there were more than `limit`."""
    check_limit(limit)
    found: list[T] = []
    token = ""
    while True:
        want = limit - len(found) if limit else 0
        items, token = fetch(min(want, 100) if want else 100, token)
        found.extend(items)
        if not token:
            return found[:limit] if limit else found, False
        if limit and len(found) >= limit:
            return found[:limit], True
