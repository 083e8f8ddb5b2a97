"""Writes deterministic sales CSVs: the same arguments always give the same bytes.

A file's shape says how its rows are written; every shape holds the same rows (dates,
departments, numbers, in the same order) as the plain file of the same size, so that their times
compare. The size is the plain file's: a shape that writes more bytes per row is larger.
"""

from __future__ import annotations

import argparse
import random
import sys
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

HEADER = b"Date,Department Name,Number of Sales\n"
# Large files repeat a random base this big: generation stays fast, aggregation sees no
# difference (the work is per row).
_BASE_BYTES = 16 * 1000 * 1000
# The field a bad row holds instead of its number; nothing else in any file contains it.
BAD_NUMBER = "n/a"
# One row in this many is a bad row (shape bad_numbers) or has a line break (line_breaks).
_EVERY = 1000
# The department of a line_breaks row, as tills write a two-line label.
_MULTILINE_NAME = "Returns\nNight desk"
# Windows-1252 words whose accented letters (0xA0 to 0xFF) read the same in Latin-1, so that a
# reader without Windows-1252 (DuckDB without its encodings extension) still agrees on them.
_ACCENTED_WORDS = ("Café", "Bücher", "Crème brûlée", "Épicerie", "Müsli", "Pâtisserie",
                   "Señales", "Smørrebrød", "Jouets", "Fleurs")


@dataclass(frozen=True)
class Shape:
    """How rows are written: delimiter, quoting, line ends, encoding, odd rows."""

    name: str
    description: str
    delimiter: str = ","
    line_end: str = "\n"
    quote_all: bool = False
    encoding: str = "utf-8"
    comma_names: bool = False  # one department in 20 has a comma in its name, so it is quoted
    bad_numbers: bool = False  # one row in _EVERY has BAD_NUMBER for its number
    line_breaks: bool = False  # one row in _EVERY has a quoted department with a line break
    accented: bool = False  # department names with accented letters


SHAPES = {shape.name: shape for shape in (
    Shape("plain", "no quotes, LF, UTF-8"),
    Shape("comma_names", "~5 % of rows quoted: one department in 20 is \"Deli, Misc NN\"",
          comma_names=True),
    Shape("quoted", "every field quoted, header too", quote_all=True),
    Shape("bad_numbers", f"0.1 % of rows have {BAD_NUMBER} for a number", bad_numbers=True),
    Shape("line_breaks", "0.1 % of rows: a quoted department with a line break",
          line_breaks=True),
    Shape("crlf", "CRLF line ends", line_end="\r\n"),
    Shape("semicolon_1252", "; delimiter, Windows-1252 names (Café, Bücher)", delimiter=";",
          encoding="cp1252", accented=True),
)}


def _draw(rng: random.Random, size: int, departments: int,
          name_bytes: int) -> tuple[list[tuple[int, int, int, int]], list[int]]:
    """Rows (month, day, department, number) until their plain lines reach size bytes, and the
    plain lines' cumulative ends."""
    rows, lengths = [], []
    written = 0
    # A plain line is "2026-MM-DD," + name + "," + number + "\n".
    fixed = len("2026-01-01,") + name_bytes + 2
    while written < size:
        row = (rng.randint(1, 12), rng.randint(1, 28), rng.randrange(departments),
               rng.randint(1, 500))
        rows.append(row)
        length = fixed + len(str(row[3]))
        lengths.append(length)
        written += length
    return rows, list(accumulate(lengths))


def _field(text: str, shape: Shape) -> str:
    """A field as the shape writes it: quoted if it must be, or if the shape quotes all."""
    if shape.quote_all or any(c in text for c in (shape.delimiter, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


def _names(departments: int, shape: Shape) -> list[str]:
    """Every department's name, as its field is written."""
    width = len(str(departments - 1))
    names = []
    for i in range(departments):
        if shape.accented:
            name = f"{_ACCENTED_WORDS[i % len(_ACCENTED_WORDS)]} {i:0{width}d}"
        elif shape.comma_names and i % 20 == 0:
            name = f"Deli, Misc {i:0{width}d}"
        else:
            name = f"Department {i:0{width}d}"
        names.append(_field(name, shape))
    return names


def header(shape: Shape) -> bytes:
    """The header row in the shape."""
    cells = [_field(cell, shape) for cell in ("Date", "Department Name", "Number of Sales")]
    return (shape.delimiter.join(cells) + shape.line_end).encode(shape.encoding)


def _render(rows: list[tuple[int, int, int, int]], names: list[str], shape: Shape) -> bytes:
    """The rows written in the shape."""
    d, end = shape.delimiter, shape.line_end
    dates = [[_field(f"2026-{m:02d}-{day:02d}", shape) for day in range(29)] for m in range(13)]
    numbers = [_field(str(n), shape) for n in range(501)]
    lines = [f"{dates[m][day]}{d}{names[k]}{d}{numbers[n]}{end}" for m, day, k, n in rows]
    # Odd rows by their place in the base, so that every repeat of it has them alike.
    if shape.bad_numbers:
        bad = _field(BAD_NUMBER, shape)
        for i in range(_EVERY // 2 - 1, len(rows), _EVERY):
            m, day, k, _n = rows[i]
            lines[i] = f"{dates[m][day]}{d}{names[k]}{d}{bad}{end}"
    if shape.line_breaks:
        multiline = _field(_MULTILINE_NAME, shape)
        for i in range(_EVERY - 1, len(rows), _EVERY):
            m, day, _k, n = rows[i]
            lines[i] = f"{dates[m][day]}{d}{multiline}{d}{numbers[n]}{end}"
    return "".join(lines).encode(shape.encoding)


def generate(path: Path, size_bytes: int, departments: int = 20, seed: int = 1,
             shape: str = "plain") -> int:
    """Writes the rows of a plain file of about size_bytes (whole rows only) in the shape;
    returns the number of data rows.

    With many departments every row is drawn afresh, so that the file really holds about that
    many distinct names; with few, a random base is repeated.
    """
    form = SHAPES[shape]
    rng = random.Random(seed)
    names = _names(departments, form)
    name_bytes = len("Department ") + len(str(departments - 1))
    body_size = max(0, size_bytes - len(HEADER))
    rows = 0
    with open(path, "wb") as out:
        out.write(header(form))
        if departments > 1000:
            while body_size > 0:
                block, ends = _draw(rng, min(body_size, _BASE_BYTES), departments, name_bytes)
                out.write(_render(block, names, form))
                rows += len(block)
                body_size -= ends[-1]
            return rows
        base_rows, ends = _draw(rng, min(body_size, _BASE_BYTES), departments, name_bytes)
        if not base_rows:
            return 0
        base = _render(base_rows, names, form)
        repeats, body_size = divmod(body_size, ends[-1])
        for _ in range(repeats):
            out.write(base)
        rows += repeats * len(base_rows)
        # The tail: as many of the base's rows as fit whole in what is left of the plain size.
        tail = bisect_right(ends, body_size)
        if tail:
            out.write(_render(base_rows[:tail], names, form))
            rows += tail
    return rows


def bad_number_rows(path: Path) -> int:
    """How many rows of a generated file hold BAD_NUMBER (the rows a server must reject)."""
    marker = BAD_NUMBER.encode()
    count = 0
    carry = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            # A marker may straddle two reads; the carry is too short to hold a whole one.
            window = carry + chunk
            count += window.count(marker)
            carry = window[-(len(marker) - 1):]
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--size-mb", type=float, default=100,
                        help="size in MB (10^6 bytes) of the plain file with these rows")
    parser.add_argument("--departments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="plain",
                        help="how the rows are written (default plain)")
    args = parser.parse_args(argv)
    rows = generate(args.path, int(args.size_mb * 1_000_000), args.departments, args.seed,
                    args.shape)
    print(f"{args.path}: {rows:,} rows, up to {args.departments:,} departments, "
          f"shape {args.shape} ({SHAPES[args.shape].description})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
