"""Channel settings shared by the sync and asyncio clients: retries, deadlines, TLS, caller.

Retries live in the channel's service config (gRFC A6), not in client code: gRPC retries a
call that failed with UNAVAILABLE (server unreachable, draining, or its database down) with
exponential backoff, and a retry throttle stops a struggling server from being flooded.
Retrying an evaluation is safe because the client always sends a `request_id`: the server
returns the stored evaluation for a repeated id instead of scoring again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from sector_credit.v1 import credit_evaluation_service_pb2 as pb

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["CreditEvaluationService"].full_name
CALLER_KEY = "x-caller"
DEFAULT_TARGET = "127.0.0.1:50051"
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the server's default limit
USER_AGENT = "sector-credit-client/0.1"


@dataclass(frozen=True)
class RetryPolicy:
    """The retryPolicy of the service config; `max_attempts` counts the first call."""

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    backoff_multiplier: float = 2.0
    retryable_codes: tuple[str, ...] = ("UNAVAILABLE",)

    def to_json(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff}s",
            "maxBackoff": f"{self.max_backoff}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retryable_codes),
        }


@dataclass(frozen=True)
class Deadlines:
    """Default deadlines in seconds, per kind of call; None means no deadline. Every method
    also takes `timeout=` to override its default for one call."""

    unary: float | None = 10.0  # Evaluate, Get*, List*
    batch: float | None = 120.0  # one BatchEvaluate call (up to 1,000 items)
    stream: float | None = None  # a StreamEvaluate run lasts as long as its input


DEFAULT_RETRY = RetryPolicy()
DEFAULT_DEADLINES = Deadlines()


def service_config(retry: RetryPolicy | None = DEFAULT_RETRY) -> dict[str, Any]:
    """The service config for the CreditEvaluationService (and the health service)."""
    method: dict[str, Any] = {
        "name": [{"service": SERVICE_NAME}, {"service": "grpc.health.v1.Health"}],
        "waitForReady": False,
    }
    config: dict[str, Any] = {"methodConfig": [method]}
    if retry is not None:
        method["retryPolicy"] = retry.to_json()
        config["retryThrottling"] = {"maxTokens": 10, "tokenRatio": 0.1}
    return config


def channel_options(
    retry: RetryPolicy | None = DEFAULT_RETRY, extra: Sequence[tuple[str, Any]] = ()
) -> list[tuple[str, Any]]:
    """The options every client channel is built with; `extra` adds to or overrides them."""
    options: dict[str, Any] = {
        "grpc.enable_retries": 1 if retry is not None else 0,
        "grpc.service_config": json.dumps(service_config(retry)),
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.primary_user_agent": USER_AGENT,
        "grpc.keepalive_time_ms": 60_000,
    }
    options.update(dict(extra))
    return list(options.items())


def credentials_for(secure: bool | grpc.ChannelCredentials) -> grpc.ChannelCredentials | None:
    """None for a plaintext channel; `True` for TLS with the system's root certificates; or
    the credentials given (e.g. `grpc.ssl_channel_credentials(root_certificates=...)`)."""
    if secure is True:
        return grpc.ssl_channel_credentials()
    if secure is False or secure is None:
        return None
    return secure


def caller_metadata(caller: str | None) -> tuple[tuple[str, str], ...]:
    """The `x-caller` header the server records as who asked. gRPC headers are ASCII."""
    if not caller:
        return ()
    if not caller.isascii() or not caller.isprintable():
        raise ValueError(f"caller {caller!r} must be printable ASCII (it travels as a gRPC header)")
    return ((CALLER_KEY, caller),)


AUTHORIZATION_KEY = "authorization"


def tls_credentials(
    ca: str | None = None, cert: str | None = None, key: str | None = None
) -> grpc.ChannelCredentials:
    """TLS credentials from PEM files: `ca` the roots that sign the server's certificate
    (default: the system's), `cert` and `key` the client certificate for mutual TLS.
    Raises OSError for a file that cannot be read, ValueError for cert without key."""
    if bool(cert) != bool(key):
        raise ValueError("a client certificate needs its key, and a key its certificate")

    def read(path: str | None) -> bytes | None:
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )


def token_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The `authorization: Bearer <token>` header of an API key or a JWT."""
    if not token:
        return ()
    if not token.isascii() or not token.isprintable() or " " in token:
        raise ValueError("a bearer token is printable ASCII without spaces")
    return ((AUTHORIZATION_KEY, f"Bearer {token}"),)
