"""Generates salesapi/sales_pb2*.py from proto/sales.proto; the only way those files are made."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "salesapi"


def generate(out_dir: Path) -> None:
    """Writes the generated modules for package `salesapi` under out_dir/salesapi."""
    (out_dir / PACKAGE).mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    # The virtual path `salesapi/sales.proto` makes the generated gRPC module import
    # `salesapi.sales_pb2` as a package module, with no hand edits.
    code = protoc.main([
        "grpc_tools.protoc",
        f"--proto_path={PACKAGE}={ROOT / 'proto'}",
        f"--proto_path={include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"{PACKAGE}/sales.proto",
    ])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="folder to write salesapi/ under")
    args = parser.parse_args(argv)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
