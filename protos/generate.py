"""Regenerate the Python code for the sector_credit API from its .proto files.

    .venv/bin/python protos/generate.py            # into protos/ (the checked-in copy)
    .venv/bin/python protos/generate.py --out DIR  # into DIR/sector_credit/v1/ (staleness test)

Writes `*_pb2.py`, `*_pb2_grpc.py` and their `.pyi` stubs (mypy-protobuf) next to the
protos. The proto tree mirrors the Python package path (`sector_credit/v1/` is the package
`sector_credit.v1`), so the generated imports read `from sector_credit.v1 import ...` with
no rewriting. The generated files are checked in; tests/test_protos.py fails when they are
stale.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "sector_credit" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    return sorted(PACKAGE_DIR.glob("*.proto"))


def _plugin(name: str) -> str:
    """The path of a protoc plugin installed beside this interpreter (mypy-protobuf)."""
    candidate = Path(sys.prefix) / "bin" / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install the dev extras (mypy-protobuf)")
    return found


def _has_service(proto: Path) -> bool:
    return re.search(r"^service\s", proto.read_text(encoding="utf-8"), re.MULTILINE) is not None


def generate(out_root: Path = PROTO_ROOT) -> list[Path]:
    """Generate into `out_root/sector_credit/v1/`; returns the generated files."""
    (out_root / "sector_credit" / "v1").mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    out = str(out_root)
    common = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
    ]
    messages = [str(p.relative_to(PROTO_ROOT)) for p in proto_files()]
    # gRPC modules only for the files that declare a service: no empty *_pb2_grpc.py files
    services = [str(p.relative_to(PROTO_ROOT)) for p in proto_files() if _has_service(p)]
    runs = [
        [f"--python_out={out}", f"--mypy_out=quiet:{out}", *messages],
        [f"--grpc_python_out={out}", f"--mypy_grpc_out=quiet:{out}", *services],
    ]
    for run in runs:
        if protoc.main([*common, *run]) != 0:
            raise SystemExit("protoc failed")
    return generated_files(out_root)


def generated_files(root: Path = PROTO_ROOT) -> list[Path]:
    package = root / "sector_credit" / "v1"
    return sorted(p for p in package.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_ROOT, help="output root")
    out_root = parser.parse_args().out.resolve()
    if out_root == PROTO_ROOT:
        for stale in generated_files():  # a removed .proto must not leave modules behind
            stale.unlink()
    for path in generate(out_root):
        print(path.relative_to(out_root))


if __name__ == "__main__":
    main()
