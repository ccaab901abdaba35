"""The one interceptor that authenticates every call and checks its method's role.

It runs inside the edge interceptors (`server/interceptors.py`: they log, count and turn
its refusals into statuses), on the same handler wrapper (`server/handlers.py`): credentials
in, a `Principal` on the call's request context, or a refusal through `security.refuse`.
Credentials, in this order: a bearer token in `authorization` (an API key of this service,
else a JWT), else the client certificate of the TLS connection (its subject common name or a
SAN, mapped to a caller name in the configuration). In local mode every caller is the local
principal. Behind the TLS front (`server/tls_front.py`) every other call first needs a
connection whose client certificate the front verified, looked up by `context.peer()` in the
front's table. Health and reflection pass untouched, behind the front too: load balancers and
tools call them without credentials, a client certificate included.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..grpc_types import Context, Handler
from ..handlers import Layer, LayeredInterceptor
from . import (
    AUTHENTICATED,
    LOCAL,
    OPEN,
    Grant,
    PermissionDenied,
    Principal,
    Unauthenticated,
    bind,
    permission_reason,
    refuse,
    role_for,
)
from .config import ConfigFile
from .keys import PREFIX, ApiKeys

if TYPE_CHECKING:  # the front imports pyOpenSSL; the table is handed in by the server
    from ..tls_front import ConnectionTable
    from .tokens import JwtVerifier

AUTHORIZATION_KEY = "authorization"


class Authenticator:
    """Turns a call's credentials into a principal and its grants. `config` None: local mode."""

    def __init__(
        self,
        config: ConfigFile | None,
        keys: ApiKeys | None,
        connections: ConnectionTable | None = None,
    ):
        self.config = config
        self.keys = keys
        self.connections = connections  # the TLS front's table, when it verifies certificates
        self._jwt: JwtVerifier | None = None

    @property
    def local(self) -> bool:
        return self.config is None

    def _jwt_verifier(self) -> JwtVerifier | None:
        assert self.config is not None
        settings = self.config.config.jwt
        if settings is None:
            return None
        if self._jwt is None or self._jwt.settings != settings:
            # imported with the first token configuration: PyJWT brings in cryptography,
            # about 9 MB resident in each server process that verifies no token (issue 12)
            from .tokens import JwtVerifier

            self._jwt = JwtVerifier(settings)
        return self._jwt

    def connection_subjects(self, method: str, context: Context) -> list[str] | None:
        """Behind the TLS front: the names the connection's verified client certificate
        proves, or a refusal (no certificate, a bad one, a connection the front did not
        open). None without the front: gRPC's handshake verified the certificate."""
        if self.connections is None:
            return None
        identity = self.connections.identity(context.peer())
        if identity.refusal:
            raise refuse(Unauthenticated(identity.refusal, reason=identity.reason), method)
        return list(identity.subjects)

    async def authenticate(
        self, method: str, context: Context
    ) -> tuple[Principal, dict[str, Grant] | None]:
        verified = self.connection_subjects(method, context)
        if self.config is None:
            return LOCAL, None
        config = self.config.config
        token = ""
        for header, value in context.invocation_metadata() or ():
            if header == AUTHORIZATION_KEY:
                token = str(value)
        if token:
            scheme, _, credential = token.partition(" ")
            if scheme.lower() != "bearer" or not credential.strip():
                raise refuse(
                    Unauthenticated("the authorization header must be `Bearer <token>`"), method
                )
            credential = credential.strip()
            if credential.startswith(PREFIX) and self.keys is not None:
                if self.keys.cached(credential):  # the common case: no thread, no database
                    key, why = self.keys.verify(credential)
                else:
                    key, why = await asyncio.to_thread(self.keys.verify, credential)
                if key is None:
                    raise refuse(Unauthenticated(why), method)
                name, proven_by, key_id = key.caller, "api_key", key.key_id
            else:
                verifier = self._jwt_verifier()
                if verifier is None:
                    raise refuse(
                        Unauthenticated(
                            "bearer token not accepted: not an API key of this"
                            " service, and no identity provider is configured"
                        ),
                        method,
                    )
                jwt_name, why = await asyncio.to_thread(verifier.verify, credential)
                if jwt_name is None:
                    raise refuse(Unauthenticated(why), method)
                name, proven_by, key_id = jwt_name, "jwt", None
        else:
            subjects = verified if verified is not None else _certificate_subjects(context)
            if not subjects:
                raise refuse(
                    Unauthenticated(
                        "no credentials: send a client certificate or `authorization: Bearer"
                        " <token>`"
                    ),
                    method,
                )
            mapped = next(
                (config.certificates[s] for s in subjects if s in config.certificates), None
            )
            if mapped is None:
                raise refuse(
                    Unauthenticated(
                        "the client certificate's subject is not mapped to a caller"
                        " in the security configuration"
                    ),
                    method,
                )
            name, proven_by, key_id = mapped, "mtls", None
        grants = dict(config.grants_of(name))
        return Principal(name, proven_by, frozenset(grants), key_id), grants


def _certificate_subjects(context: Context) -> list[str]:
    """The verified client certificate's common name and SANs (the transport verified it
    against --tls-client-ca before the call got here)."""
    auth = context.auth_context() or {}
    names: list[str] = []
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for raw in auth.get(key, ()):
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            if text and text not in names:
                names.append(text)
    return names


class _AuthLayer(Layer):
    def __init__(self, auth: Authenticator, method: str, role: str):
        self.auth, self.method, self.role = auth, method, role

    async def enter(self, context: Context) -> Any:
        method, role = self.method, self.role
        principal, grants = await self.auth.authenticate(method, context)
        bind(method, principal, grants)  # on the call's request context, read by log and audit
        if role != AUTHENTICATED and role not in principal.roles:
            raise refuse(
                PermissionDenied(
                    f"this caller ({principal.name}) lacks the {role} permission",
                    permission_reason(role),
                    {"permission": role},
                ),
                method,
                principal,
            )
        return None


class AuthInterceptor(LayeredInterceptor):
    def __init__(self, authenticator: Authenticator):
        super().__init__()
        self.auth = authenticator

    def layer_for(self, method: str, handler: Handler) -> Layer | None:
        role = role_for(method)
        return None if role == OPEN else _AuthLayer(self.auth, method, role)
