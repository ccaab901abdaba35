"""The security configuration: one TOML file (`--security-config`), reloaded without restart.

    [certificates]            # client-certificate subject (CN or a SAN) -> caller name
    "gw.procurement.example" = "procurement-centre"

    [jwt]                     # tokens of the authority's identity provider (RS256/ES256)
    issuer = "https://idp.example"
    audience = "sector-credit"
    jwks_file = "jwks.json"   # relative to this file
    name_claim = "sub"        # the claim that names the caller (default "sub")

    [callers.procurement-centre]          # one table per caller name, one key per role
    evaluator = { scorecards = ["procurement.supplier"] }
    reader = { scorecards = ["procurement.supplier"], own_evaluations_only = true }

    [callers.credit-repair-desk]          # reads show a person's id and name whole
    reader = { see_ids = true }

    [callers.ops]
    admin = {}

A caller's roles are the keys of its table; `scorecards` limits a grant (absent: all);
`own_evaluations_only` limits a reader to the evaluations the caller made itself; `see_ids`
lets a reader see a person's id and name whole (without it the server masks them). API keys
name their caller when they are created (`sector-credit-server keys create --caller ...`).
A file that does not load is refused at start-up; on reload the previous one stays in force
and the error is logged.
"""

from __future__ import annotations

import os
import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..logs import log
from . import READER, ROLES, Grant

GRANT_KEYS = {role: ("scorecards", "own_evaluations_only") for role in ROLES} | {
    READER: ("scorecards", "own_evaluations_only", "see_ids")
}
"""The limits each role's grant may carry (`see_ids` is a reader's: it is about what reads show)."""
RELOAD_CHECK_SECONDS = 1.0  # how often a call may look at the file's mtime


class ConfigError(ValueError):
    """The file cannot be used: the message names the file, the key and the reason."""


@dataclass(frozen=True)
class JwtSettings:
    issuer: str
    audience: str
    jwks_file: Path
    name_claim: str = "sub"


@dataclass(frozen=True)
class SecurityConfig:
    certificates: Mapping[str, str] = field(default_factory=dict)
    jwt: JwtSettings | None = None
    callers: Mapping[str, Mapping[str, Grant]] = field(default_factory=dict)

    def grants_of(self, caller: str) -> Mapping[str, Grant]:
        return self.callers.get(caller, {})

    def roles_of(self, caller: str) -> frozenset[str]:
        return frozenset(self.grants_of(caller))


def load(path: str | Path) -> SecurityConfig:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, path)


def parse(data: Mapping[str, Any], path: Path) -> SecurityConfig:
    def fail(where: str, why: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {why}")

    unknown = set(data) - {"certificates", "jwt", "callers"}
    if unknown:
        raise fail(
            ", ".join(sorted(unknown)), "unknown section (expected certificates, jwt, callers)"
        )
    certs = data.get("certificates", {})
    if not isinstance(certs, dict) or not all(isinstance(v, str) and v for v in certs.values()):
        raise fail("certificates", "a table of certificate subject = caller name")
    jwt_settings = None
    if "jwt" in data:
        j = data["jwt"]
        missing = [
            k
            for k in ("issuer", "audience", "jwks_file")
            if not isinstance(j.get(k), str) or not j[k]
        ]
        if missing:
            raise fail("jwt", f"needs {', '.join(missing)}")
        jwks = Path(j["jwks_file"])
        jwt_settings = JwtSettings(
            j["issuer"],
            j["audience"],
            jwks if jwks.is_absolute() else path.parent / jwks,
            str(j.get("name_claim", "sub")),
        )
    callers: dict[str, dict[str, Grant]] = {}
    raw_callers = data.get("callers", {})
    if not isinstance(raw_callers, dict):
        raise fail("callers", "a table of caller name = roles")
    for name, roles in raw_callers.items():
        if not isinstance(roles, dict):
            raise fail(f"callers.{name}", "a table of role = { scorecards, own_evaluations_only }")
        grants: dict[str, Grant] = {}
        for role, limits in roles.items():
            where = f"callers.{name}.{role}"
            if role not in ROLES:
                raise fail(where, f"unknown role (roles: {', '.join(sorted(ROLES))})")
            keys = GRANT_KEYS[role]
            if not isinstance(limits, dict) or set(limits) - set(keys):
                raise fail(where, "a table with only " + ", ".join(keys))
            cards = limits.get("scorecards")
            if cards is not None and (
                not isinstance(cards, list) or not all(isinstance(c, str) for c in cards)
            ):
                raise fail(where + ".scorecards", "a list of scorecard ids")
            own = limits.get("own_evaluations_only", False)
            if not isinstance(own, bool):
                raise fail(where + ".own_evaluations_only", "true or false")
            see_ids = limits.get("see_ids", False)
            if not isinstance(see_ids, bool):
                raise fail(where + ".see_ids", "true or false")
            grants[role] = Grant(role, None if cards is None else frozenset(cards), own, see_ids)
        callers[name] = grants
    return SecurityConfig(dict(certs), jwt_settings, callers)


class ConfigFile:
    """The configuration in force, reloaded when the file's mtime changes (looked at no more
    than once a second, on the calls' path) or on `reload()` (SIGHUP)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = self._mtime()
        self._config = load(self.path)
        self._checked = time.monotonic()
        self.listeners: list[Any] = []  # called with the new config after a reload

    @property
    def config(self) -> SecurityConfig:
        now = time.monotonic()
        if now - self._checked >= RELOAD_CHECK_SECONDS:
            self._checked = now
            if self._mtime() != self._stamp:
                self.reload()
        return self._config

    def _mtime(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def reload(self) -> bool:
        with self._lock:
            self._stamp = self._mtime()
            try:
                config = load(self.path)
            except ConfigError as exc:
                log.error(
                    "security configuration not reloaded; the previous one stays in force",
                    error=str(exc),
                )
                return False
            self._config = config
        log.info(
            "security configuration reloaded", path=str(self.path), callers=len(config.callers)
        )
        for listener in self.listeners:
            listener(config)
        return True
