"""The columnar path: blocks of plain rows read and summed by Arrow, in C++ without the GIL."""

from __future__ import annotations

import numpy
import pyarrow
import pyarrow.compute
import pyarrow.csv

from server.aggregation.header import WS, ArrowOptions
from server.aggregation.merge import Partials, group
from server.aggregation.state import ParseState
from server.aggregation.tuning import Tuning
from server.departments import value_offsets

_WS_BYTES = numpy.zeros(256, bool)
_WS_BYTES[list(WS.encode())] = True
_PADDING = "^[ \t\r\n\v\f]+|[ \t\r\n\v\f]+$"


def may_be_plain(data: bytes | bytearray) -> bool:
    """False for bytes with a quote character or perhaps a 0x/0X: they take the exact path."""
    # Arrow reads 0x10 as a hexadecimal number; the contract rejects it. Searching for the single
    # byte first is fast; `0x` alone is slow where zeros abound.
    hex_prefix = (b"x" in data and b"0x" in data) or (b"X" in data and b"0X" in data)
    return b'"' not in data and not hex_prefix


class ColumnarPath:
    """Sums blocks of plain rows into partial tables; refuses a block any row of which needs the
    exact path: another width, an empty or padded-out name, a value that is not a plain whole
    number, a row too long, or sums that could leave 64 bits."""

    def __init__(self, arrow: ArrowOptions, state: ParseState, partials: Partials,
                 tuning: Tuning, max_field_bytes: int) -> None:
        self._arrow = arrow
        self._state = state
        self._partials = partials
        self._tuning = tuning
        self._max_field_bytes = max_field_bytes
        self._rows_per_block = False  # blocks are kept as rows, not grouped one by one

    def aggregate(self, block: bytes | bytearray) -> bool:
        """Sums a block of whole rows; False, with no sum changed, if it needs the exact path."""
        table = self._read(block)
        if table is None:
            return False
        rows = table.num_rows
        if rows:
            low, high = pyarrow.compute.min_max(table.column(self._arrow.sales)).values()
            bound = max(abs(low.as_py()), abs(high.as_py())) * rows
            if not self._partials.fits(bound):
                return False  # Arrow's sums wrap around; Python's integers do not
            partial, grouped = self._partial(table, rows)
            partial = self._trimmed(partial)
            if partial is None:
                return False  # an empty name: the exact path rejects its rows by line
            self._partials.add(partial, bound, grouped)
        self._state.rows_processed += rows
        self._state.line_base += rows
        return True

    def _read(self, block: bytes | bytearray) -> pyarrow.Table | None:
        if _may_hold_long_line(block, self._max_field_bytes) and \
                _longest_line(block) > self._max_field_bytes:
            return None  # the exact path measures rows exactly and refuses the long one
        arrow = self._arrow
        try:
            return pyarrow.csv.read_csv(pyarrow.BufferReader(pyarrow.py_buffer(block)),
                                        read_options=arrow.read, parse_options=arrow.parse,
                                        convert_options=arrow.convert)
        except pyarrow.ArrowInvalid:
            return None

    def _partial(self, table: pyarrow.Table, rows: int) -> tuple[pyarrow.Table, bool]:
        """The block's sums per name, or its rows as they are; and whether they were grouped."""
        department, sales = self._arrow.department, self._arrow.sales
        if self._rows_per_block:
            # So many departments that a block hardly groups: keep its rows, and group many
            # blocks' rows at once (fewer, larger hash passes).
            return pyarrow.table({"k": table.column(department), "v": table.column(sales)}), False
        grouped = table.group_by(department, use_threads=False).aggregate([(sales, "sum")])
        partial = pyarrow.table({"k": grouped.column(department),
                                 "v": grouped.column(f"{sales}_sum")})
        self._rows_per_block = (rows >= self._tuning.rows_to_judge_grouping
                                and partial.num_rows > rows // 2)
        return partial, True

    def _trimmed(self, partial: pyarrow.Table) -> pyarrow.Table | None:
        """The sums with names trimmed of white space, or None if a name is empty."""
        empty, padded = _name_edges(partial.column("k"))
        if empty:
            return None
        if not padded:
            return partial
        names = pyarrow.compute.replace_substring_regex(partial.column("k"), _PADDING, "")
        if pyarrow.compute.min(pyarrow.compute.binary_length(names)).as_py() == 0:
            return None
        return group(pyarrow.table({"k": names, "v": partial.column("v")}),
                     self._tuning.split_rows)


def _may_hold_long_line(block: bytes | bytearray, limit: int) -> bool:
    """False when no line can be longer than limit: a longer line would cover a whole aligned
    window of limit/2 bytes with no LF in it, and every window has one. A few finds per block."""
    window = max(1, limit // 2)
    return any(block.find(b"\n", start, start + window) < 0
               for start in range(0, len(block) - window + 1, window))


def _longest_line(block: bytes | bytearray) -> int:
    """An upper bound of the longest row in a block without quotes (a lone CR counts as part of
    its line), computed in Arrow."""
    lines = pyarrow.compute.split_pattern(pyarrow.scalar(bytes(block), pyarrow.binary()), "\n")
    return pyarrow.compute.max(pyarrow.compute.binary_length(lines.values)).as_py() or 0


def _name_edges(names: pyarrow.ChunkedArray) -> tuple[bool, bool]:
    """(any name empty, any name starting or ending with white space) for binary names."""
    empty = padded = False
    for chunk in names.chunks:
        offsets = value_offsets(chunk)
        if not len(chunk):
            continue
        if (offsets[1:] == offsets[:-1]).any():
            empty = True
            continue
        data = numpy.frombuffer(chunk.buffers()[2], numpy.uint8)
        padded = padded or bool(_WS_BYTES[data[offsets[:-1]]].any()
                                or _WS_BYTES[data[offsets[1:] - 1]].any())
    return empty, padded
