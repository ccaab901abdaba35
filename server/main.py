"""The console entry point: `sector-credit-server [serve|migrate] [flags]` (see --help)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from . import settings as settings_mod
from .logs import configure, log
from .startup import EXIT_UNAVAILABLE, StartupFailed, masked_url


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["keys"]:
        from .security.keys_cli import main as keys_main

        return keys_main(args[1:])
    command, settings = settings_mod.parse(args)
    configure(settings.log_format, settings.log_level)
    from .db.errors import StoreUnavailable

    try:
        return _run(command, settings)
    except StartupFailed as exc:  # one log line for the operator, not a traceback
        log.error(exc.event, command=command, exit_code=exc.exit_code, **exc.fields)
        return exc.exit_code
    except StoreUnavailable as exc:
        log.error(
            "the audit database is unavailable",
            command=command,
            error=str(exc),
            detail=exc.detail,
            database=masked_url(settings.database_url),
            exit_code=EXIT_UNAVAILABLE,
        )
        return EXIT_UNAVAILABLE


def _run(command: str, settings: settings_mod.Settings) -> int:
    if command == "backup":
        from .db.backup import BackupFailed, backup

        try:
            path = backup(settings.database_url, settings.backup_path)
        except BackupFailed as exc:
            log.error("backup failed", error=str(exc))
            return 1
        log.info(
            "backup written",
            path=str(path),
            bytes=path.stat().st_size,
            database=masked_url(settings.database_url),
        )
        return 0
    if command == "migrate":
        from .db.migrate import upgrade
        from .startup import check_database_url

        check_database_url(settings.database_url)
        upgrade(settings.database_url)
        log.info("migrated", database=masked_url(settings.database_url))
        return 0
    if command == "check-store":
        from .check_store import check_store

        return asyncio.run(check_store(settings))
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


if __name__ == "__main__":
    sys.exit(main())
