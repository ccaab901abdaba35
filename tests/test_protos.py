"""The API definition: generated code is fresh, buf lint is clean, everything is documented."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
PACKAGE = PROTOS / "sector_credit" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _generated(package_dir: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(package_dir.iterdir())
        if p.name.endswith(GENERATED_SUFFIXES)
    }


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(PROTOS / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = _generated(tmp_path / "sector_credit" / "v1")
    checked_in = _generated(PACKAGE)
    assert fresh, "generate.py produced nothing"
    assert sorted(checked_in) == sorted(fresh), "run: .venv/bin/python protos/generate.py"
    stale = [name for name in fresh if fresh[name] != checked_in[name]]
    assert not stale, f"stale generated code {stale}; run: .venv/bin/python protos/generate.py"


def test_generated_imports_use_the_package_path() -> None:
    for name, text in _generated(PACKAGE).items():
        for line in text.decode().splitlines():
            if line.startswith(("import ", "from ")) and "sector_credit" in line:
                assert line.startswith("from sector_credit.v1 import "), (name, line)


def _buf() -> str:
    candidate = Path(sys.prefix) / "bin" / "buf"
    found = str(candidate) if candidate.exists() else shutil.which("buf")
    if not found:
        pytest.fail("buf not found: install the dev extras (buf-bin)")
    return found


def test_buf_lint_is_clean() -> None:
    result = subprocess.run(
        [_buf(), "lint", str(PROTOS)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def _file_descriptors_with_source_info(tmp_path: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    out = tmp_path / "api.pb"
    well_known = Path(protoc.__file__).parent / "_proto"
    protos = sorted(str(p.relative_to(PROTOS)) for p in PACKAGE.glob("*.proto"))
    args = [
        "protoc",
        f"--proto_path={PROTOS}",
        f"--proto_path={well_known}",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        *protos,
    ]
    assert protoc.main(args) == 0
    return list(descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file)


# Descriptor paths: the field numbers of FileDescriptorProto, DescriptorProto, ... members.
_MESSAGE_TYPE, _ENUM_TYPE, _SERVICE = 4, 5, 6
_FIELD, _NESTED_TYPE, _NESTED_ENUM, _ONEOF_DECL = 2, 3, 4, 8
_ENUM_VALUE, _METHOD = 2, 2


def _undocumented(file: descriptor_pb2.FileDescriptorProto) -> list[str]:
    comments = {
        tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location
    }
    missing: list[str] = []

    def need(path: tuple[int, ...], what: str) -> None:
        if not comments.get(path):
            missing.append(f"{file.name}: {what}")

    def walk_enum(enum: descriptor_pb2.EnumDescriptorProto, path: tuple[int, ...]) -> None:
        need(path, enum.name)
        for i, value in enumerate(enum.value):
            need((*path, _ENUM_VALUE, i), f"{enum.name}.{value.name}")

    def walk_message(msg: descriptor_pb2.DescriptorProto, path: tuple[int, ...]) -> None:
        if msg.options.map_entry:
            return
        need(path, msg.name)
        for i, f in enumerate(msg.field):
            need((*path, _FIELD, i), f"{msg.name}.{f.name}")
        for i, o in enumerate(msg.oneof_decl):
            if not o.name.startswith("_"):  # the synthetic oneof of a proto3 `optional`
                need((*path, _ONEOF_DECL, i), f"{msg.name}.{o.name}")
        for i, nested in enumerate(msg.nested_type):
            walk_message(nested, (*path, _NESTED_TYPE, i))
        for i, enum in enumerate(msg.enum_type):
            walk_enum(enum, (*path, _NESTED_ENUM, i))

    for i, msg in enumerate(file.message_type):
        walk_message(msg, (_MESSAGE_TYPE, i))
    for i, enum in enumerate(file.enum_type):
        walk_enum(enum, (_ENUM_TYPE, i))
    for i, svc in enumerate(file.service):
        need((_SERVICE, i), svc.name)
        for j, rpc in enumerate(svc.method):
            need((_SERVICE, i, _METHOD, j), f"{svc.name}.{rpc.name}")
    return missing


def test_every_element_has_a_leading_comment(tmp_path: Path) -> None:
    """Buf's COMMENTS rules say the same; this keeps the check when buf is not at hand."""
    files = _file_descriptors_with_source_info(tmp_path)
    assert {f.name for f in files} >= {"sector_credit/v1/credit_evaluation_service.proto"}
    missing = [what for file in files for what in _undocumented(file)]
    assert not missing, "undocumented: " + ", ".join(missing)


def test_the_service_has_the_methods_of_the_design() -> None:
    from sector_credit.v1 import credit_evaluation_service_pb2 as service_pb2

    service = service_pb2.DESCRIPTOR.services_by_name["CreditEvaluationService"]
    assert service.full_name == "sector_credit.v1.CreditEvaluationService"
    methods = {m.name: m for m in service.methods}
    assert sorted(methods) == sorted(
        [
            "ListScorecards",
            "GetScorecard",
            "Evaluate",
            "BatchEvaluate",
            "StreamEvaluate",
            "GetEvaluation",
            "ListEvaluations",
            "ExploreEvaluation",
        ]
    )
    stream = methods["StreamEvaluate"]
    assert stream.client_streaming and stream.server_streaming
    assert not any(
        m.client_streaming or m.server_streaming
        for n, m in methods.items()
        if n != "StreamEvaluate"
    )
