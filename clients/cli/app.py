"""The `credit` group: its global options, the built-in commands, the commands plugins add
(`register_commands`, docs/plugins.md), and the one place that turns errors into exit codes.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import click
import pluggy

from ..channel import DEFAULT_TARGET
from ..errors import CreditError, UnavailableError
from .audit import audit
from .batch import batch
from .evaluations import evaluate, get, history, report, whatif
from .keys import keys
from .records import records
from .scorecards import golden, scorecards
from .session import (
    CA_ENV,
    CALLER_ENV,
    CERT_ENV,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    KEY_ENV,
    LANGS,
    SERVER_ENV,
    TOKEN_ENV,
    Output,
    Session,
    UsageError,
)

BUILTIN_COMMANDS: tuple[click.Command, ...] = (
    scorecards,
    evaluate,
    batch,
    history,
    get,
    audit,
    whatif,
    report,
    keys,
    records,
    golden,
)

EPILOG = (
    "Exit codes: 0 ok, 1 evaluation or validation errors, 2 usage, 3 server unavailable, "
    "130 interrupted."
)


def _user() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in some containers
        return "cli"


class CreditGroup(click.Group):
    """The root group: runs a command and maps what it raises to the documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _out(ctx).stderr.write(f"{ctx.command_path}: error: {exc}\n")
            return EXIT_USAGE
        except UnavailableError as exc:
            out = _out(ctx)
            out.error(exc, "server unavailable")
            server = ctx.obj.server if isinstance(ctx.obj, Session) else DEFAULT_TARGET
            out.stderr.write(
                f"  (is the service running at {server}? set --server or {SERVER_ENV})\n"
            )
            return EXIT_UNAVAILABLE
        except CreditError as exc:
            _out(ctx).error(exc)
            return EXIT_FAILED
        except KeyboardInterrupt:
            _out(ctx).stderr.write("interrupted\n")
            return EXIT_INTERRUPTED
        except BrokenPipeError as exc:  # past click, which would make it exit 1
            raise ReaderLeft from exc


class ReaderLeft(Exception):
    """`credit … | head`: the reader of stdout left (run() exits as SIGPIPE would)."""


def _out(ctx: click.Context) -> Output:
    return ctx.obj.out if isinstance(ctx.obj, Session) else ctx.obj


@click.group(
    "credit",
    cls=CreditGroup,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--server",
    metavar="HOST:PORT",
    envvar=SERVER_ENV,
    default=DEFAULT_TARGET,
    show_envvar=True,
    help=f"the service's address (default {DEFAULT_TARGET})",
)
@click.option(
    "--caller",
    envvar=CALLER_ENV,
    default=None,
    show_envvar=True,
    help="a label sent as x-caller (the server records who --cert or --token prove; "
    "default: cli:your user name)",
)
@click.option(
    "--tls", is_flag=True, help="connect with TLS (the system's root certificates, or --ca)"
)
@click.option(
    "--ca",
    "--ca-file",
    "ca_file",
    metavar="PEM",
    envvar=CA_ENV,
    show_envvar=True,
    help="root certificates that sign the server's (implies --tls)",
)
@click.option(
    "--cert",
    metavar="PEM",
    envvar=CERT_ENV,
    show_envvar=True,
    help="client certificate for mutual TLS (implies --tls)",
)
@click.option(
    "--key", metavar="PEM", envvar=KEY_ENV, show_envvar=True, help="private key of --cert"
)
@click.option(
    "--token",
    metavar="TOKEN",
    envvar=TOKEN_ENV,
    show_envvar=True,
    help="API key or JWT, sent as `authorization: Bearer` (prefer the variable: a "
    "flag shows in the process list)",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="deadline of each call (default 10; a batch chunk 120)",
)
@click.option(
    "--lang",
    type=click.Choice(LANGS),
    default="both",
    help="language of titles in tables (default both)",
)
@click.pass_context
def credit(
    ctx: click.Context,
    server: str,
    caller: str | None,
    tls: bool,
    ca_file: str | None,
    cert: str | None,
    key: str | None,
    token: str | None,
    timeout: float | None,
    lang: str,
) -> None:
    """Transparent, point-based sector credit grades: the command line (docs/cli.md)."""
    ctx.obj = Session(
        ctx.obj,
        server=server,
        caller=(_user() if caller is None else caller) or None,
        tls=tls,
        ca_file=ca_file or None,
        cert=cert or None,
        key=key or None,
        token=token or None,
        timeout=timeout,
        lang=lang,
    )


def build_cli(plugins: pluggy.PluginManager | None = None) -> click.Group:
    """The `credit` group: the built-in commands, then those the plugins' `register_commands`
    add (the installed plugins unless `plugins` is given)."""
    from sector_credit.plugins import get_plugin_manager

    group = CreditGroup(
        credit.name,
        params=credit.params,
        callback=credit.callback,
        help=credit.help,
        epilog=credit.epilog,
        context_settings=credit.context_settings,
    )
    for command in BUILTIN_COMMANDS:
        group.add_command(command)
    pm = plugins if plugins is not None else get_plugin_manager()
    pm.hook.register_commands(cli=group)
    return group


def main(
    argv: Sequence[str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    plugins: pluggy.PluginManager | None = None,
) -> int:
    """Run `credit` with `argv` (default: the process's), writing to `stdout` and `stderr`:
    the exit code."""
    out = Output(stdout or sys.stdout, stderr or sys.stderr)
    group = build_cli(plugins)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with contextlib.redirect_stdout(out.stdout), contextlib.redirect_stderr(out.stderr):
            code = group.main(args, prog_name="credit", standalone_mode=False, obj=out)
    except click.exceptions.Exit as exc:  # --help
        return int(exc.exit_code)
    except click.NoSuchOption as exc:
        shown: click.UsageError = exc
        name = exc.option_name
        if name in {o for p in group.params for o in p.opts} and exc.ctx is not None:
            where = exc.ctx.command_path.removeprefix("credit").strip()
            shown = click.UsageError(
                f"{exc.message} {name} is an option of credit itself: give "
                f"it before the command (credit {name} … {where} …), or "
                "set its variable",
                ctx=exc.ctx,
            )
        shown.show(file=out.stderr)
        return shown.exit_code
    except click.ClickException as exc:  # a bad flag or value: click's message, exit 2
        exc.show(file=out.stderr)
        return exc.exit_code
    except click.Abort:
        out.stderr.write("interrupted\n")
        return EXIT_INTERRUPTED
    return code if isinstance(code, int) else 0


def run() -> None:
    """The console script."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except (BrokenPipeError, ReaderLeft):  # `credit … | head`: no traceback, as other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)  # 128 + SIGPIPE, what a shell reports for a tool killed by SIGPIPE
