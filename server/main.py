"""The console entry point: `sector-credit-server [serve|migrate] [flags]` (see --help)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from . import settings as settings_mod
from .logs import configure, log

EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE: the database could not be reached at start-up
EXIT_CONFIG = 78  # sysexits EX_CONFIG: the security settings do not allow serving


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["keys"]:
        from .security.keys_cli import main as keys_main

        return keys_main(args[1:])
    command, settings = settings_mod.parse(args)
    configure(settings.log_format, settings.log_level)
    from .db.errors import StoreUnavailable
    from .security.setup import SecuritySetupError

    try:
        return _run(command, settings)
    except SecuritySetupError as exc:
        log.error("not serving", error=str(exc))
        return EXIT_CONFIG
    except StoreUnavailable as exc:  # one log line for the operator, not a traceback
        log.error("the audit database is unavailable", command=command, error=str(exc),
                  database=_safe_url(settings.database_url))
        return EXIT_UNAVAILABLE


def _run(command: str, settings: settings_mod.Settings) -> int:
    if command == "migrate":
        from .db.migrate import upgrade

        upgrade(settings.database_url)
        log.info("migrated", database=_safe_url(settings.database_url))
        return 0
    if settings.workers > 1:
        from .workers import run_workers

        return run_workers(settings)
    from .app import serve

    _install_uvloop()
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:  # a second Ctrl-C while draining
        return 130
    return 0


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _safe_url(url: str) -> str:
    """A database URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"


if __name__ == "__main__":
    sys.exit(main())
