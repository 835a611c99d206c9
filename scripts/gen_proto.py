"""Generate the gRPC stubs under authnet/v1/, hardener/v1/ and keyproxy/v1/ from proto/*/v1/*.proto.

The stubs are committed so a clone runs without a code-generation step;
tests/test_grpc_services.py regenerates them into a temporary folder and fails
if the committed ones differ. Run `make proto` after editing a .proto file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
# Each package's protos compile into <package>/v1/ (the hardener is its own
# trust domain with its own API; it shares only this generator).
PACKAGES = ("authnet", "hardener", "keyproxy")


def generate(out_dir: Path) -> list[Path]:
    """Write *_pb2.py, *_pb2.pyi and *_pb2_grpc.py(i) for every .proto into out_dir."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate

    protos = [p for pkg in PACKAGES for p in sorted(PROTO_DIR.glob(f"{pkg}/v1/*.proto"))]
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_DIR}")
    include = Path(protoc.__file__).parent / "_proto"
    bindir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *[str(p.relative_to(PROTO_DIR)) for p in protos],
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    return [p for pkg in PACKAGES for p in sorted((out_dir / pkg / "v1").glob("*_pb2*.py*"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="output root (default: repo root)")
    ns = parser.parse_args()
    for path in generate(ns.out):
        print(path.relative_to(ns.out))


if __name__ == "__main__":
    sys.exit(main())
