"""The ApiKeyService: `credit keys create|list|revoke` for an admin, over the API. The admin
role is checked by the authentication interceptor (METHOD_ROLES); this module only converts."""

from __future__ import annotations

import asyncio
import datetime as dt

from google.protobuf import timestamp_pb2
from sector_credit.scorecards.model import FieldViolation
from sector_credit.v1 import api_key_service_pb2 as kpb
from sector_credit.v1 import api_key_service_pb2_grpc as kpb_grpc

from ..errors import BadRequest, NotFound
from ..grpc_types import Context
from .keys import ApiKey, ApiKeys

DEFAULT_LIFETIME = dt.timedelta(days=90)
_STATES = {
    "active": kpb.API_KEY_STATE_ACTIVE,
    "expired": kpb.API_KEY_STATE_EXPIRED,
    "revoked": kpb.API_KEY_STATE_REVOKED,
}
NAME_PREFIX = "apiKeys/"
MAX_TEXT = 200


def _timestamp(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def key_to_proto(key: ApiKey, now: dt.datetime) -> kpb.ApiKey:
    return kpb.ApiKey(
        name=NAME_PREFIX + key.key_id,
        caller=key.caller,
        description=key.description,
        state=_STATES[key.state(now)],
        create_time=_timestamp(key.created_at),
        expire_time=_timestamp(key.expires_at),
        revoke_time=_timestamp(key.revoked_at),
    )


class ApiKeyServicer(kpb_grpc.ApiKeyServiceServicer):
    def __init__(self, keys: ApiKeys):
        self.keys = keys

    async def CreateApiKey(
        self, request: kpb.CreateApiKeyRequest, context: Context
    ) -> kpb.CreateApiKeyResponse:
        now = dt.datetime.now(dt.UTC)
        violations = []
        caller = request.caller.strip()
        if not caller:
            violations.append(FieldViolation("caller", "required: the caller name the key proves"))
        elif len(caller) > MAX_TEXT or not caller.isprintable():
            violations.append(FieldViolation("caller", f"printable, at most {MAX_TEXT} characters"))
        if len(request.description) > MAX_TEXT or not request.description.isprintable():
            violations.append(
                FieldViolation("description", f"printable, at most {MAX_TEXT} characters")
            )
        expires = now + DEFAULT_LIFETIME
        if request.HasField("expire_time"):
            expires = request.expire_time.ToDatetime(tzinfo=dt.UTC)
            if expires <= now:
                violations.append(FieldViolation("expire_time", "must be in the future"))
        if violations:
            raise BadRequest(f"the request has {len(violations)} problem(s)", violations=violations)
        issued = await asyncio.to_thread(self.keys.create, caller, request.description, expires)
        return kpb.CreateApiKeyResponse(api_key=key_to_proto(issued.key, now), token=issued.token)

    async def ListApiKeys(
        self, request: kpb.ListApiKeysRequest, context: Context
    ) -> kpb.ListApiKeysResponse:
        now = dt.datetime.now(dt.UTC)
        keys = await asyncio.to_thread(self.keys.list)
        return kpb.ListApiKeysResponse(api_keys=[key_to_proto(k, now) for k in keys])

    async def RevokeApiKey(
        self, request: kpb.RevokeApiKeyRequest, context: Context
    ) -> kpb.RevokeApiKeyResponse:
        key_id = request.name.removeprefix(NAME_PREFIX)
        if not key_id:
            raise BadRequest(
                "name is required: apiKeys/{key_id}",
                violations=[FieldViolation("name", "required: apiKeys/{key_id}")],
            )
        revoked = await asyncio.to_thread(self.keys.revoke, key_id)
        if revoked is None:
            raise NotFound(f"no API key {request.name}", metadata={"name": request.name})
        return kpb.RevokeApiKeyResponse(api_key=key_to_proto(revoked, dt.datetime.now(dt.UTC)))
