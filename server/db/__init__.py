"""Persistence: the audit store of evaluations (SQLite file or PostgreSQL).

- `store.EvaluationStore`: group-committed writes and reads for the servicer.
- `models`: the ORM tables; `migrate`: Alembic migrations (`upgrade`, `downgrade`).
- `engine`: the one place engines are built; `ids`: evaluation ids (UUIDv7).
"""

from .errors import (
    InvalidListRequest,
    InvalidRecord,
    RequestConflict,
    StoreError,
    StoreUnavailable,
)
from .migrate import downgrade, upgrade
from .store import (
    EvaluationRecord,
    EvaluationStore,
    Page,
    SaveOutcome,
    StoredEvaluation,
    StoreStats,
)

__all__ = [
    "EvaluationRecord",
    "EvaluationStore",
    "InvalidListRequest",
    "InvalidRecord",
    "Page",
    "RequestConflict",
    "SaveOutcome",
    "StoreError",
    "StoreStats",
    "StoreUnavailable",
    "StoredEvaluation",
    "downgrade",
    "upgrade",
]
