"""Who is calling and what it may do: the one place for authentication and authorisation.

- `Principal`: an identity proven by credentials (a client certificate, an API key, a JWT),
  or the local principal of a server in local mode. `current_principal()` is the principal
  of the call being handled, kept on its request context (`server/request_context.py`); the
  authentication interceptor (`interceptor.py`) sets it before the handler runs. A header
  such as `x-caller` is never an identity.
- `METHOD_ROLES`: the role each RPC needs (absent: `admin`; `OPEN`: no credentials needed).
- `require_scorecard` / `require_read` / `read_scope`: the per-item checks of a grant limited
  to scorecards or to the caller's own evaluations, which the servicer calls once per item.
- `may_see_ids`: whether the caller's reader grant shows a person's id and name whole
  (`see_ids`); the servicer masks the evaluations it returns otherwise.
- `refuse`: every UNAUTHENTICATED and PERMISSION_DENIED goes through it, so each refusal is
  reported to the callbacks in `on_refusal` (the query audit records them there).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc

from .. import request_context
from ..errors import ServiceError
from ..logs import log

EVALUATOR, READER, AUDITOR, ADMIN = "evaluator", "reader", "auditor", "admin"
REGISTRAR = "registrar"  # creates credit records and changes their state (issue 10)
ROLES = frozenset({EVALUATOR, READER, AUDITOR, ADMIN, REGISTRAR})
OPEN = ""  # a method anyone may call, without credentials
AUTHENTICATED = "authenticated"  # any proven caller, whatever its roles

_SERVICE = "/sector_credit.v1.CreditEvaluationService/"
_KEYS = "/sector_credit.v1.ApiKeyService/"
_ACCESS_LOG = "/sector_credit.v1.AccessLogService/"
_RECORDS = "/sector_credit.v1.RecordService/"

METHOD_ROLES: dict[str, str] = {
    _SERVICE + "ListScorecards": AUTHENTICATED,
    _SERVICE + "GetScorecard": AUTHENTICATED,
    _SERVICE + "Evaluate": EVALUATOR,
    _SERVICE + "BatchEvaluate": EVALUATOR,
    _SERVICE + "StreamEvaluate": EVALUATOR,
    # by name a read of a stored evaluation (reader), on an input a what-if (evaluator): the
    # servicer checks the grant that applies once it knows which (require_read, require_scorecard)
    _SERVICE + "ExploreEvaluation": AUTHENTICATED,
    _SERVICE + "GetEvaluation": READER,
    _SERVICE + "ListEvaluations": READER,
    _KEYS + "CreateApiKey": ADMIN,
    _KEYS + "ListApiKeys": ADMIN,
    _KEYS + "RevokeApiKey": ADMIN,
    _ACCESS_LOG + "ListAccessRecords": AUDITOR,
    _ACCESS_LOG + "ListSubjectAccesses": AUDITOR,
    _RECORDS + "ListRecordKinds": AUTHENTICATED,
    _RECORDS + "GetDisclosure": AUTHENTICATED,  # OPEN with --public-disclosure (open_disclosure)
    _RECORDS + "GetRecord": READER,
    _RECORDS + "ListRecords": READER,
    **{
        _RECORDS + m: REGISTRAR
        for m in (
            "CreateRecord",
            "FileObjection",
            "ForwardObjection",
            "DecideObjection",
            "RepairRecord",
            "RevokeRecord",
        )
    },
}
"""The role each method needs. A method not listed needs `admin`: a new RPC is closed until
someone decides who may call it."""

OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
"""Health and reflection stay open: load balancers and tools call them without credentials."""


def open_disclosure(public: bool) -> None:
    """The disclosure view of credit records is for any proven caller, or for everyone when
    the server is configured so (`--public-disclosure`)."""
    METHOD_ROLES[_RECORDS + "GetDisclosure"] = OPEN if public else AUTHENTICATED


def role_for(method: str) -> str:
    if method.startswith(OPEN_SERVICES):
        return OPEN
    return METHOD_ROLES.get(method, ADMIN)


@dataclass(frozen=True)
class Principal:
    """A proven identity. `proven_by`: "mtls" | "api_key" | "jwt" | "local"."""

    name: str
    proven_by: str
    roles: frozenset[str]
    key_id: str | None = None


LOCAL = Principal("local", "local", ROLES)
"""Every caller of a server in local mode (loopback, no credentials configured)."""


@dataclass(frozen=True)
class Grant:
    """One role of a caller, optionally limited to some scorecards and to its own evaluations;
    `see_ids` (reader): the evaluations it reads show a person's id and name whole."""

    role: str
    scorecards: frozenset[str] | None = None  # None: every scorecard
    own_only: bool = False
    see_ids: bool = False

    def covers(self, scorecard_id: str) -> bool:
        return self.scorecards is None or scorecard_id in self.scorecards


_grants: contextvars.ContextVar[Mapping[str, Grant] | None] = contextvars.ContextVar(
    "grants", default=None
)
_method: contextvars.ContextVar[str] = contextvars.ContextVar("method", default="")


def current_principal() -> Principal | None:
    """The principal of the call being handled (None outside a call, or on an open method)."""
    ctx = request_context.current()
    return ctx.principal if ctx is not None else None


def bind(
    method: str, principal: Principal, grants: Mapping[str, Grant] | None
) -> list[contextvars.Token[object]]:
    """Make `principal` the current one, on the call's request context (the interceptor,
    before the handler; outside a call, a context is opened for it)."""
    tokens: list[contextvars.Token[object]] = [_method.set(method), _grants.set(grants)]  # type: ignore[list-item]
    ctx = request_context.current()
    if ctx is None:
        tokens.append(request_context.open_call(method.rpartition("/")[2]))  # type: ignore[arg-type]
        ctx = request_context.current()
        assert ctx is not None
    ctx.principal = principal
    return tokens


RefusalHook = Callable[[str, Principal | None, grpc.StatusCode, str], None]
on_refusal: list[RefusalHook] = []
"""Callbacks `(method, principal_or_None, code, reason)` called for every refusal, before the
status leaves (the query audit appends an access record there). A failing callback is logged
and never changes the refusal."""


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"

    def __init__(self, message: str, reason: str = "UNAUTHENTICATED"):
        super().__init__(message)
        self.reason = reason  # a client certificate's refusal says why (server/tls_front.py)


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"

    def __init__(self, message: str, reason: str, metadata: Mapping[str, str] | None = None):
        super().__init__(message, metadata)
        self.reason = reason


def refuse(
    exc: Unauthenticated | PermissionDenied,
    method: str | None = None,
    principal: Principal | None = None,
) -> Unauthenticated | PermissionDenied:
    """Report the refusal to every `on_refusal` callback and return `exc` to raise: the one
    way a call is refused, so none goes unrecorded."""
    method = method if method is not None else _method.get()
    who = principal if principal is not None else current_principal()
    for hook in list(on_refusal):
        try:
            hook(method, who, exc.code, exc.reason)
        except Exception:
            log.exception(
                "on_refusal callback failed", callback=getattr(hook, "__qualname__", repr(hook))
            )
    return exc


def permission_reason(role: str) -> str:
    """The ErrorInfo reason naming a missing permission, e.g. EVALUATOR_PERMISSION_REQUIRED."""
    return f"{role.upper()}_PERMISSION_REQUIRED"


def _grant(role: str) -> Grant | None:
    """The current caller's grant of `role`; local mode (no grants table) holds every role."""
    grants = _grants.get()
    principal = current_principal()
    if principal is None:
        return None
    if grants is None:
        return Grant(role) if role in principal.roles else None
    return grants.get(role)


def require_scorecard(scorecard_id: str, role: str = EVALUATOR) -> None:
    """Refuse unless the caller's `role` grant covers `scorecard_id` (each Evaluate, batch
    item and stream item)."""
    grant = _grant(role)
    if grant is None or not grant.covers(scorecard_id):
        raise refuse(
            PermissionDenied(
                f"the {role} permission of this caller does not cover scorecard {scorecard_id}",
                permission_reason(role),
                {"permission": role, "scorecard": scorecard_id},
            )
        )


def require_read(scorecard_id: str, caller: str | None) -> None:
    """Refuse reading one stored evaluation outside the caller's reader grant."""
    require_scorecard(scorecard_id, READER)
    grant = _grant(READER)
    principal = current_principal()
    if grant is not None and grant.own_only and principal is not None and caller != principal.name:
        raise refuse(
            PermissionDenied(
                "the reader permission of this caller covers only the evaluations it made itself",
                permission_reason(READER),
                {"permission": READER, "scope": "own evaluations"},
            )
        )


def read_scope(scorecard_id: str | None) -> str | None:
    """For a listing: refuse a scorecard (or all scorecards) outside the reader grant, and
    return the caller name the listing must be limited to (None: every caller's)."""
    grant = _grant(READER)
    if grant is None:
        raise refuse(
            PermissionDenied(
                "this caller has no reader permission",
                permission_reason(READER),
                {"permission": READER},
            )
        )
    if grant.scorecards is not None and (
        scorecard_id is None or scorecard_id not in grant.scorecards
    ):
        allowed = ", ".join(sorted(grant.scorecards))
        raise refuse(
            PermissionDenied(
                f"the reader permission of this caller covers only scorecard(s) {allowed}:"
                " name one of them in `scorecard`",
                permission_reason(READER),
                {"permission": READER, "scorecard": scorecard_id or "", "allowed": allowed},
            )
        )
    principal = current_principal()
    return principal.name if grant.own_only and principal is not None else None


def reader_scorecards() -> frozenset[str] | None:
    """The scorecards the caller's reader grant is limited to (None: every scorecard; an
    empty set without a reader grant). Credit records: such a reader reads only the kinds
    of records those scorecards derive from (server/records_servicer.py)."""
    grant = _grant(READER)
    return frozenset() if grant is None else grant.scorecards


def refuse_record_kind(kind: str, readable: frozenset[str]) -> Unauthenticated | PermissionDenied:
    """The refusal of reading a credit record of `kind`, outside the kinds `readable` by the
    scorecards of the caller's reader grant."""
    allowed = ", ".join(sorted(readable)) or "none"
    return refuse(
        PermissionDenied(
            f"the reader permission of this caller covers only records of the kinds its"
            f" scorecards read ({allowed}), not {kind[:64]}",
            permission_reason(READER),
            {"permission": READER, "record_kind": kind[:64], "allowed": allowed},
        )
    )


def may_see_ids() -> bool:
    """Whether the evaluations this call returns may show a person's id and name whole: a
    reader grant with `see_ids = true`, or local mode (every role, on loopback)."""
    if _grants.get() is None:
        return current_principal() is not None
    grant = _grant(READER)
    return grant is not None and grant.see_ids
