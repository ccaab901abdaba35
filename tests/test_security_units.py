"""The security package's tables, in process: the role of each method, what a configuration
file may say, loopback addresses, and refusals reported to on_refusal before they leave."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from sector_credit.server import security
from sector_credit.server.security import config as security_config
from sector_credit.server.security.setup import is_loopback

SERVICE = "/sector_credit.v1.CreditEvaluationService/"


@pytest.mark.parametrize(
    "method, role",
    [
        (SERVICE + "Evaluate", "evaluator"),
        (SERVICE + "BatchEvaluate", "evaluator"),
        (SERVICE + "StreamEvaluate", "evaluator"),
        (SERVICE + "GetEvaluation", "reader"),
        (SERVICE + "ListEvaluations", "reader"),
        (SERVICE + "ListScorecards", "authenticated"),
        ("/sector_credit.v1.ApiKeyService/CreateApiKey", "admin"),
        ("/grpc.health.v1.Health/Check", ""),  # open
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", ""),
        (SERVICE + "SomethingNew", "admin"),  # a method nobody listed is closed, not open
        ("/other.Service/Method", "admin"),
    ],
)
def test_the_role_each_method_needs(method: str, role: str) -> None:
    assert security.role_for(method) == role


@pytest.mark.parametrize(
    "text, error",
    [
        ("[callers.a]\nsuperuser = {}\n", "callers.a.superuser: unknown role"),
        (
            '[callers.a]\nreader = { scorecards = "x" }\n',
            "callers.a.reader.scorecards: a list of scorecard ids",
        ),
        (
            '[callers.a]\nreader = { own_evaluations_only = "yes" }\n',
            "own_evaluations_only: true or false",
        ),
        (
            "[callers.a]\nreader = { everything = true }\n",
            "only scorecards, own_evaluations_only, see_ids",
        ),
        ("[callers.a]\nreader = { see_ids = 1 }\n", "callers.a.reader.see_ids: true or false"),
        (
            "[callers.a]\nevaluator = { see_ids = true }\n",
            "evaluator: a table with only scorecards, own_evaluations_only",
        ),
        ('[jwt]\nissuer = "x"\n', "jwt: needs audience, jwks_file"),
        ("[users]\n", "users: unknown section"),
        (
            '[certificates]\n"cn" = 3\n',
            "certificates: a table of certificate subject = caller name",
        ),
        ("not toml [", "not valid TOML"),
    ],
)
def test_a_configuration_that_cannot_be_used_says_where(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "security.toml"
    path.write_text(text)
    with pytest.raises(security_config.ConfigError) as caught:
        security_config.load(path)
    assert str(caught.value).startswith(str(path)) and error in str(caught.value)


def test_a_configuration_read_as_grants(tmp_path: Path) -> None:
    path = tmp_path / "security.toml"
    path.write_text(
        '[callers.p]\nevaluator = { scorecards = ["procurement.supplier"] }\n'
        "reader = { own_evaluations_only = true }\n"
        "[callers.q]\nreader = { see_ids = true }\n"
    )
    grants = security_config.load(path).grants_of("p")
    assert grants == {
        "evaluator": security.Grant("evaluator", frozenset({"procurement.supplier"}), False),
        "reader": security.Grant("reader", None, True),
    }
    assert security_config.load(path).grants_of("q") == {
        "reader": security.Grant("reader", None, False, True)
    }
    assert security_config.load(path).grants_of("nobody") == {}


@pytest.mark.parametrize(
    "listen, loopback",
    [
        ("127.0.0.1:50051", True),
        ("127.0.0.2:0", True),
        ("[::1]:50051", True),
        ("localhost:1", True),
        ("0.0.0.0:50051", False),
        ("[::]:50051", False),
        ("10.0.0.5:50051", False),
        (":50051", False),
        ("server.example:50051", False),
    ],
)
def test_which_addresses_are_loopback(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_every_refusal_reaches_the_on_refusal_callbacks_and_a_failing_one_changes_nothing() -> None:
    seen: list[tuple[str, str | None, grpc.StatusCode, str]] = []

    def record(
        method: str, principal: security.Principal | None, code: grpc.StatusCode, reason: str
    ) -> None:
        seen.append((method, principal.name if principal else None, code, reason))

    def broken(*_: object) -> None:
        raise RuntimeError("audit store down")

    security.on_refusal[:] = [broken, record]
    tokens = []
    try:
        exc = security.refuse(security.Unauthenticated("no credentials"), "/m/A")
        assert isinstance(exc, security.Unauthenticated)
        p = security.Principal("procurement-centre", "api_key", frozenset({"evaluator"}), "k1")
        tokens = security.bind(
            "/m/B",
            p,
            {"evaluator": security.Grant("evaluator", frozenset({"procurement.supplier"}))},
        )
        with pytest.raises(security.PermissionDenied) as caught:
            security.require_scorecard("transport.taxi_driver")
        assert caught.value.reason == "EVALUATOR_PERMISSION_REQUIRED"
        security.require_scorecard("procurement.supplier")  # inside the grant: no refusal
        with pytest.raises(security.PermissionDenied):
            security.read_scope(None)  # no reader grant at all
    finally:
        security.on_refusal.clear()
        for token in reversed(tokens):
            token.var.reset(token)
    assert seen == [
        ("/m/A", None, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (
            "/m/B",
            "procurement-centre",
            grpc.StatusCode.PERMISSION_DENIED,
            "EVALUATOR_PERMISSION_REQUIRED",
        ),
        (
            "/m/B",
            "procurement-centre",
            grpc.StatusCode.PERMISSION_DENIED,
            "READER_PERMISSION_REQUIRED",
        ),
    ]


def test_a_changed_configuration_file_is_taken_without_a_signal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(security_config, "RELOAD_CHECK_SECONDS", 0.0)
    path = tmp_path / "security.toml"
    path.write_text("[callers.p]\nreader = {}\n")
    watched = security_config.ConfigFile(path)
    assert watched.config.roles_of("p") == {"reader"}
    path.write_text("[callers.p]\nreader = {}\nevaluator = {}\n")  # another size: a new stamp
    assert watched.config.roles_of("p") == {"reader", "evaluator"}
    path.write_text("[callers.p]\nsuperuser = {}\n")  # broken: the last good one stays
    assert watched.config.roles_of("p") == {"reader", "evaluator"}
