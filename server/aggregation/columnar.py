"""The columnar path: blocks of records read and summed by Arrow, in C++ without the GIL."""

from __future__ import annotations

import numpy
import pyarrow
import pyarrow.compute
import pyarrow.csv

from server.aggregation.header import WS, ArrowOptions
from server.aggregation.merge import Partials, group
from server.aggregation.numbers import whole_numbers
from server.aggregation.records import Layout
from server.aggregation.state import ParseState
from server.aggregation.tuning import Tuning
from server.departments import value_offsets

_WS_BYTES = numpy.zeros(256, bool)
_WS_BYTES[list(WS.encode())] = True
_PADDING = "^[ \t\r\n\v\f]+|[ \t\r\n\v\f]+$"


class ColumnarPath:
    """Sums blocks of whole records into partial tables.

    The rows that only the exact path can judge (a value that is not a plain whole number, a
    name that is empty once trimmed, a `,,` row) are handed back with their lines and bytes; a
    block Arrow cannot read as the csv module would (another width, a record too long, sums
    that could leave 64 bits, a record count that does not add up) is refused whole.
    """

    def __init__(self, arrow: ArrowOptions, state: ParseState, partials: Partials,
                 tuning: Tuning, max_field_bytes: int) -> None:
        self._arrow = arrow
        self._state = state
        self._partials = partials
        self._tuning = tuning
        self._max_field_bytes = max_field_bytes
        self._rows_per_block = False  # blocks are kept as rows, not grouped one by one

    def aggregate(self, layout: Layout) -> list[tuple[int, bytes]] | None:
        """Sums a block's rows; returns the rows left to the exact path as (physical line,
        bytes), or None, with no sum changed, if the whole block needs the exact path."""
        table = self._read(layout)
        if table is None:
            return None
        rows = lines = table.num_rows
        if layout.quoted:
            lines = layout.lines()
            # Rows and lines part ways at line breaks inside quoted fields, and only there.
            if lines != rows and lines - layout.line_ends_in_quotes() != rows:
                return None
        limit = self._max_field_bytes
        if layout.may_hold_long_record(limit) and layout.records().longest() > limit:
            return None  # the exact path measures rows exactly and refuses the long one
        sums = self._sums(table)
        if sums is None:
            return None  # Arrow's sums wrap around; Python's integers do not
        partial, bound, grouped, left = sums
        handed = []
        if len(left):
            handed = layout.rows(left, rows)
            if handed is None:
                return None
        if partial is not None:
            self._partials.add(partial, bound, grouped)
        state = self._state
        first_line = state.line_base + 1
        state.rows_processed += rows - len(left)
        state.line_base += lines
        return [(first_line + line, raw) for line, raw in handed]

    def _read(self, layout: Layout) -> pyarrow.Table | None:
        arrow = self._arrow
        try:
            return pyarrow.csv.read_csv(pyarrow.BufferReader(pyarrow.py_buffer(layout.data)),
                                        read_options=arrow.read,
                                        parse_options=arrow.parse_quoted if layout.quoted
                                        else arrow.parse,
                                        convert_options=arrow.convert)
        except pyarrow.ArrowInvalid:
            return None

    def _sums(self, table: pyarrow.Table) -> tuple | None:
        """(partial sums or None, their bound, whether grouped, rows left to the exact path),
        or None if the sums could leave 64 bits."""
        department = table.column(self._arrow.department)
        numbers, fit = _numbers(table.column(self._arrow.sales))
        left = numpy.zeros(len(numbers), bool) if fit is None else ~fit
        count = len(numbers) if fit is None else int(numpy.count_nonzero(fit))
        if not count:
            return None, 0, False, numpy.flatnonzero(left)
        # Rows without a number hold 0, which leaves the bound as it is.
        bound = max(abs(int(numbers.min())), abs(int(numbers.max()))) * count
        if not self._partials.fits(bound):
            return None
        partial, grouped = self._partial(department, numbers, fit, count)
        partial, blank = self._trimmed(partial)
        if blank is not None:  # their rows are the exact path's to reject, by line
            left |= pyarrow.compute.is_in(department, value_set=blank).to_numpy(
                zero_copy_only=False)
        return partial, bound, grouped, numpy.flatnonzero(left)

    def _partial(self, names: pyarrow.ChunkedArray, numbers: numpy.ndarray,
                 fit: numpy.ndarray | None, count: int) -> tuple[pyarrow.Table, bool]:
        """The sums per name of the rows that fit, or those rows as they are; and whether they
        were grouped."""
        if self._rows_per_block:
            # So many departments that a block hardly groups: keep its rows, and group many
            # blocks' rows at once (fewer, larger hash passes).
            rows = pyarrow.table({"k": names, "v": numbers})
            return (rows if fit is None else rows.filter(fit)), False
        # The rows that do not fit are grouped under a null name and dropped with it: cheaper
        # than filtering every row out of the block first.
        keys = names if fit is None else _null_where_not(names, fit)
        grouped = pyarrow.table({"k": keys, "v": numbers}).group_by(
            "k", use_threads=False).aggregate([("v", "sum")])
        partial = pyarrow.table({"k": grouped.column("k"), "v": grouped.column("v_sum")})
        if fit is not None:
            partial = partial.filter(pyarrow.compute.is_valid(partial.column("k")))
        # (Only while a block's rows cannot pass the departments limit: a block that does is
        # refused as soon as it is grouped.)
        self._rows_per_block = (count >= self._tuning.rows_to_judge_grouping
                                and partial.num_rows > count // 2
                                and count <= self._partials.max_departments)
        return partial, True

    def _trimmed(self, partial: pyarrow.Table) -> tuple[pyarrow.Table, pyarrow.Array | None]:
        """The sums with names trimmed of white space, without names that are then empty;
        and those names as they were (None if there are none)."""
        empty, padded = _name_edges(partial.column("k"))
        if not (empty or padded):
            return partial, None
        names = pyarrow.compute.replace_substring_regex(partial.column("k"), _PADDING, "")
        values, blank = partial.column("v"), None
        empty = pyarrow.compute.equal(pyarrow.compute.binary_length(names), 0)
        if pyarrow.compute.any(empty).as_py():
            blank = pyarrow.compute.unique(partial.column("k").filter(empty))
            kept = pyarrow.compute.invert(empty)
            names, values = names.filter(kept), values.filter(kept)
        return group(pyarrow.table({"k": names, "v": values})), blank


def _null_where_not(names: pyarrow.ChunkedArray, fit: numpy.ndarray) -> pyarrow.ChunkedArray:
    """The names, null where fit is False."""
    chunks, start = [], 0
    for chunk in names.chunks:
        mask = fit[start:start + len(chunk)]
        start += len(chunk)
        if chunk.offset or chunk.null_count:
            chunks.append(pyarrow.compute.if_else(mask, chunk, None))
            continue
        # Arrow's reader gives whole arrays without nulls: a validity bitmap is all they lack.
        valid = pyarrow.py_buffer(numpy.packbits(mask, bitorder="little"))
        chunks.append(pyarrow.Array.from_buffers(chunk.type, len(chunk),
                                                 [valid, *chunk.buffers()[1:]]))
    return pyarrow.chunked_array(chunks, names.type)


def _numbers(sales: pyarrow.ChunkedArray) -> tuple[numpy.ndarray, numpy.ndarray | None]:
    """whole_numbers() over every chunk of a column."""
    parts = [whole_numbers(chunk) for chunk in sales.chunks]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return numpy.zeros(0, numpy.int64), None
    numbers = numpy.concatenate([part for part, _ in parts])
    if all(fit is None for _, fit in parts):
        return numbers, None
    return numbers, numpy.concatenate([numpy.ones(len(part), bool) if fit is None else fit
                                       for part, fit in parts])


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
