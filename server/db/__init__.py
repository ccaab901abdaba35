"""Persistence: the audit store of evaluations (SQLite file or PostgreSQL).

- `store.EvaluationStore`: group-committed writes and reads for the servicer (the API; its
  docstring says which module holds what: rows, documents, group commit, the SQLite and
  PostgreSQL writers, page tokens).
- `models`: the ORM tables; `migrate`: Alembic migrations (`upgrade`, `downgrade`).
- `engine`: the one place engines are built; `ids`: evaluation ids (UUIDv7).
"""

from typing import TYPE_CHECKING

from .errors import (
    InvalidListRequest,
    InvalidRecord,
    RequestConflict,
    StoreError,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from .migrate import downgrade, upgrade
    from .store import (
        AccessPage,
        AccessRecord,
        EvaluationRecord,
        EvaluationStore,
        Page,
        SaveOutcome,
        StoredAccess,
        StoredEvaluation,
        StoreStats,
        UnreadableEvaluation,
    )

__all__ = [
    "AccessPage",
    "AccessRecord",
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
    "StoredAccess",
    "StoredEvaluation",
    "UnreadableEvaluation",
    "downgrade",
    "upgrade",
]


# The store (SQLAlchemy) and the migrations (Alembic) are loaded when first used: a process
# that only needs the errors (the --workers supervisor) stays small, and the workers, which
# never migrate, do without Alembic (about 12 MB each).
_LAZY = {
    "AccessPage": "store",
    "AccessRecord": "store",
    "StoredAccess": "store",
    "EvaluationRecord": "store",
    "EvaluationStore": "store",
    "Page": "store",
    "SaveOutcome": "store",
    "StoredEvaluation": "store",
    "StoreStats": "store",
    "UnreadableEvaluation": "store",
    "upgrade": "migrate",
    "downgrade": "migrate",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
