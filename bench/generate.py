"""Writes deterministic sales CSVs: the same arguments always give the same bytes."""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

HEADER = b"Date,Department Name,Number of Sales\n"
# Large files repeat a random base this big: generation stays fast, aggregation sees no
# difference (the work is per row).
_BASE_BYTES = 16 * 1000 * 1000


def _rows(rng: random.Random, size: int, departments: int) -> bytes:
    width = len(str(departments - 1))
    names = [f"Department {i:0{width}d}" for i in range(departments)]
    lines = []
    written = 0
    while written < size:
        line = (f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d},"
                f"{names[rng.randrange(departments)]},{rng.randint(1, 500)}\n")
        lines.append(line)
        written += len(line)
    return "".join(lines).encode()


def generate(path: Path, size_bytes: int, departments: int = 20, seed: int = 1) -> int:
    """Writes about size_bytes of rows (whole rows only); returns the number of data rows.

    With many departments every row is drawn afresh, so that the file really holds about that
    many distinct names; with few, a random base is repeated.
    """
    rng = random.Random(seed)
    body_size = max(0, size_bytes - len(HEADER))
    rows = 0
    with open(path, "wb") as out:
        out.write(HEADER)
        if departments > 1000:
            while body_size > 0:
                block = _rows(rng, min(body_size, _BASE_BYTES), departments)
                out.write(block)
                rows += block.count(b"\n")
                body_size -= len(block)
            return rows
        base = _rows(rng, min(body_size, _BASE_BYTES), departments)
        while body_size >= len(base):
            out.write(base)
            rows += base.count(b"\n")
            body_size -= len(base)
        if body_size > 0:
            tail = base[:base.rfind(b"\n", 0, body_size) + 1]
            out.write(tail)
            rows += tail.count(b"\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--size-mb", type=float, default=100, help="size in MB (10^6 bytes)")
    parser.add_argument("--departments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rows = generate(args.path, int(args.size_mb * 1_000_000), args.departments, args.seed)
    print(f"{args.path}: {rows:,} rows, up to {args.departments:,} departments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
