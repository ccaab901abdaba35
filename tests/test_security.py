"""Who may ask (issue 9): API keys and JWTs against a real server over TLS, grants limited to
scorecards and to the caller's own evaluations, x-caller ignored, no secret in clear.

The server runs with TLS (a trustme CA), a security configuration (security_harness.CONFIG)
and API keys issued with `sector-credit-server keys create`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sector_credit.v1 import access_log_service_pb2 as access_pb
from sector_credit.v1 import access_log_service_pb2_grpc as access_pb_grpc
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from security_harness import CONFIG, IdentityProvider, Pki, bearer, error_info, server_keys, stub
from service_harness import ServerProcess, database, resident_id, running_server, taxi, wait_until

PURPOSE = "supervision"  # reads of evaluations give one (the query audit)


@dataclass
class Setup:
    server: ServerProcess
    pki: Pki
    idp: IdentityProvider
    tokens: dict[str, str]  # API keys by what they are
    key_ids: dict[str, str]
    database_url: str
    db_file: Path | None

    def call(
        self,
        method: str,
        request: Any,
        token: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> Any:
        channel, s = stub(self.server.address, self.pki.credentials())
        try:
            metadata = (tuple(bearer(token)) if token else ()) + extra
            return getattr(s, method)(request, metadata=metadata, timeout=10)
        finally:
            channel.close()

    def refused(
        self,
        method: str,
        request: Any,
        token: str | None = None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as caught:
            self.call(method, request, token, extra)
        return caught.value


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp(f"security-{request.param}")
    pki = Pki.make(tmp / "pki")
    idp = IdentityProvider(tmp)
    config = tmp / "security.toml"
    config.write_text(CONFIG)
    with database(request.param, tmp) as url:
        tokens, ids = {}, {}
        for label, caller, extra in (
            ("transport", "transport-bureau", ()),
            ("district", "district-office", ()),
            ("procurement", "procurement-centre", ()),
            ("ops", "ops", ()),
            ("auditor", "audit-office", ()),
            ("revoked", "transport-bureau", ()),
            ("expired", "transport-bureau", ("--expires-in-days", "0.00001")),
        ):
            made = server_keys(url, "create", "--caller", caller, "--description", label, *extra)
            tokens[label], ids[label] = made["token"], made["key_id"]
        server_keys(url, "revoke", ids["revoked"])
        time.sleep(1.0)  # the "expired" key has expired
        args = (*pki.server_args(mutual=False), "--security-config", str(config))
        with running_server(url, tmp / "server.log", *args) as server:
            db_file = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite") else None
            yield Setup(server, pki, idp, tokens, ids, url, db_file)


# -- who is refused: each UNAUTHENTICATED, with a reason that quotes no secret ------------------


def _unauthenticated_cases(s: Setup) -> list[tuple[str, str | None, tuple[tuple[str, str], ...]]]:
    sig = s.idp.token()
    forged_signature = (
        sig.rsplit(".", 1)[0] + "." + s.idp.token(key=s.idp.stranger).rsplit(".", 1)[1]
    )
    return [
        ("no credentials", None, ()),
        ("no credentials, only a forged x-caller", None, (("x-caller", "transport-bureau"),)),
        ("not a bearer scheme", None, (("authorization", f"Basic {s.tokens['transport']}"),)),
        ("a revoked API key", s.tokens["revoked"], ()),
        ("an expired API key", s.tokens["expired"], ()),
        ("an API key with a wrong secret", s.tokens["transport"][:-4] + "AAAA", ()),
        ("an API key of no one", "sck_0123456789abcdef_" + "A" * 43, ()),
        ("a JWT for another audience", s.idp.token(aud="another-service"), ()),
        ("a JWT of another issuer", s.idp.token(iss="https://evil.example"), ()),
        ("a JWT with alg none", s.idp.unsigned(), ()),
        ("a JWT HS256-signed with the public key", s.idp.hs256_with_public_key(), ()),
        ("a JWT signed by a key not the IdP's", s.idp.token(key=s.idp.stranger), ()),
        ("a JWT with a forged signature", forged_signature, ()),
        ("an expired JWT", s.idp.token(exp=int(time.time()) - 60), ()),
        ("a JWT without exp", s.idp.token(exp=None), ()),
        ("not a token at all", "garbage", ()),
    ]


def test_each_bad_credential_is_unauthenticated(setup: Setup) -> None:
    for label, token, extra in _unauthenticated_cases(setup):
        err = setup.refused("Evaluate", taxi(), token, extra)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (label, err.code(), err.details())
        info = error_info(err)
        assert info is not None and info.reason == "UNAUTHENTICATED", label
        if token:
            assert token not in (err.details() or "") and token[-20:] not in (
                err.details() or ""
            ), label


def test_health_and_reflection_stay_open(setup: Setup) -> None:
    channel, _ = stub(setup.server.address, setup.pki.credentials())
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        channel.close()


# -- who is allowed, and as whom ---------------------------------------------------------------


@pytest.mark.parametrize(
    "how, expected_caller",
    [
        ("api key", "transport-bureau"),
        ("jwt rs256", "recruitment-office"),
        ("jwt es256", "recruitment-office"),
    ],
)
def test_valid_credentials_evaluate_and_the_caller_is_the_proven_identity(
    setup: Setup, how: str, expected_caller: str
) -> None:
    token = {
        "api key": setup.tokens["transport"],
        "jwt rs256": setup.idp.token(),
        "jwt es256": setup.idp.token(alg="ES256"),
    }[how]
    # a forged x-caller changes nothing: the evaluation records who the credentials prove
    reply = setup.call("Evaluate", taxi(), token, (("x-caller", "district-office"),))
    assert reply.evaluation.caller == expected_caller
    fetched = setup.call(
        "GetEvaluation",
        pb.GetEvaluationRequest(purpose=PURPOSE, name=reply.evaluation.name),
        setup.idp.token(),
    )  # recruitment-office reads every scorecard
    assert fetched.evaluation.caller == expected_caller


# -- grants: roles, scorecards, own evaluations -------------------------------------------------


def _denied(err: grpc.RpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    info = error_info(err)
    assert info is not None
    return err.code(), info.reason, dict(info.metadata)


def test_a_grant_for_one_scorecard_cannot_evaluate_another(setup: Setup) -> None:
    err = setup.refused("Evaluate", taxi(), setup.tokens["procurement"])
    assert _denied(err) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "EVALUATOR_PERMISSION_REQUIRED",
        {"permission": "evaluator", "scorecard": "transport.taxi_driver"},
    )
    # batch and stream items: each refused item on its own, with the same reason
    batch = setup.call(
        "BatchEvaluate",
        pb.BatchEvaluateRequest(requests=[taxi(), taxi()]),
        setup.tokens["procurement"],
    )
    assert [r.error.code for r in batch.results] == [grpc.StatusCode.PERMISSION_DENIED.value[0]] * 2
    assert {r.error.reason for r in batch.results} == {"EVALUATOR_PERMISSION_REQUIRED"}
    channel, s = stub(setup.server.address, setup.pki.credentials())
    try:
        replies = list(
            s.StreamEvaluate(
                iter([pb.StreamEvaluateRequest(correlation_id="a", request=taxi())]),
                metadata=bearer(setup.tokens["procurement"]),
                timeout=10,
            )
        )
    finally:
        channel.close()
    assert [(r.correlation_id, r.error.reason) for r in replies] == [
        ("a", "EVALUATOR_PERMISSION_REQUIRED")
    ]


@pytest.mark.parametrize(
    "token, method, request_, reason",
    [
        (
            "district",
            "ListEvaluations",
            pb.ListEvaluationsRequest(
                purpose=PURPOSE, scorecard="scorecards/transport.taxi_driver"
            ),
            "READER_PERMISSION_REQUIRED",
        ),  # an evaluator without a reader grant
        (
            "transport",
            "ListEvaluations",
            pb.ListEvaluationsRequest(purpose=PURPOSE),
            "READER_PERMISSION_REQUIRED",
        ),  # every scorecard, beyond a grant for one
        (
            "transport",
            "ListEvaluations",
            pb.ListEvaluationsRequest(purpose=PURPOSE, scorecard="scorecards/procurement.supplier"),
            "READER_PERMISSION_REQUIRED",
        ),
        ("ops", "Evaluate", taxi(), "EVALUATOR_PERMISSION_REQUIRED"),  # admin is not evaluator
    ],
)
def test_outside_the_grant_is_permission_denied(
    setup: Setup, token: str, method: str, request_: Any, reason: str
) -> None:
    err = setup.refused(method, request_, setup.tokens[token])
    code, got_reason, _ = _denied(err)
    assert (code, got_reason) == (grpc.StatusCode.PERMISSION_DENIED, reason)


def test_a_reader_of_its_own_evaluations_cannot_list_or_get_another_callers(setup: Setup) -> None:
    subject = resident_id(9101)
    mine = setup.call("Evaluate", taxi(subject_id=subject), setup.tokens["transport"]).evaluation
    theirs = setup.call("Evaluate", taxi(subject_id=subject), setup.tokens["district"]).evaluation
    assert (mine.caller, theirs.caller) == ("transport-bureau", "district-office")
    listed = setup.call(
        "ListEvaluations",
        pb.ListEvaluationsRequest(
            purpose=PURPOSE, subject_id=subject, scorecard="scorecards/transport.taxi_driver"
        ),
        setup.tokens["transport"],
    )
    assert [e.name for e in listed.evaluations] == [mine.name]
    everyone = setup.call(
        "ListEvaluations",
        pb.ListEvaluationsRequest(purpose=PURPOSE, subject_id=subject),
        setup.idp.token(),
    )
    assert {e.name for e in everyone.evaluations} == {mine.name, theirs.name}  # an unlimited reader
    err = setup.refused(
        "GetEvaluation",
        pb.GetEvaluationRequest(purpose=PURPOSE, name=theirs.name),
        setup.tokens["transport"],
    )
    assert _denied(err)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "READER_PERMISSION_REQUIRED")
    assert (
        setup.call(
            "GetEvaluation",
            pb.GetEvaluationRequest(purpose=PURPOSE, name=mine.name),
            setup.tokens["transport"],
        ).evaluation.name
        == mine.name
    )


def test_a_key_revoked_while_serving_stops_working(setup: Setup) -> None:
    made = server_keys(setup.database_url, "create", "--caller", "transport-bureau")
    assert setup.call("Evaluate", taxi(), made["token"]).evaluation.caller == "transport-bureau"
    listed = {k["key_id"]: k["state"] for k in server_keys(setup.database_url, "list")}
    assert listed[made["key_id"]] == "active" and listed[setup.key_ids["revoked"]] == "revoked"
    server_keys(setup.database_url, "revoke", made["key_id"])

    def refused() -> bool:
        try:
            setup.call("Evaluate", taxi(), made["token"])
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
        return False

    wait_until(refused, timeout=10)


# -- refusals on record: the query audit sees what security refused -----------------------------


def _access_records(setup: Setup, token: str, request_id: str) -> list[access_pb.AccessRecord]:
    channel, _ = stub(setup.server.address, setup.pki.credentials())
    try:
        reply = access_pb_grpc.AccessLogServiceStub(channel).ListAccessRecords(
            access_pb.ListAccessRecordsRequest(page_size=1000), metadata=bearer(token), timeout=10
        )
    finally:
        channel.close()
    return [r for r in reply.access_records if r.request_id == request_id]


def test_refused_calls_leave_access_records_an_auditor_reads(setup: Setup) -> None:
    run = f"{time.time_ns():x}"
    refusals = [  # (label, token, request, code, reason, caller, proven_by)
        (
            "a bad API key",
            setup.tokens["transport"][:-4] + "AAAA",
            taxi(),
            grpc.StatusCode.UNAUTHENTICATED,
            "UNAUTHENTICATED",
            "",
            "",
        ),
        (
            "a grant for another scorecard",
            setup.tokens["procurement"],
            taxi(),
            grpc.StatusCode.PERMISSION_DENIED,
            "EVALUATOR_PERMISSION_REQUIRED",
            "procurement-centre",
            "api_key",
        ),
        (
            "no evaluator role at all",
            setup.tokens["ops"],
            taxi(),
            grpc.StatusCode.PERMISSION_DENIED,
            "EVALUATOR_PERMISSION_REQUIRED",
            "ops",
            "api_key",
        ),
    ]
    for label, token, request, code, _, _, _ in refusals:
        err = setup.refused("Evaluate", request, token, (("x-request-id", f"{run}-{label}"),))
        assert err.code() == code, (label, err.code(), err.details())

    # the access log is the auditor's: a reader or an evaluator is refused, and that is on record
    # too
    channel, _ = stub(setup.server.address, setup.pki.credentials())
    try:
        with pytest.raises(grpc.RpcError) as caught:
            access_pb_grpc.AccessLogServiceStub(channel).ListAccessRecords(
                access_pb.ListAccessRecordsRequest(),
                timeout=10,
                metadata=(
                    *bearer(setup.tokens["transport"]),
                    ("x-request-id", f"{run}-not an auditor"),
                ),
            )
    finally:
        channel.close()
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "AUDITOR_PERMISSION_REQUIRED"  # type: ignore[union-attr]

    for label, _, _, code, reason, caller, proven_by in refusals:
        # a refusal before the handler is committed in the background: give it a moment
        assert wait_until(
            lambda: _access_records(setup, setup.tokens["auditor"], f"{run}-{label}"), 10
        ), label
        records = _access_records(setup, setup.tokens["auditor"], f"{run}-{label}")
        assert [(r.method, r.code, r.reason, r.caller, r.proven_by) for r in records] == [
            ("Evaluate", code.name, reason, caller, proven_by)
        ], label  # exactly one each
    assert wait_until(
        lambda: _access_records(setup, setup.tokens["auditor"], f"{run}-not an auditor"), 10
    )
    [record] = _access_records(setup, setup.tokens["auditor"], f"{run}-not an auditor")
    assert (record.method, record.code, record.caller) == (
        "ListAccessRecords",
        "PERMISSION_DENIED",
        "transport-bureau",
    )
    # the scorecard check is the servicer's: its record names the subject and the scorecard
    [denied] = _access_records(
        setup, setup.tokens["auditor"], f"{run}-a grant for another scorecard"
    )
    assert (denied.subject_id, denied.scorecard.removeprefix("scorecards/")) == (
        taxi().subject.id,
        "transport.taxi_driver",
    )


# -- ExploreEvaluation: by name a read, on an input a what-if; both on record ---------------------


def _explore_by_name(name: str, purpose: str = PURPOSE) -> pb.ExploreEvaluationRequest:
    return pb.ExploreEvaluationRequest(name=name, purpose=purpose)


# (label, token, request: "mine" | "theirs" | "input", purpose, code, reason, returned)
EXPLORE_CASES = [
    (
        "a reader of its own evaluations explores its own",
        "transport",
        "mine",
        PURPOSE,
        grpc.StatusCode.OK,
        "",
        1,
    ),
    (
        "... but not another caller's",
        "transport",
        "theirs",
        PURPOSE,
        grpc.StatusCode.PERMISSION_DENIED,
        "READER_PERMISSION_REQUIRED",
        0,
    ),
    (
        "an evaluator without a reader grant cannot explore a stored one",
        "district",
        "theirs",
        PURPOSE,
        grpc.StatusCode.PERMISSION_DENIED,
        "READER_PERMISSION_REQUIRED",
        0,
    ),
    (
        "a reader grant for another scorecard",
        "procurement",
        "mine",
        PURPOSE,
        grpc.StatusCode.PERMISSION_DENIED,
        "READER_PERMISSION_REQUIRED",
        0,
    ),
    (
        "by name without a purpose",
        "transport",
        "mine",
        "",
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PURPOSE",
        0,
    ),
    ("the evaluator grant explores an input", "district", "input", "", grpc.StatusCode.OK, "", 0),
    (
        "an evaluator grant for another scorecard cannot explore an input",
        "procurement",
        "input",
        "",
        grpc.StatusCode.PERMISSION_DENIED,
        "EVALUATOR_PERMISSION_REQUIRED",
        0,
    ),
    (
        "an admin is not an evaluator",
        "ops",
        "input",
        "",
        grpc.StatusCode.PERMISSION_DENIED,
        "EVALUATOR_PERMISSION_REQUIRED",
        0,
    ),
]


def test_explore_evaluation_needs_the_grant_of_what_it_reads_and_leaves_an_access_record(
    setup: Setup,
) -> None:
    subject = resident_id(9102)
    mine = setup.call("Evaluate", taxi(subject_id=subject), setup.tokens["transport"]).evaluation
    theirs = setup.call("Evaluate", taxi(subject_id=subject), setup.tokens["district"]).evaluation
    run = f"{time.time_ns():x}"
    for label, token, target, purpose, code, reason, _ in EXPLORE_CASES:
        request = (
            pb.ExploreEvaluationRequest(evaluation=taxi(subject_id=subject))
            if target == "input"
            else _explore_by_name(mine.name if target == "mine" else theirs.name, purpose)
        )
        extra = (("x-request-id", f"{run}-{label}"),)
        if code == grpc.StatusCode.OK:
            reply = setup.call("ExploreEvaluation", request, setup.tokens[token], extra)
            assert reply.evaluation.name == ("" if target == "input" else mine.name), label
            assert reply.targets, label
            continue
        err = setup.refused("ExploreEvaluation", request, setup.tokens[token], extra)
        info = error_info(err)
        assert (err.code(), info.reason if info else None) == (code, reason), (label, err.details())

    for label, token, _, purpose, code, reason, returned in EXPLORE_CASES:
        assert wait_until(
            lambda: _access_records(setup, setup.tokens["auditor"], f"{run}-{label}"), 10
        ), label
        [record] = _access_records(setup, setup.tokens["auditor"], f"{run}-{label}")  # exactly one
        # a read without a purpose is refused before the evaluation is looked up, as GetEvaluation
        named = (
            ("", "")
            if code == grpc.StatusCode.INVALID_ARGUMENT
            else (subject, "transport.taxi_driver")
        )
        assert (
            record.method,
            record.code,
            record.reason,
            record.subject_id,
            record.scorecard.removeprefix("scorecards/"),
            record.purpose,
            record.evaluations_returned,
        ) == (
            "ExploreEvaluation",
            code.name,
            reason if code != grpc.StatusCode.OK else "",
            *named,
            purpose,
            returned,
        ), label
    # a what-if stores nothing: the subject still has the two evaluations made above
    listed = setup.call(
        "ListEvaluations",
        pb.ListEvaluationsRequest(purpose=PURPOSE, subject_id=subject),
        setup.idp.token(),
    )
    assert {e.name for e in listed.evaluations} == {mine.name, theirs.name}


# -- no secret in clear ----------------------------------------------------------------------------


def test_no_secret_appears_in_the_log_or_the_database(setup: Setup) -> None:
    test_each_bad_credential_is_unauthenticated(setup)  # every kind of token has been sent
    setup.call("Evaluate", taxi(), setup.tokens["transport"])
    setup.call("Evaluate", taxi(), setup.idp.token())
    secrets = [
        t.split("_", 2)[2] for t in setup.tokens.values()
    ]  # the secret part of each key (may hold "_")
    secrets += [setup.idp.token().rsplit(".", 1)[1], setup.idp.unsigned()]
    log = setup.server.log_text()
    assert log and "rpc" in log
    for secret in secrets:
        assert secret not in log
    if setup.db_file is not None:
        stored = b"".join(
            p.read_bytes() for p in setup.db_file.parent.glob(setup.db_file.name + "*")
        )
    else:
        import sqlalchemy as sa

        engine = sa.create_engine(
            setup.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        )
        with engine.connect() as conn:
            stored = "\n".join(
                str(row)
                for table in ("api_keys", "evaluations")
                for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
            ).encode()
        engine.dispose()
    assert stored
    for secret in secrets:
        assert secret.encode() not in stored
    for key_id in setup.key_ids.values():  # the ids are there: the secrets are not
        assert key_id.encode() in stored


# -- keys over the API, for an admin: `credit keys ...` -------------------------------------------


def _credit(setup: Setup, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTOR_CREDIT_")}
    env.update(SECTOR_CREDIT_TOKEN=token, SECTOR_CREDIT_CA=str(setup.pki.folder / "ca.pem"))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.clients.cli",
            "--server",
            f"localhost:{setup.server.port}",
            "keys",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_an_admin_manages_keys_with_the_cli(setup: Setup) -> None:
    made = _credit(
        setup,
        setup.tokens["ops"],
        "create",
        "--for",
        "transport-bureau",
        "--description",
        "night shift",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert (key["caller"], key["state"], key["description"]) == (
        "transport-bureau",
        "API_KEY_STATE_ACTIVE",
        "night shift",
    )
    assert setup.call("Evaluate", taxi(), key["token"]).evaluation.caller == "transport-bureau"
    listed = _credit(setup, setup.tokens["ops"], "list")
    assert listed.returncode == 0 and key["name"].removeprefix("apiKeys/") in listed.stdout
    assert key["token"].split("_", 2)[2] not in listed.stdout  # a listing never shows a secret
    revoked = _credit(setup, setup.tokens["ops"], "revoke", key["name"])
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    err = setup.refused("Evaluate", taxi(), key["token"])  # at once: this process revoked it
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "token, args, expected_exit, expected_text",
    [
        ("transport", ("list",), 1, "ADMIN_PERMISSION_REQUIRED"),  # no admin role
        ("ops", ("revoke", "0000000000000000"), 1, "no API key"),
        ("ops", ("create", "--for", " ", "--json"), 1, "caller: required"),
    ],
)
def test_keys_commands_refused(
    setup: Setup, token: str, args: tuple[str, ...], expected_exit: int, expected_text: str
) -> None:
    done = _credit(setup, setup.tokens[token], *args)
    assert done.returncode == expected_exit, done.stderr
    assert expected_text in done.stderr
