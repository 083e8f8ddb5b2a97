"""Files in the shapes tills and spreadsheets export, long enough to span many small blocks, for
the differential and property tests: mostly good rows, with quoting, line ends, delimiters and
encodings as people's files have them, and now and then a row only the exact path can judge."""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ["Grocery", "Bakery", "Toys", "toys", "Café", "Bücher – neu", "Garden", "Deli",
         "=SUM(A1)", "Ünïcödé"]
BAD_VALUES = ["n/a", "", "1.5", "0x1F", "abc", "99999999999999999999", "1e3", " "]
# Values the columnar path reads beside plain digits, and ones it leaves to the exact path.
ODD_GOOD_VALUES = ["+7", " 8 ", "12.0", "-0", "007", "00000000000000000000042"]
COLUMNS = ["Date", "Department Name", "Number of Sales"]


@dataclass(frozen=True)
class Shape:
    """How a file is written; the rates are shares of rows."""

    delimiter: str = ","
    encoding: str = "utf-8"
    end: str = "\n"
    quote_all: bool = False
    delimiter_names: float = 0.0  # the name holds the delimiter (so it is quoted)
    line_breaks: float = 0.0  # the name holds a line break (so it is quoted)
    bad_values: float = 0.0  # the value is not a whole number that fits in 64 bits
    oddities: float = 0.0  # blank, all empty, short, empty name, padded value, stray quote

    @classmethod
    def draw(cls, rng: random.Random) -> Shape:
        """A random shape: each feature on or off, at a rare or a common rate."""
        delimiter = rng.choice([",", ";"])
        return cls(delimiter=delimiter,
                   encoding="cp1252" if delimiter == ";" and rng.random() < 0.7 else "utf-8",
                   end=rng.choice(["\n", "\r\n"]), quote_all=rng.random() < 0.3,
                   delimiter_names=rng.choice([0, 0.05, 0.3]),
                   line_breaks=rng.choice([0, 0.001, 0.01]),
                   bad_values=rng.choice([0, 0.001, 0.01]),
                   oddities=rng.choice([0, 0.002, 0.02]))


def exported_file(shape: Shape, rows: int, seed: int) -> bytes:
    """A header and rows in the given shape, the same for the same seed."""
    rng = random.Random(seed)
    columns = rng.sample(COLUMNS, len(COLUMNS))
    lines = [shape.delimiter.join(_cell(shape, column) for column in columns)]
    for _ in range(rows):
        row = {"Date": f"2024-0{rng.randint(1, 9)}-{rng.randint(10, 28)}",
               "Department Name": rng.choice(NAMES), "Number of Sales": str(rng.randint(-5, 999))}
        if rng.random() < shape.delimiter_names:
            row["Department Name"] = f"Deli{shape.delimiter} Misc"
        if rng.random() < shape.line_breaks:
            row["Department Name"] = rng.choice(["Deli\nMisc", "Deli\r\nMisc", "\nDeli"])
        if rng.random() < shape.bad_values:
            row["Number of Sales"] = rng.choice(BAD_VALUES)
        cells = [_cell(shape, row[column]) for column in columns]
        if rng.random() < shape.oddities:
            cells = _odd(rng, shape, cells, columns.index("Department Name"),
                         columns.index("Number of Sales"))
        lines.append(shape.delimiter.join(cells))
    text = shape.end.join(lines) + (shape.end if rng.random() < 0.9 else "")
    return text.encode(shape.encoding)


def _cell(shape: Shape, value: str) -> str:
    if shape.quote_all or any(ch in value for ch in (shape.delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def _odd(rng: random.Random, shape: Shape, cells: list[str], name: int,
         value: int) -> list[str]:
    """A row that is blank, all empty or short, or has an empty name, an unusual value, a
    quote inside an unquoted name (a character to the csv module, as in `32" TV`) or a field
    more than the header (after a number in the last column, an unquoted thousands separator:
    `Garden,1,200`)."""
    kind = rng.randrange(7)
    if kind == 6:  # after the number, or at the end of the row
        at = value + 1 if rng.random() < 0.5 else len(cells)
        return [*cells[:at], "200", *cells[at:]]
    if kind == 0:
        return [""]
    if kind == 1:
        return [""] * len(cells)
    if kind == 2:
        return cells[:-1]
    cells = list(cells)
    if kind == 3:
        cells[name] = rng.choice(["", "  ", '""'])
    elif kind == 4:
        cells[value] = _cell(shape, rng.choice(ODD_GOOD_VALUES))
    else:  # the columnar path reads the first as the csv module does; the second it leaves
        cells[name] = rng.choice(['32" TV', 'TV 32"'])
    return cells
