"""Writes a deterministic sales CSV of a given size: the same arguments give the same bytes."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path


def generate(path: Path, size_bytes: int, departments: int, seed: int = 1) -> int:
    """Writes rows until the file reaches size_bytes; returns the number of data rows."""
    rng = random.Random(seed)
    names = [f"Department {i:07d}" if departments > 1000 else f"Dept {i}"
             for i in range(departments)]
    rows = 0
    with open(path, "wb") as out:
        out.write(b"Date,Department Name,Number of Sales\n")
        written = 0
        while written < size_bytes:
            lines = []
            for _ in range(10_000):
                lines.append(f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                             f"{names[rng.randrange(departments)]},{rng.randint(1, 500)}\n")
            block = "".join(lines).encode()
            if written + len(block) > size_bytes:
                cut = block.rfind(b"\n", 0, size_bytes - written) + 1
                block = block[:cut] if cut > 0 else block[:block.index(b"\n") + 1]
            out.write(block)
            written += len(block)
            rows += block.count(b"\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--size-mb", type=float, default=100, help="size in MB (10^6 bytes)")
    parser.add_argument("--departments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows = generate(args.path, int(args.size_mb * 1_000_000), args.departments, args.seed)
    print(f"{args.path}: {rows:,} rows, {args.departments:,} departments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
