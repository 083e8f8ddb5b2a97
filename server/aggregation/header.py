"""The header row: blank lines before it, the delimiter, the two columns, Arrow's read options."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import NamedTuple

import pyarrow
import pyarrow.csv

from server.aggregation.encoding import decode_guess
from server.aggregation.errors import InputError, size_text
from server.aggregation.state import ParseState

REQUIRED_DEPARTMENT = "Department Name"
REQUIRED_SALES = "Number of Sales"
DELIMITERS = (",", ";", "\t", "|")
# White space trimmed around names and numbers: ASCII only, so that trimming means the same
# before and after the file's encoding is known.
WS = " \t\r\n\v\f"
# A header line longer than this with no line break is not a CSV header.
MAX_HEADER_BYTES = 1 << 20
_EOL = re.compile(rb"\r\n|\r|\n")
# Arrow's own block size: past any block of ours, so that Arrow reads a block as one (one chunk
# per column; measured no slower than its default 1 MB).
_ARROW_BLOCK = 1 << 30


class ArrowOptions(NamedTuple):
    """How Arrow reads rows: the two columns' names and the reader's options, with quoting for
    blocks that hold a quote and without it (a few per cent faster) for the others."""

    department: str
    sales: str
    read: pyarrow.csv.ReadOptions
    parse: pyarrow.csv.ParseOptions
    parse_quoted: pyarrow.csv.ParseOptions
    convert: pyarrow.csv.ConvertOptions


@dataclass(frozen=True)
class Header:
    """What the header row says about every row after it."""

    delimiter: str
    department: int  # column positions
    sales: int
    arrow: ArrowOptions
    columns: int  # in the header row

    @property
    def needed(self) -> int:
        """Fields a row must have to hold both columns."""
        return max(self.department, self.sales) + 1


def allow_csv_fields(length: int) -> None:
    """Raises the csv module's field limit (process-wide) to at least length; never lowers it."""
    if csv.field_size_limit() < length:
        csv.field_size_limit(length)


def read_header(state: ParseState, data: bytes | bytearray,
                final: bool) -> tuple[Header | None, bytes | bytearray]:
    """Skips blank lines and reads the header: (header, the bytes after it) or (None, b"")."""
    # While the header line is not whole, its bytes are kept as the state's pending bytes.
    position = 0
    while True:
        match = _EOL.search(data, position)
        if match is None or (match.group() == b"\r" and match.end() == len(data) and not final):
            if not final:  # the line is not whole yet (a CR may be half of a CRLF)
                state.pending = data[position:]
                if len(state.pending) > MAX_HEADER_BYTES:
                    raise InputError(f"The first line of the file is longer than "
                                     f"{size_text(MAX_HEADER_BYTES)} with no line break, so it "
                                     "is not a CSV header row.")
                return None, b""
            end = len(data)
            line = data[position:]
        else:
            end = match.end()
            line = data[position:match.start()]
        state.line_base += 1 if line or end > position else 0
        if line.strip(WS.encode()):
            return _header(line.decode("latin-1"), state.line_base), data[end:]
        if end >= len(data):
            return None, b""
        position = end


def _header(line: str, line_number: int) -> Header:
    # A header cell can be as long as its line, and a whole header line has no limit of its own.
    allow_csv_fields(len(line))
    delimiter, names = _detect_delimiter(line)
    try:
        department = names.index(REQUIRED_DEPARTMENT.casefold())
        sales = names.index(REQUIRED_SALES.casefold())
    except ValueError:
        found = _columns_found([decode_guess(cell).strip()
                                for cell in next(csv.reader([line], delimiter=delimiter))])
        missing = [name for name in (REQUIRED_DEPARTMENT, REQUIRED_SALES)
                   if name.casefold() not in names]
        columns = " and ".join(f"\"{name}\"" for name in missing)
        plural = "columns" if len(missing) > 1 else "column"
        raise InputError(f"The header row (line {line_number}) has no "
                         f"{columns} {plural}. Columns found: {found}.") from None
    return Header(delimiter, department, sales,
                  _arrow_options(delimiter, len(names), department, sales), len(names))


def _columns_found(cells: list[str], most: int = 12, longest: int = 40) -> str:
    """The header's cells as a short list for a sentence: a wrong file (JSON, a report) may
    have thousands of them, or one of a megabyte."""
    shown = [f"\"{cell[:longest]}{'...' if len(cell) > longest else ''}\""
             for cell in cells[:most]]
    if len(cells) > most:
        shown.append(f"and {len(cells) - most:,} more")
    return ", ".join(shown)


def _detect_delimiter(line: str) -> tuple[str, list[str]]:
    """Picks the delimiter that splits the header line into the required columns."""
    wanted = {REQUIRED_DEPARTMENT.casefold(), REQUIRED_SALES.casefold()}
    best: tuple[str, list[str]] | None = None
    for delimiter in DELIMITERS:
        names = [_header_name(cell) for cell in next(csv.reader([line], delimiter=delimiter))]
        if wanted.issubset(names):
            return delimiter, names
        if best is None or len(names) > len(best[1]):
            best = (delimiter, names)
    return best


def _header_name(field_text: str) -> str:
    """Normalises a header cell (Latin-1 view) for matching: decoded, trimmed, case-folded."""
    return decode_guess(field_text).strip().lstrip("\ufeff").strip().casefold()


def _arrow_options(delimiter: str, columns: int, department: int, sales: int) -> ArrowOptions:
    column_names = [f"c{index}" for index in range(columns)]
    department_name, sales_name = column_names[department], column_names[sales]
    # A blank line is then a row of empty fields (which the exact path skips), so that rows
    # and lines only part ways at line breaks inside quoted fields.
    plain = dict(delimiter=delimiter, escape_char=False, ignore_empty_lines=False)
    return ArrowOptions(
        department_name, sales_name,
        pyarrow.csv.ReadOptions(column_names=column_names, use_threads=False,
                                block_size=_ARROW_BLOCK),
        pyarrow.csv.ParseOptions(quote_char=False, double_quote=False, newlines_in_values=False,
                                 **plain),
        # Line breaks in quoted fields: Arrow's parser reads them whatever this says; it tells
        # Arrow not to cut its blocks inside one, should a block of ours pass _ARROW_BLOCK.
        pyarrow.csv.ParseOptions(quote_char='"', double_quote=True, newlines_in_values=True,
                                 **plain),
        # Both as bytes: names stay in the file's encoding until it is known, and sales values
        # are judged by the contract's rule (numbers.py), not by Arrow's (which reads 0x10).
        pyarrow.csv.ConvertOptions(
            column_types={department_name: pyarrow.binary(), sales_name: pyarrow.binary()},
            include_columns=[department_name, sales_name], null_values=[],
            strings_can_be_null=False, quoted_strings_can_be_null=False),
    )
