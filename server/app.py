"""Building and running the gRPC server: `create_server` (tests bind port 0) and `serve`.

Start-up order: the addresses to listen on, plugins and scorecards, the database URL,
migrations, the store, the server; health turns SERVING only once all of them are ready. A
step that fails raises `startup.StartupFailed` (one log line, a documented exit code).
SIGTERM/SIGINT: health NOT_SERVING, stop accepting calls, let in-flight calls finish within
the grace period, drain the store, exit 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import pluggy
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sector_credit.plugins import get_plugin_manager
from sector_credit.plugins.manager import hook_per_plugin, plugin_names
from sector_credit.scorecards.registry import ScorecardRegistry, build_registry
from sector_credit.v1 import access_log_service_pb2 as access_pb
from sector_credit.v1 import access_log_service_pb2_grpc as access_pb_grpc
from sector_credit.v1 import api_key_service_pb2 as kpb
from sector_credit.v1 import api_key_service_pb2_grpc as kpb_grpc
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import records_service_pb2 as rpb
from sector_credit.v1 import records_service_pb2_grpc as rpb_grpc

from . import errors
from .access import QueryAudit
from .access_log import AccessLogServicer
from .db import EvaluationStore, StoredEvaluation, StoreError
from .db.records import RecordStore
from .health import Probe, StoreHealth
from .interceptors import edge_interceptors
from .logs import log
from .metrics import Metrics
from .records_servicer import RecordFiller, RecordServicer
from .security import open_disclosure
from .security import setup as security_setup
from .security.admin import ApiKeyServicer
from .servicer import CreditEvaluationServicer, add_to_server
from .settings import Settings
from .startup import (
    check_database_url,
    check_listen,
    check_scorecard_paths,
    listen_failed,
    scorecards_failed,
)

if TYPE_CHECKING:
    from .tls_front import TlsFront

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["CreditEvaluationService"].full_name
ACCESS_LOG_NAME = access_pb.DESCRIPTOR.services_by_name["AccessLogService"].full_name
KEYS_NAME = kpb.DESCRIPTOR.services_by_name["ApiKeyService"].full_name
RECORDS_NAME = rpb.DESCRIPTOR.services_by_name["RecordService"].full_name
HEALTH_NAME = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
SERVED_NAMES = (SERVICE_NAME, ACCESS_LOG_NAME, KEYS_NAME, RECORDS_NAME, HEALTH_NAME)
"""Every service this server registers, listed over reflection."""
_HEALTH_NAMES = ("", SERVICE_NAME, ACCESS_LOG_NAME, KEYS_NAME, RECORDS_NAME)
"""What health reports: the server (""), and each service (each needs the audit store; the
RecordService the records store too)."""


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    metrics_port: int
    health: health.aio.HealthServicer
    store: EvaluationStore
    registry: ScorecardRegistry
    metrics: Metrics
    settings: Settings
    store_health: StoreHealth
    security: security_setup.Security
    records: RecordStore | None = None
    front: TlsFront | None = None

    async def stop(self, grace: float | None = None) -> None:
        """Drain: NOT_SERVING, finish in-flight calls within `grace`, then close the store."""
        await self.store_health.stop()
        await self.health.enter_graceful_shutdown()
        if self.front is not None:
            self.front.stop_accepting()
        await self.server.stop(self.settings.grace_seconds if grace is None else grace)
        if self.front is not None:
            await self.front.close()
        await self.store.close()
        if self.records is not None:
            await self.records.close()
        self.security.close()
        stats = self.store.stats
        log.info(
            "audit store closed",
            commits=stats.commits,
            rows=stats.rows,
            largest_group=stats.largest_group,
            groups_failed=stats.groups_failed,
            row_by_row=stats.row_by_row,
        )


def load_registry(settings: Settings) -> tuple[ScorecardRegistry, pluggy.PluginManager]:
    """The plugins (minus the blocked ones) and the scorecards they and the settings name;
    raises StartupFailed (exit 5) when a scorecard or a plugin cannot be used."""
    check_scorecard_paths(settings.scorecard_paths)
    try:
        pm = get_plugin_manager(
            blocked=settings.blocked_plugins, only=settings.only_plugins or None
        )
        registry = build_registry(pm, settings.scorecard_paths)
    except Exception as exc:
        raise scorecards_failed(exc) from None
    log.info(
        "scorecards loaded", plugins=plugin_names(pm), scorecards=len(registry), ids=registry.ids()
    )
    return registry, pm


async def create_server(settings: Settings, metrics: Metrics | None = None) -> RunningServer:
    """Load scorecards, migrate, open the store, bind and start; returns once SERVING."""
    metrics = metrics or Metrics()
    if settings.workers == 1:  # workers share a port the supervisor holds with SO_REUSEPORT
        check_listen(settings.listen, "gRPC")
    if settings.metrics_port:
        check_listen(f"{settings.metrics_host}:{settings.metrics_bind_port}", "metrics")
    # an address that can be listened on, but not without TLS and authentication: exit 78
    # (before anything else is logged: the refusal is the start-up's one line)
    checked = security_setup.check(settings)
    open_disclosure(
        settings.public_disclosure
    )  # GetDisclosure without credentials, if so configured
    registry, pm = load_registry(settings)
    check_database_url(settings.database_url)
    security = security_setup.build(settings, checked)  # its API keys use the database
    if settings.migrate:
        from .db.migrate import upgrade  # Alembic only where migrations run

        await asyncio.to_thread(upgrade, settings.database_url)
    store = await EvaluationStore.open(
        settings.database_url,
        on_commit=metrics.observe_commit,
        scorecards=[c.card for c in registry.all()],
        access_code=_access_code,
    )

    health_servicer = health.aio.HealthServicer()
    await health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    for name in _HEALTH_NAMES:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    tz = settings.tz

    def today() -> dt.date:
        return dt.datetime.now(tz).date()

    hooks = hook_per_plugin(pm, "evaluation_stored")

    def on_stored(stored: StoredEvaluation) -> None:
        summary = stored_summary(stored)
        for plugin, evaluation_stored in hooks:  # each separately: one failing never hides another
            try:
                evaluation_stored(evaluation=summary)
            except Exception:  # the evaluation is stored already; a plugin never fails it
                log.exception("evaluation_stored hook failed", plugin=plugin)

    audit = QueryAudit(store, settings.purposes)
    _register_refusals(audit)
    records = RecordStore(settings.database_url)
    servicer = CreditEvaluationServicer(
        registry,
        store,
        metrics,
        today,
        settings.batch_limit,
        on_stored=on_stored if hooks else None,
        max_reply_bytes=settings.max_message_bytes,
        audit=audit,
        records=RecordFiller(records, registry.record_kinds),
    )

    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # workers share the public port; behind the TLS front each has its own private one
        ("grpc.so_reuseport", 1 if settings.workers > 1 and security.connections is None else 0),
        *connection_options(settings),
    ]
    server = grpc.aio.server(
        interceptors=edge_interceptors(metrics, security.interceptor),
        options=options,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs or None,
    )
    add_to_server(servicer, server)  # the generated registration, replies as bytes
    access_pb_grpc.add_AccessLogServiceServicer_to_server(AccessLogServicer(store, tz), server)
    rpb_grpc.add_RecordServiceServicer_to_server(
        RecordServicer(records, registry.record_kinds, audit, today, registry.id_schemes, registry),
        server,
    )
    kpb_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(security.keys), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(SERVED_NAMES + (reflection.SERVICE_NAME,), server)
    front = None
    try:
        if security.connections is not None:  # the TLS front serves the public port
            assert security.tls is not None
            # imported only here: pyOpenSSL and cryptography are about 9 MB resident in each
            # server process, which one without the front would hold for nothing (issue 12)
            from OpenSSL import SSL

            from .tls_front import PRIVATE_HOST, TlsFront

            try:
                front = TlsFront(security.tls, security.connections, settings.handshake_seconds)
            except (OSError, SSL.Error) as exc:
                await store.close()
                await records.close()
                raise security_setup.SecuritySetupError(
                    f"TLS files cannot be used: {exc}"
                ) from None
            port = server.add_insecure_port(f"{PRIVATE_HOST}:0")
        elif security.tls is not None:
            port = server.add_secure_port(settings.listen, security.tls.credentials())
        else:
            port = server.add_insecure_port(settings.listen)
    except RuntimeError:  # taken since check_listen: gRPC says only "Failed to bind"
        port = 0
    if port == 0:
        await store.close()
        await records.close()
        raise listen_failed(None, settings.listen, "gRPC")
    await server.start()
    if front is not None:
        try:
            port = await front.start(settings.listen, port, reuse_port=settings.workers > 1)
        except OSError as exc:  # taken since check_listen
            await server.stop(0)
            await store.close()
            await records.close()
            raise listen_failed(exc, settings.listen, "gRPC") from None
    try:
        metrics_port = (
            metrics.serve(settings.metrics_bind_port, settings.metrics_host)
            if settings.metrics_port
            else 0
        )
    except OSError as exc:  # taken since check_listen
        if front is not None:
            await front.close()
        await server.stop(0)
        await store.close()
        await records.close()
        raise listen_failed(
            exc, f"{settings.metrics_host}:{settings.metrics_bind_port}", "metrics"
        ) from None
    store_health = StoreHealth(
        health_servicer,
        [
            Probe("the audit store", store.health_problem, _HEALTH_NAMES[1:]),
            Probe("the records store", records.health_problem, (RECORDS_NAME,)),
        ],
    )
    await store_health.start()  # SERVING, then NOT_SERVING whenever a store cannot be used
    host = settings.listen.rpartition(":")[0]
    log.info(
        "serving",
        address=f"{host}:{port}",
        metrics_port=metrics_port or None,
        database=store.dialect,
        batch_limit=settings.batch_limit,
        timezone=settings.timezone,
        security=security.mode,
        transport=security.transport,
        **(
            {  # behind the TLS front: where it forwards (a direct caller there is refused)
                "client_cert_check": settings.client_cert_check,
                "private_address": f"{PRIVATE_HOST}:{front.upstream_port}",
            }
            if front is not None
            else {}
        ),
        **(
            {"local_mode": "every caller is the local principal with every role"}
            if security.mode == "local"
            else {}
        ),
    )
    return RunningServer(
        server,
        port,
        metrics_port,
        health_servicer,
        store,
        registry,
        metrics,
        settings,
        store_health,
        security,
        records,
        front,
    )


def connection_options(settings: Settings) -> list[tuple[str, int]]:
    """Connections kept tidy (gRPC core channel arguments): a connection that has not sent
    its HTTP/2 preface and SETTINGS within the handshake limit is closed (the handshake
    timeout covers the first SETTINGS frame); one with no call for the idle limit gets a
    GOAWAY; an idle peer is pinged every keepalive interval and dropped when it does not
    answer within 20 s (a half-open connection); clients may ping every 10 s, without calls
    too, and one that pings more often is sent a GOAWAY after 2 strikes."""
    return [
        ("grpc.server_handshake_timeout_ms", int(settings.handshake_seconds * 1000)),
        ("grpc.max_connection_idle_ms", int(settings.connection_idle_seconds * 1000)),
        ("grpc.keepalive_time_ms", int(settings.keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),  # the server's keepalive pings on idle ones
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
    ]


def _access_code(error: StoreError) -> str:
    """The status code of a row the store refused, for its access record (errors.py)."""
    return errors.grpc_code(errors.status_for(error)).name


def _register_refusals(audit: QueryAudit) -> None:
    """Refused calls leave access records: the security module's on_refusal hook. The audit
    of a server created before (tests run several in one process) is replaced, not added to."""
    from .security import on_refusal

    on_refusal[:] = [
        hook for hook in on_refusal if not isinstance(getattr(hook, "__self__", None), QueryAudit)
    ]
    audit.register_refusals(on_refusal)


def stored_summary(stored: StoredEvaluation) -> dict[str, Any]:
    """What the `evaluation_stored` hook receives (see plugins/hookspecs.py)."""
    r = stored.result
    return {
        "name": stored.name,
        "scorecard_id": r.scorecard_id,
        "version": r.version,
        "digest": r.digest,
        "subject": {"kind": r.subject.kind.value, "id": r.subject.id},
        "as_of": r.as_of.isoformat(),
        "grade": r.grade.code,
        "score": None if r.score is None else str(r.score),
        "create_time": stored.created_at.isoformat(),
    }


def freeze_startup_objects() -> None:
    """Move everything start-up made (modules, scorecards, gRPC and SQLAlchemy state: ~90,000
    objects) out of the collector's sight: a full collection then scans only what requests
    made since, instead of pausing the process for tens of milliseconds (the p99 of reads).
    Called once per serving process, after start-up."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings) -> None:
    running = await create_server(settings)
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, running.security.reload)
    # the port line on stdout lets a supervisor or test find a port-0 server
    print(f"listening on port {running.port}", flush=True)
    if running.metrics_port:
        print(f"metrics on port {running.metrics_port}", flush=True)
    await stop.wait()
    log.info("draining", grace_seconds=settings.grace_seconds)
    await running.stop()
    log.info("stopped")
