"""The one interceptor that authenticates every call and checks its method's role.

It runs inside the service interceptor (which logs, counts and turns its refusals into
statuses): credentials in, a `Principal` bound for the handler, or a refusal through
`security.refuse`. Credentials, in this order: a bearer token in `authorization` (an API key
of this service, else a JWT), else the client certificate of the TLS connection (its subject
common name or a SAN, mapped to a caller name in the configuration). In local mode every
caller is the local principal. Health and reflection pass untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import structlog

from ..grpc_types import Context, Continuation, Handler, streaming, unary
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
from .tokens import JwtVerifier

AUTHORIZATION_KEY = "authorization"


class Authenticator:
    """Turns a call's credentials into a principal and its grants. `config` None: local mode."""

    def __init__(self, config: ConfigFile | None, keys: ApiKeys | None):
        self.config = config
        self.keys = keys
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
            self._jwt = JwtVerifier(settings)
        return self._jwt

    async def authenticate(self, method: str, context: Context) -> tuple[Principal, dict[str, Grant] | None]:
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
                raise refuse(Unauthenticated("the authorization header must be `Bearer <token>`"), method)
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
                    raise refuse(Unauthenticated("bearer token not accepted: not an API key of this"
                                                 " service, and no identity provider is configured"), method)
                jwt_name, why = await asyncio.to_thread(verifier.verify, credential)
                if jwt_name is None:
                    raise refuse(Unauthenticated(why), method)
                name, proven_by, key_id = jwt_name, "jwt", None
        else:
            subjects = _certificate_subjects(context)
            if not subjects:
                raise refuse(Unauthenticated(
                    "no credentials: send a client certificate or `authorization: Bearer <token>`"), method)
            mapped = next((config.certificates[s] for s in subjects if s in config.certificates), None)
            if mapped is None:
                raise refuse(Unauthenticated("the client certificate's subject is not mapped to a caller"
                                             " in the security configuration"), method)
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


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator):
        self.auth = authenticator
        self._wrapped: dict[str, Handler] = {}

    async def intercept_service(
        self,
        continuation: Continuation,
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        method = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        role = role_for(method)
        if handler is None or role == OPEN:
            return handler
        wrapped = self._wrap(handler, method, role)
        self._wrapped[method] = wrapped
        return wrapped

    async def _enter(self, method: str, role: str, context: Context) -> list[Any]:
        principal, grants = await self.auth.authenticate(method, context)
        tokens = bind(method, principal, grants)
        structlog.contextvars.bind_contextvars(caller=principal.name, proven_by=principal.proven_by)
        if role != AUTHENTICATED and role not in principal.roles:
            raise refuse(PermissionDenied(f"this caller ({principal.name}) lacks the {role} permission",
                                          permission_reason(role), {"permission": role}), method, principal)
        return tokens

    def _wrap(self, h: Handler, method: str, role: str) -> Handler:
        kw = {"request_deserializer": h.request_deserializer, "response_serializer": h.response_serializer}
        if not h.request_streaming and not h.response_streaming:
            inner_uu = unary(h.unary_unary)

            async def unary_unary(request: Any, context: Context) -> Any:
                await self._enter(method, role, context)
                return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **kw)
        if not h.request_streaming:
            inner_us = streaming(h.unary_stream)

            async def unary_stream(request: Any, context: Context) -> AsyncIterator[Any]:
                await self._enter(method, role, context)
                async for response in inner_us(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(unary_stream, **kw)
        if not h.response_streaming:
            inner_su = unary(h.stream_unary)

            async def stream_unary(requests: Any, context: Context) -> Any:
                await self._enter(method, role, context)
                return await inner_su(requests, context)

            return grpc.stream_unary_rpc_method_handler(stream_unary, **kw)
        inner_ss = streaming(h.stream_stream)

        async def stream_stream(requests: Any, context: Context) -> AsyncIterator[Any]:
            await self._enter(method, role, context)
            async for response in inner_ss(requests, context):
                yield response

        return grpc.stream_stream_rpc_method_handler(stream_stream, **kw)
