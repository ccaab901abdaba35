"""JWTs from the authority's identity provider, verified with PyJWT against a JWKS file.

Only RS256 and ES256 are accepted: `none`, HS256 (a shared secret, or a public key passed off
as one) and every other algorithm are refused before any key is used. The issuer, the
audience and the expiry are required and checked. The JWKS file is read again when it changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jwt

from .config import JwtSettings

ALGORITHMS = ["RS256", "ES256"]


class JwtVerifier:
    def __init__(self, settings: JwtSettings):
        self.settings = settings
        self._stamp: tuple[int, int] | None = None
        self._keys: jwt.PyJWKSet | None = None

    def _jwks(self) -> jwt.PyJWKSet:
        st = os.stat(self.settings.jwks_file)
        stamp = (st.st_mtime_ns, st.st_size)
        if self._keys is None or stamp != self._stamp:
            self._keys = jwt.PyJWKSet.from_json(
                Path(self.settings.jwks_file).read_text(encoding="utf-8")
            )
            self._stamp = stamp
        return self._keys

    def verify(self, token: str) -> tuple[str | None, str]:
        """(caller name, "") for a valid token, else (None, why). `why` never quotes the token."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None, "not a JWT"
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            return (
                None,
                f"JWT algorithm {str(alg)[:16]!r} is not accepted (only {', '.join(ALGORITHMS)})",
            )
        try:
            keys = self._jwks()
        except (OSError, jwt.PyJWTError, ValueError):
            return None, "the JWKS of the identity provider cannot be read"
        kid = header.get("kid")
        candidates = [k for k in keys.keys if kid is None or k.key_id == kid]
        if not candidates:
            return None, "JWT signed by a key not in the JWKS"
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    token,
                    key=key,
                    algorithms=[alg],
                    audience=self.settings.audience,
                    issuer=self.settings.issuer,
                    options={"require": ["exp", "iss", "aud"]},
                )
                break
            except jwt.InvalidAudienceError:
                return None, "JWT audience is not this service"
            except jwt.InvalidIssuerError:
                return None, "JWT issuer is not the configured identity provider"
            except jwt.ExpiredSignatureError:
                return None, "JWT has expired"
            except jwt.MissingRequiredClaimError as exc:
                return None, f"JWT lacks the {exc.claim} claim"
            except jwt.PyJWTError:
                continue
        if claims is None:
            return None, "JWT signature does not verify"
        name = claims.get(self.settings.name_claim)
        if not isinstance(name, str) or not name:
            return None, f"JWT lacks the {self.settings.name_claim} claim"
        return name, ""
