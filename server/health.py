"""Health that tells the truth: `grpc.health.v1` says SERVING only while the audit store can
commit, NOT_SERVING while it cannot (PostgreSQL down, the SQLite file removed or its disk
full, a commit stuck), and SERVING again once it can, without a restart.

The store's own check (`EvaluationStore.health_problem`) runs once a second in a thread; a
check that does not return within `PROBE_TIMEOUT_S` (a frozen disk, a database that does not
answer) counts as a failure, and no second check starts while it hangs.
The event loop only reads the result, so health answers whatever the disk does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from grpc_health.v1 import health, health_pb2

from .db import EvaluationStore
from .logs import log

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 3.0

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class StoreHealth:
    """Keeps the statuses of `services` on `servicer` in step with the store's check."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        store: EvaluationStore,
        services: Sequence[str],
        interval: float = PROBE_INTERVAL_S,
    ) -> None:
        self._servicer = servicer
        self._store = store
        self._services = tuple(services)
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self.problem: str | None = None  # the last check's finding; None: the store can commit

    async def start(self) -> None:
        """SERVING now (the store was just opened), then follow the checks."""
        await self._publish(SERVING)
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _publish(self, status: int) -> None:  # a ServingStatus value (the stubs: int)
        for name in self._services:
            await self._servicer.set(name, status)

    def _check(self) -> str | None:
        try:
            return self._store.health_problem()
        except Exception as exc:  # whatever the check tripped on, the store is not healthy
            return f"the audit store check failed ({type(exc).__name__})"

    def _probe(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[str | None]:
        """One check in a daemon thread of its own: one that hangs on a frozen disk never
        keeps the process from exiting."""
        future: asyncio.Future[str | None] = loop.create_future()

        def settle(problem: str | None) -> None:
            if not future.done():
                future.set_result(problem)

        def run() -> None:
            problem = self._check()
            try:
                loop.call_soon_threadsafe(settle, problem)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

        threading.Thread(target=run, name="health-probe", daemon=True).start()
        return future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        probe: asyncio.Future[str | None] | None = None
        while True:
            if probe is None:
                probe = self._probe(loop)
            done, _ = await asyncio.wait({probe}, timeout=PROBE_TIMEOUT_S)
            if done:
                problem = probe.result()
                probe = None
            else:  # still running: waited for again next round, never doubled
                problem = (
                    "the audit store did not answer its health check within"
                    f" {PROBE_TIMEOUT_S:.0f} s"
                )
            if (problem is None) != (self.problem is None):
                if problem is None:
                    log.info("store healthy again; serving", was=self.problem)
                    await self._publish(SERVING)
                else:
                    log.warning("store cannot commit; health NOT_SERVING", reason=problem)
                    await self._publish(NOT_SERVING)
            self.problem = problem
            await asyncio.sleep(self._interval)
