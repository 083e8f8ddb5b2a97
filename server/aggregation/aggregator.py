"""The facade: feed() bytes in any chunking, finish() for the totals; blocks routed to a path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from server.aggregation.blocks import BlockCutter
from server.aggregation.columnar import ColumnarPath
from server.aggregation.encoding import (ENCODING_WINDOWS_1252, Transcoder, Utf8Validity,
                                         decode_text)
from server.aggregation.errors import InputError, row_too_long, too_many_departments
from server.aggregation.exact import ExactPath, RejectedRows
from server.aggregation.header import REQUIRED_DEPARTMENT, REQUIRED_SALES, Header, read_header
from server.aggregation.merge import Partials, final_totals
from server.aggregation.records import Layout
from server.aggregation.state import ParseState
from server.aggregation.tuning import Tuning
from server.departments import Departments
from server.limits import Limits

# Why bytes are parsed before their encoding is known: the CSV syntax (delimiters, quotes, CR,
# LF) is ASCII in every encoding the contract allows once UTF-16 is transcoded to UTF-8, so rows
# are split on a Latin-1 view of the bytes (a lossless one-byte-per-character mapping) and names
# stay in that view until finish(). Only then is it known whether the whole file was valid
# UTF-8 or has to be read as Windows-1252, and the names are decoded once.


@dataclass(frozen=True)
class Rejection:
    """A skipped row: the physical line where it starts and why."""

    line: int
    reason: str


@dataclass
class Result:
    """What a finished aggregation found."""

    totals: Departments  # in output order
    rows_processed: int
    rows_rejected: int
    rejected_samples: list[Rejection]
    encoding: str
    delimiter: str


class Aggregator:
    """Sums `Number of Sales` per `Department Name` over a CSV fed as bytes in any chunking.

    It holds the totals, one block being parsed and one unfinished row; never the whole file.
    Blocks go through Arrow (the columnar path), quoted fields and all; the rows Arrow cannot
    judge (a bad value, an empty name) go one by one through the csv module (the exact path),
    which gives every rejection its reason and line; so does a block Arrow cannot read as the
    csv module would (a stray quote, a row of another width), in pieces. Both paths give the
    same totals.
    rejected_out, when given, receives every rejected row as CSV `Line,Reason,Raw Row` in the
    file's own encoding (see Result.encoding); columnar=False keeps every block on the exact
    path (for comparison).
    """

    def __init__(
        self,
        *,
        max_departments: int = Limits.max_departments,
        max_field_bytes: int = Limits.max_field_bytes,
        rejected_out: BinaryIO | None = None,
        columnar: bool = True,
        tuning: Tuning = Tuning(),
    ) -> None:
        self._max_departments = max_departments
        self._max_field_bytes = max_field_bytes
        self._use_columnar = columnar
        self._tuning = tuning
        self._transcoder = Transcoder()
        self._utf8 = Utf8Validity()
        self._cutter = BlockCutter(tuning.block_size, max_field_bytes)
        self._state = ParseState()
        self._partials = Partials(tuning, max_departments)
        self._rejected = RejectedRows(rejected_out)
        # Known once the header row is: the delimiter, the columns, the paths that follow it.
        self._header: Header | None = None
        self._exact: ExactPath | None = None
        self._columnar: ColumnarPath | None = None
        self._finished = False

    @property
    def rows_processed(self) -> int:
        """Rows summed so far."""
        return self._state.rows_processed

    @property
    def rows_rejected(self) -> int:
        """Rows skipped so far."""
        return self._state.rows_rejected

    @property
    def department_count(self) -> int:
        """Distinct departments so far (a lower bound while running)."""
        return max(len(self._state.totals), self._partials.departments)

    def feed(self, data: bytes) -> None:
        """Takes the next bytes, aggregating whole rows as blocks fill; raises once it knows."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if data:
            self._take(self._transcoder.take(data))

    def finish(self) -> Result:
        """Aggregates the rest; returns the totals in output order (or raises, as feed does)."""
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        for data in self._transcoder.finish():
            self._take(data)
        self._process(self._cutter.rest(), final=True)
        valid_utf8 = self._transcoder.utf16 or self._utf8.finish()
        encoding = self._transcoder.encoding if valid_utf8 else ENCODING_WINDOWS_1252
        self._check_whole_file(encoding)
        state = self._state
        totals = final_totals(self._partials, state.totals, encoding)
        if len(totals) > self._max_departments:
            raise too_many_departments(self._max_departments)
        samples = [Rejection(line, decode_text(reason, encoding))
                   for line, reason in state.samples]
        self._rejected.close()
        return Result(totals=totals, rows_processed=state.rows_processed,
                      rows_rejected=state.rows_rejected, rejected_samples=samples,
                      encoding=encoding, delimiter=self._header.delimiter)

    def _check_whole_file(self, encoding: str) -> None:
        if self._header is None:
            if self._cutter.bytes_seen == 0:
                raise InputError("The file is empty.")
            raise InputError("The file holds only blank lines; "
                             f"expected a header row with \"{REQUIRED_DEPARTMENT}\" "
                             f"and \"{REQUIRED_SALES}\".")
        state = self._state
        if state.rows_processed == 0 and state.rows_rejected == 0:
            raise InputError("The file has a header row but no data rows.")
        if state.rows_processed == 0:
            raise InputError(_nothing_used(state, encoding))

    def _take(self, data: bytes) -> None:
        block = self._cutter.add(data)
        if block is not None:
            self._process(block, final=False)

    def _process(self, block: bytes | bytearray, final: bool) -> None:
        """Aggregates every whole row in pending + block; keeps an unfinished one as pending."""
        if not self._transcoder.utf16:
            self._utf8.check(block)
        state = self._state
        data = state.pending + block if state.pending else block
        state.pending = b""
        if self._header is None:
            header, data = read_header(state, data, final)
            if header is None:
                return
            self._start(header)
            if not data:
                return
        if self._columnar is not None:
            layout = Layout.scan(data, ord(self._header.delimiter), final)
            cut = layout.whole_records_end(final) if layout is not None else 0
            if cut > 0:
                whole = layout if cut == len(data) else layout.piece(0, cut)
                self._columnar_or_exact(whole, final and cut == len(data))
                state.pending = data[cut:]
                if len(state.pending) > self._max_field_bytes:
                    raise row_too_long(self._max_field_bytes)
                return
        self._exact.aggregate(data, final)

    def _start(self, header: Header) -> None:
        self._header = header
        self._exact = ExactPath(header, self._state, self._rejected,
                                max_departments=self._max_departments,
                                max_field_bytes=self._max_field_bytes)
        if self._use_columnar:
            self._columnar = ColumnarPath(header.arrow, self._state, self._partials,
                                          self._tuning, self._max_field_bytes)

    def _columnar_or_exact(self, layout: Layout, final: bool) -> None:
        """Whole records: columnar where it can be, in pieces where it cannot."""
        # Pieces, so that one odd row sends only its own piece down the exact path.
        if self._columnar_sum(layout):
            return
        data, start = layout.data, 0
        while start < len(data):
            end = layout.record_end_after(start + self._tuning.piece_bytes)
            piece = layout.piece(start, end) if start or end < len(data) else layout
            if piece is layout or not self._columnar_sum(piece):
                self._exact.aggregate(piece.data, final and end == len(data))
            start = end

    def _columnar_sum(self, layout: Layout) -> bool:
        """Sums records on the columnar path, and the rows it leaves on the exact path, each
        on its own physical line; False, with nothing changed, if the columnar path refuses."""
        left = self._columnar.aggregate(layout)
        if left is None:
            return False
        if left:
            self._exact.aggregate_records(left)
        return True


def _nothing_used(state: ParseState, encoding: str) -> str:
    """Why a file whose every data row was rejected gives no totals: its commonest reason."""
    count, line, reason = max(state.reasons.values(), key=lambda kind: kind[0])
    reason = decode_text(reason, encoding)
    if state.rows_rejected == 1:
        return f"No row of the file could be used: its only data row (line {line}) was " \
               f"rejected. {reason}"
    which = ("each for the same reason" if count == state.rows_rejected
             else f"most of them ({count:,}) for this reason")
    return (f"No row of the file could be used: all {state.rows_rejected:,} data rows were "
            f"rejected, {which} (first on line {line}): {reason}")
