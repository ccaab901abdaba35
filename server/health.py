"""Health that tells the truth: `grpc.health.v1` says SERVING only while the stores can be
used, NOT_SERVING while one cannot (PostgreSQL down, the SQLite file removed or its disk
full, a commit stuck, the records tables unreadable or locked), and SERVING again once it
can, without a restart.

Each store has its own check (`EvaluationStore.health_problem`, `RecordStore.health_problem`)
and the services that need it: a service is SERVING while every store it needs passes, the
server as a whole ("") while all do. Each check runs once a second in a thread; one that does
not return within `PROBE_TIMEOUT_S` (a frozen disk, a database that does not answer) counts
as a failure, and no second check of that store starts while it hangs. The event loop only
reads the results, so health answers whatever the disk does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grpc_health.v1 import health, health_pb2

from .logs import log

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 3.0

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Probe:
    """One store's check (why it cannot be used now, or None) and the services needing it."""

    what: str  # "the audit store", for the messages
    check: Callable[[], str | None]
    services: tuple[str, ...]
    problem: str | None = None  # the last check's finding
    running: asyncio.Future[str | None] | None = None  # a check not answered yet


class StoreHealth:
    """Keeps the statuses of the probes' services on `servicer` in step with their checks."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        probes: Sequence[Probe],
        interval: float = PROBE_INTERVAL_S,
    ) -> None:
        self._servicer = servicer
        self._probes = tuple(probes)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._status: dict[str, int] = {}  # as last published

    @property
    def problem(self) -> str | None:
        """The last checks' findings joined; None: every store can be used."""
        found = [p.problem for p in self._probes if p.problem is not None]
        return "; ".join(found) or None

    async def start(self) -> None:
        """SERVING now (the stores were just opened), then follow the checks."""
        await self._publish()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _publish(self) -> None:
        """Each service's status from its stores' findings, where it changed."""
        status: dict[str, int] = {}
        for probe in self._probes:
            for name in ("", *probe.services):
                if status.get(name) != NOT_SERVING:
                    status[name] = SERVING if probe.problem is None else NOT_SERVING
        for name, value in status.items():
            if self._status.get(name) != value:
                await self._servicer.set(name, value)
        self._status = status

    @staticmethod
    def _check(probe: Probe) -> str | None:
        try:
            return probe.check()
        except Exception as exc:  # whatever the check tripped on, the store is not healthy
            return f"{probe.what} check failed ({type(exc).__name__})"

    def _probe(self, loop: asyncio.AbstractEventLoop, probe: Probe) -> asyncio.Future[str | None]:
        """One check in a daemon thread of its own: one that hangs on a frozen disk never
        keeps the process from exiting."""
        future: asyncio.Future[str | None] = loop.create_future()

        def settle(problem: str | None) -> None:
            if not future.done():
                future.set_result(problem)

        def run() -> None:
            problem = self._check(probe)
            try:
                loop.call_soon_threadsafe(settle, problem)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        threading.Thread(target=run, name="health-probe", daemon=True).start()
        return future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for probe in self._probes:
                if probe.running is None:
                    probe.running = self._probe(loop, probe)
            await asyncio.wait(
                {p.running for p in self._probes if p.running}, timeout=PROBE_TIMEOUT_S
            )
            for probe in self._probes:
                assert probe.running is not None
                if probe.running.done():
                    problem = probe.running.result()
                    probe.running = None
                else:  # still running: waited for again next round, never doubled
                    problem = (
                        f"{probe.what} did not answer its health check within"
                        f" {PROBE_TIMEOUT_S:.0f} s"
                    )
                if problem is None and probe.problem is not None:
                    log.info(f"{probe.what} healthy again; serving", was=probe.problem)
                elif problem is not None and probe.problem is None:
                    log.warning(f"{probe.what} cannot be used; health NOT_SERVING", reason=problem)
                probe.problem = problem
            await self._publish()
            await asyncio.sleep(self._interval)
