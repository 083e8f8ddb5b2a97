"""Streaming per-department totals of a sales CSV: feed bytes in any chunking, then finish().

Pure: no gRPC, no Qt, no file names. It holds the department totals, one block of bytes being
parsed and the bytes of one unfinished row; never the whole file.

How it reads bytes it cannot yet decode: the CSV syntax (delimiters, quotes, CR, LF) is ASCII in
every encoding the contract allows once UTF-16 is transcoded to UTF-8, so rows are split on a
Latin-1 view of the bytes (a lossless one-byte-per-character mapping) and department names stay
in that view until finish(). Only then is it known whether the whole file was valid UTF-8 or has to
be read as Windows-1252, and the names are decoded once.
"""

from __future__ import annotations

import codecs
import csv
import io
import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import numpy
import pyarrow
# Table.group_by imports pyarrow.acero on first use, 25 ms or more: paid here, at start-up,
# rather than by a server's first upload.
import pyarrow.acero  # noqa: F401
import pyarrow.compute
import pyarrow.csv

from server.departments import Departments, value_offsets

REQUIRED_DEPARTMENT = "Department Name"
REQUIRED_SALES = "Number of Sales"
DELIMITERS = (",", ";", "\t", "|")
MAX_SAMPLES = 100
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Bytes aggregated at a time: large enough that the columnar path's per-call cost vanishes,
# small enough that memory stays flat (one block being filled while the worker parses another).
DEFAULT_BLOCK_SIZE = 4 << 20
# A header line longer than this with no line break is not a CSV header.
MAX_HEADER_BYTES = 1 << 20
# White space trimmed around names and numbers: ASCII only, so that trimming means the same
# before and after the file's encoding is known.
_WS = " \t\r\n\v\f"
_NUMBER = re.compile(r"[ \t\r\n\v\f]*([+-]?[0-9]+)(?:\.0*)?[ \t\r\n\v\f]*")
_LINE_END = ("\n", "\r")
_EOL = re.compile(rb"\r\n|\r|\n")
# When a block cannot take the columnar path, it is retried in pieces of about this size.
_PIECE_BYTES = 256 * 1024
_UTF8_SLICE = 1 << 20
# Tables of partial sums at least this long are grouped in two halves at once (see _group).
_SPLIT_ROWS = 1 << 19
# A block this many rows long that groups to more than half as many departments marks a file
# with so many departments that grouping block by block is not worth it.
ROWS_TO_JUDGE_GROUPING = 4096
# Partial sums (or a many-department file's rows) kept before they are merged: about 120 MB
# of rows at most, so that merging happens seldom, mostly once at the end.
_PARTIAL_ROWS = 4 << 20
DEFAULT_MAX_FIELD_BYTES = 1 << 20
# Field sizes are bounded by max_field_bytes below, not by the csv module's own global limit.
csv.field_size_limit(1 << 30)
try:  # hand freed blocks back at once, so that memory stays flat over a long upload
    pyarrow.jemalloc_set_decay_ms(0)
except NotImplementedError:  # a build without jemalloc
    pass
# Bytes looked at before deciding the encoding, so that the decision and the messages about
# binary files do not depend on how the upload was chunked.
_SNIFF_BYTES = 512

ENCODING_UTF8 = "UTF-8"
ENCODING_UTF16 = "UTF-16"
ENCODING_WINDOWS_1252 = "Windows-1252"


def _windows_1252_table() -> str:
    # Python's cp1252 leaves five bytes undefined; like browsers, map them to the C1 controls
    # of the same value so that every byte sequence decodes.
    chars = []
    for byte in range(256):
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(byte))
    return "".join(chars)


_WINDOWS_1252 = _windows_1252_table()


def decode_windows_1252(data: bytes) -> str:
    """Decodes bytes as Windows-1252, as Excel writes it; never fails."""
    return codecs.charmap_decode(data, "strict", _WINDOWS_1252)[0]


class InputError(Exception):
    """The file as a whole cannot be processed; the message is a plain sentence for the user."""


class LimitExceeded(Exception):
    """The file is past one of the server's limits; the message is a plain sentence."""


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


@dataclass
class _Columns:
    department: int
    sales: int
    needed: int = field(init=False)

    def __post_init__(self) -> None:
        self.needed = max(self.department, self.sales) + 1


def _header_name(field_text: str) -> str:
    """Normalises a header cell (Latin-1 view) for matching: decoded, trimmed, case-folded."""
    return _decode_guess(field_text).strip().lstrip("\ufeff").strip().casefold()


def _decode_guess(latin1_text: str) -> str:
    raw = latin1_text.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return decode_windows_1252(raw)


_WS_BYTES = numpy.zeros(256, bool)
_WS_BYTES[list(_WS.encode())] = True
_PADDING = "^[ \t\r\n\v\f]+|[ \t\r\n\v\f]+$"


def _record_length(lines: list[str]) -> int:
    """A record's length in bytes, without its final line end."""
    return sum(len(line) for line in lines) - len(lines[-1]) + len(lines[-1].rstrip("\r\n"))


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


def size_text(count: int) -> str:
    """A byte count for a sentence: `1,000 bytes`, `2 KiB`, `10 GiB` (exact units only)."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift:,} {unit}"
    return f"{count:,} bytes"


def _group(table: pyarrow.Table) -> pyarrow.Table:
    """Sums v per k (binary keys).

    A large table is split in two by each key's last byte, so that equal keys stay together,
    and the halves are grouped at the same time on two threads: two hash tables of half the
    size and nothing to merge (measured for 3M rows with 1M keys: 1.0 s -> 0.5 s).
    """
    if table.num_rows < _SPLIT_ROWS:
        return _group_together(table)
    odd = _last_byte_odd(table.column("k"))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="group") as pool:
        other_half = pool.submit(lambda: _group_together(table.filter(odd)))
        even = _group_together(table.filter(pyarrow.compute.invert(odd)))
        return pyarrow.concat_tables([even, other_half.result()])


def _group_together(table: pyarrow.Table) -> pyarrow.Table:
    grouped = table.group_by("k", use_threads=False).aggregate([("v", "sum")])
    return pyarrow.table({"k": grouped.column("k"), "v": grouped.column("v_sum")})


def _last_byte_odd(keys: pyarrow.ChunkedArray) -> pyarrow.Array:
    """Per key: is its last byte odd (false for an empty key)."""
    parts = []
    for chunk in keys.chunks:
        offsets = value_offsets(chunk)
        data = chunk.buffers()[2]
        if data is None or len(data) == 0:
            parts.append(numpy.zeros(len(chunk), bool))
            continue
        last = numpy.frombuffer(data, numpy.uint8)[numpy.maximum(offsets[1:] - 1, 0)]
        parts.append((last & 1).astype(bool) & (offsets[1:] > offsets[:-1]))
    return pyarrow.array(numpy.concatenate(parts) if parts else numpy.zeros(0, bool))


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


def _may_hold_hex(data: bytes) -> bool:
    """True if data may hold 0x/0X, which Arrow reads as a hexadecimal number and the contract
    rejects. Searching for the single byte first is fast; `0x` alone is slow where zeros
    abound."""
    return (b"x" in data and b"0x" in data) or (b"X" in data and b"0X" in data)


def _binary_message(data: bytes, offset: int) -> str:
    if data.startswith(b"PK\x03\x04"):
        return ("This looks like an Excel workbook or a zip archive, not a CSV file. "
                "In Excel, use File > Save As and choose \"CSV UTF-8\".")
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return ("This looks like an old Excel workbook (.xls), not a CSV file. "
                "In Excel, use File > Save As and choose \"CSV UTF-8\".")
    sample = data[:200]
    if len(sample) >= 8 and sample[1::2].count(0) >= len(sample) // 2 - 1:
        return ("This file looks like UTF-16 text without a byte-order mark. "
                "Save it as UTF-8 (or UTF-16 with a byte-order mark) and try again.")
    return (f"This file contains binary data (a NUL byte at byte {offset + 1}), "
            "so it is not a CSV text file.")


class Aggregator:
    """Sums `Number of Sales` per `Department Name` over a CSV fed as bytes in any chunking.

    Bytes are aggregated a block at a time. A block of plain rows (no quote character, every row
    as wide as the header, clean whole numbers) goes through Arrow's CSV reader and hash
    aggregation, which run in C++ without the interpreter lock; any block with something
    unusual goes through the exact row-by-row path, which knows every rule and reports bad rows
    with their line numbers. Both give the same totals. With threaded=True, blocks are
    aggregated on a worker thread while the caller goes on feeding the next one.
    """

    def __init__(
        self,
        *,
        max_departments: int = 5_000_000,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        rejected_out: BinaryIO | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        threaded: bool = False,
        columnar: bool = True,
    ) -> None:
        """rejected_out, when given, receives every rejected row as CSV `Line,Reason,Raw Row`
        in the file's own encoding (see Result.encoding). columnar=False keeps every block on
        the exact path (for comparison)."""
        self._max_departments = max_departments
        self._max_field_bytes = max_field_bytes
        self._since_line_end = 0  # bytes fed since the last CR or LF
        self._seen_line_end = False
        self._block_size = block_size
        self._rejected_out = rejected_out
        self._rejected_writer = None
        self._columnar = columnar
        self._head = b""  # first bytes, until the encoding is known
        self._encoding: str | None = None
        self._utf16 = None
        self._utf8_check = codecs.getincrementaldecoder("utf-8")("strict")
        self._valid_utf8 = True
        self._buffer = bytearray()  # bytes fed since the last block was handed on
        self._bytes_seen = 0  # bytes after any BOM, in the stream that is parsed
        # Worker-side state: touched only by whoever aggregates blocks.
        self._pending = b""  # an unfinished row, carried to the next block
        self._line_base = 0  # physical lines before the pending bytes
        self._delimiter: str | None = None
        self._columns: _Columns | None = None
        self._arrow_options: tuple | None = None
        self._totals: dict[str, int] = {}  # the exact path's sums, by Latin-1 view of the name
        # The columnar path's sums: Arrow tables of (k: trimmed name bytes, v: sum), merged now
        # and then; together they can never leave 64 bits (see _columnar_bound).
        self._partials: list[pyarrow.Table] = []
        self._partial_rows = 0
        self._columnar_bound = 0  # the largest absolute sum the partials could hold
        self._columnar_departments = 0  # a lower bound, from grouped partials
        self._rows_per_block = False  # partials are a block's rows, not yet grouped
        self._rows_processed = 0
        self._rows_rejected = 0
        self._samples: list[tuple[int, str]] = []
        self.columnar_blocks = 0
        self.exact_blocks = 0
        # The worker thread, when threaded.
        self._threaded = threaded
        self._queue: queue.Queue[bytes | None] | None = None
        self._worker: threading.Thread | None = None
        self._worker_busy = False  # a block is queued or being aggregated
        self._error: BaseException | None = None
        self._finished = False

    @property
    def rows_processed(self) -> int:
        """Rows summed so far."""
        return self._rows_processed

    @property
    def rows_rejected(self) -> int:
        """Rows skipped so far."""
        return self._rows_rejected

    @property
    def department_count(self) -> int:
        """Distinct departments so far (a lower bound while running)."""
        return max(len(self._totals), self._columnar_departments)

    def feed(self, data: bytes) -> None:
        """Takes the next bytes of the file; whole rows are aggregated as blocks fill.

        Raises InputError or LimitExceeded as soon as they are known.
        """
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self._error is not None:
            raise self._error
        if not data:
            return
        if self._encoding is None:
            self._head += data
            if len(self._head) < _SNIFF_BYTES:
                return
            data, self._head = self._detect_encoding(self._head), b""
        elif self._utf16 is not None:
            data = self._from_utf16(data, final=False)
        self._take(data)

    def would_wait(self, size: int) -> bool:
        """True when feeding `size` more bytes would likely complete a block while the worker
        is still busy with the last one, so that feed() would wait for it. A caller that must
        not block (an event loop) can then feed from another thread. A hint: an encoding not
        yet known, or UTF-16, can make feed() wait when this said it would not."""
        return self._worker_busy and len(self._buffer) + size >= self._block_size

    def finish(self) -> Result:
        """Aggregates what is left and returns the totals in output order.

        Raises InputError for a file that cannot be processed as a whole, LimitExceeded past a
        limit.
        """
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        try:
            # These may hand the worker more blocks: stop it only after them.
            if self._encoding is None:
                data, self._head = self._detect_encoding(self._head), b""
                self._take(data)
            if self._utf16 is not None:
                self._take(self._from_utf16(b"", final=True))
        finally:
            self._stop_worker()
        if self._error is not None:
            raise self._error
        self._process(self._buffer, final=True)
        self._buffer = bytearray()
        if self._valid_utf8 and self._utf16 is None:
            try:
                self._utf8_check.decode(b"", final=True)
            except UnicodeDecodeError:
                self._valid_utf8 = False
        if self._columns is None:
            if self._bytes_seen == 0:
                raise InputError("The file is empty.")
            raise InputError("The file holds only blank lines; "
                             f"expected a header row with \"{REQUIRED_DEPARTMENT}\" "
                             f"and \"{REQUIRED_SALES}\".")
        if self._rows_processed == 0 and self._rows_rejected == 0:
            raise InputError("The file has a header row but no data rows.")
        if self._utf16 is None and not self._valid_utf8:
            self._encoding = ENCODING_WINDOWS_1252
        totals = self._final_totals()
        if len(totals) > self._max_departments:
            raise self._too_many_departments()
        samples = [Rejection(line, self.decode_text(reason)) for line, reason in self._samples]
        if self._rejected_writer is not None:
            self._rejected_writer = None
            self._rejected_text.flush()
            self._rejected_text.detach()
        return Result(
            totals=totals,
            rows_processed=self._rows_processed,
            rows_rejected=self._rows_rejected,
            rejected_samples=samples,
            encoding=self._encoding,
            delimiter=self._delimiter or ",",
        )

    def _final_totals(self) -> Departments:
        """Both paths' sums, decoded; raises InputError for a total beyond 64 bits."""
        table = self._merged_partials()
        if table is not None and self._totals:
            exact = self._totals
            bound = sum(abs(total) for total in exact.values())
            if self._columnar_bound + bound <= INT64_MAX:
                table = _group(pyarrow.concat_tables([table, pyarrow.table({
                    "k": pyarrow.array([key.encode("latin-1") for key in exact], pyarrow.binary()),
                    "v": pyarrow.array(list(exact.values()), pyarrow.int64())})]))
            else:  # sums beyond 64 bits may still come back: add them up as Python integers
                for key, total in zip(table.column("k").to_pylist(),
                                      table.column("v").to_pylist()):
                    name = key.decode("latin-1")
                    exact[name] = exact.get(name, 0) + total
                table = None
        if table is not None:  # within 64 bits by construction
            keys = table.column("k")
            if self._encoding == ENCODING_WINDOWS_1252:
                names = pyarrow.array([decode_windows_1252(key) for key in keys.to_pylist()],
                                      pyarrow.string())
            else:
                names = pyarrow.compute.cast(keys, pyarrow.string())
            return Departments.in_output_order(names, table.column("v"))
        names, totals = [], []
        for key, total in self._totals.items():
            name = self.decode_text(key)
            if not INT64_MIN <= total <= INT64_MAX:
                raise InputError(f"The total for department \"{name}\" is {total}, which is too "
                                 "large to store (it does not fit in 64 bits).")
            names.append(name)
            totals.append(total)
        return Departments.in_output_order(pyarrow.array(names, pyarrow.string()),
                                           pyarrow.array(totals, pyarrow.int64()))

    def _merged_partials(self) -> pyarrow.Table | None:
        if not self._partials:
            return None
        if len(self._partials) > 1:
            self._consolidate()
        return self._partials[0]

    def _consolidate(self) -> None:
        merged = _group(pyarrow.concat_tables(self._partials))
        self._partials = [merged]
        self._partial_rows = self._columnar_departments = merged.num_rows
        if merged.num_rows > self._max_departments:
            raise self._too_many_departments()

    def _row_too_long(self) -> LimitExceeded:
        return LimitExceeded(f"The file has a row longer than {size_text(self._max_field_bytes)}, "
                             "the longest this server accepts. Is a quote left open?")

    def _too_many_departments(self) -> LimitExceeded:
        return LimitExceeded(f"The file has more than {self._max_departments:,} different "
                             "departments, the most this server accepts.")

    def close(self) -> None:
        """Stops the worker thread of an aggregation that will not be finished."""
        self._finished = True
        self._stop_worker()

    def decode_text(self, latin1_text: str) -> str:
        """Turns a Latin-1 view of the file's bytes into text in the file's encoding."""
        if latin1_text.isascii():
            return latin1_text
        raw = latin1_text.encode("latin-1")
        if self._encoding == ENCODING_WINDOWS_1252:
            return decode_windows_1252(raw)
        return raw.decode("utf-8")

    # -- bytes ---------------------------------------------------------------------------------

    def _detect_encoding(self, head: bytes) -> bytes:
        if head.startswith(b"\xef\xbb\xbf"):
            self._encoding = ENCODING_UTF8
            return head[3:]
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            self._encoding = ENCODING_UTF16
            self._utf16 = codecs.getincrementaldecoder("utf-16")("strict")
            return self._from_utf16(head, final=False)
        self._encoding = ENCODING_UTF8
        return head

    def _from_utf16(self, data: bytes, final: bool) -> bytes:
        try:
            text = self._utf16.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise InputError("The file starts with a UTF-16 byte-order mark but is not valid "
                             f"UTF-16 ({exc.reason}).") from None
        return text.encode("utf-8")

    def _take(self, data: bytes) -> None:
        nul = data.find(b"\x00")
        if nul >= 0:
            first = data if self._bytes_seen == 0 else b""
            raise InputError(_binary_message(first, self._bytes_seen + nul))
        self._bytes_seen += len(data)
        last_end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last_end < 0:
            self._since_line_end += len(data)
        else:
            self._since_line_end = len(data) - last_end - 1
            self._seen_line_end = True
        # Before the first line end, the header's own check says it better.
        if self._since_line_end > self._max_field_bytes and self._seen_line_end:
            raise self._row_too_long()
        self._buffer += data
        if len(self._buffer) >= self._block_size:
            # Hand the buffer itself over, cut after its last line end: no copy of the block.
            block = self._buffer
            cut = block.rfind(b"\n") + 1
            self._buffer = bytearray(block[cut:]) if cut else bytearray()
            if cut:
                del block[cut:]
            self._submit(block)

    # -- blocks --------------------------------------------------------------------------------

    def _submit(self, block: bytes) -> None:
        if not self._threaded:
            self._process(block, final=False)
            return
        if self._worker is None:
            self._queue = queue.Queue(maxsize=1)
            self._worker = threading.Thread(target=self._work, name="aggregator", daemon=True)
            self._worker.start()
        # Wait until the worker has finished the previous block: two blocks live at most.
        self._queue.join()
        if self._error is not None:
            raise self._error
        self._worker_busy = True
        self._queue.put(block)

    def _work(self) -> None:
        while (block := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._process(block, final=False)
                except BaseException as exc:  # handed to the feeding thread
                    self._error = exc
            del block
            self._worker_busy = False
            self._queue.task_done()

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join()
            self._worker = None

    def _process(self, block: bytes, final: bool) -> None:
        """Aggregates every whole row in pending + block; keeps an unfinished one as pending."""
        if self._valid_utf8 and self._utf16 is None:
            self._valid_utf8 = self._continues_utf8(block)
        data = self._pending + block if self._pending else block
        self._pending = b""
        if self._columns is None:
            data = self._consume_header(data, final)
            if self._columns is None or not data:
                return
        if self._columnar and b'"' not in data and not _may_hold_hex(data):
            cut = len(data) if final else data.rfind(b"\n") + 1
            if cut > 0:
                self._columnar_or_exact(data[:cut] if cut < len(data) else data,
                                        final and cut == len(data))
                self._pending = data[cut:]
                if len(self._pending) > self._max_field_bytes:
                    raise self._row_too_long()
                return
        self.exact_blocks += 1
        self._exact_block(data, final)

    def _continues_utf8(self, block: bytes | bytearray) -> bool:
        """False once the bytes so far cannot be UTF-8. The lines wholly inside the block are
        checked by Arrow (no interpreter lock, no text made); the bytes before its first line
        end and after its last go through an incremental decoder, which carries a character cut
        at a block edge over to the next block."""
        if block.isascii():  # most files: only a character cut at the last edge can be wrong
            try:
                self._utf8_check.decode(block[:1])
            except UnicodeDecodeError:
                return False
            return True
        first, last = block.find(b"\n") + 1, block.rfind(b"\n") + 1
        view = memoryview(block)
        try:
            self._utf8_check.decode(view[:first])
            if last > first:
                body = pyarrow.Array.from_buffers(
                    pyarrow.binary(), 1,
                    [None, pyarrow.array([first, last], pyarrow.int32()).buffers()[1],
                     pyarrow.py_buffer(block)])
                body.cast(pyarrow.string())  # raises ArrowInvalid unless valid UTF-8
            for start in range(max(first, last), len(block), _UTF8_SLICE):
                self._utf8_check.decode(view[start:min(start + _UTF8_SLICE, len(block))])
        except (UnicodeDecodeError, pyarrow.ArrowInvalid):
            return False
        finally:
            view.release()
        return True

    def _columnar_or_exact(self, block: bytes, final: bool) -> None:
        """Whole rows without quotes: columnar where it can be, in pieces where it cannot, so
        that one odd row sends only its own piece down the exact path."""
        if self._columnar_block(block):
            self.columnar_blocks += 1
            return
        start = 0
        while start < len(block):
            end = block.find(b"\n", start + _PIECE_BYTES) + 1 or len(block)
            piece = block[start:end] if start or end < len(block) else block
            if piece is not block and self._columnar_block(piece):
                self.columnar_blocks += 1
            else:
                self.exact_blocks += 1
                self._exact_block(piece, final and end == len(block))
            start = end

    def _consume_header(self, data: bytes, final: bool) -> bytes | None:
        """Skips blank lines and reads the header; returns the bytes after it, or None (kept as
        pending) while the header line is not whole."""
        position = 0
        while True:
            match = _EOL.search(data, position)
            if match is None or (match.group() == b"\r" and match.end() == len(data)
                                 and not final):
                if not final:  # the line is not whole yet (a CR may be half of a CRLF)
                    self._pending = data[position:]
                    if len(self._pending) > MAX_HEADER_BYTES:
                        raise InputError("The first line of the file is longer than 1 MiB with "
                                         "no line break, so it is not a CSV header row.")
                    return None
                end = len(data)
                line = data[position:]
            else:
                end = match.end()
                line = data[position:match.start()]
            self._line_base += 1 if line or end > position else 0
            if line.strip(_WS.encode()):
                self._set_header(line.decode("latin-1"))
                return data[end:]
            if end >= len(data):
                return b""
            position = end

    def _set_header(self, line: str) -> None:
        self._delimiter, names = self._detect_delimiter(line)
        try:
            department = names.index(REQUIRED_DEPARTMENT.casefold())
            sales = names.index(REQUIRED_SALES.casefold())
        except ValueError:
            found = ", ".join(f"\"{_decode_guess(cell).strip()}\"" for cell in
                              next(csv.reader([line], delimiter=self._delimiter)))
            missing = [name for name in (REQUIRED_DEPARTMENT, REQUIRED_SALES)
                       if name.casefold() not in names]
            columns = " and ".join(f"\"{name}\"" for name in missing)
            plural = "columns" if len(missing) > 1 else "column"
            raise InputError(f"The header row (line {self._line_base}) has no "
                             f"{columns} {plural}. Columns found: {found}.") from None
        self._columns = _Columns(department, sales)
        column_names = [f"c{index}" for index in range(len(names))]
        department_name, sales_name = column_names[department], column_names[sales]
        self._arrow_options = (
            department_name, sales_name,
            pyarrow.csv.ReadOptions(column_names=column_names, use_threads=False),
            pyarrow.csv.ParseOptions(delimiter=self._delimiter, quote_char=False,
                                     double_quote=False, escape_char=False,
                                     newlines_in_values=False,
                                     # A blank line then fails the block over to the exact
                                     # path, so that every row is one physical line.
                                     ignore_empty_lines=False),
            pyarrow.csv.ConvertOptions(
                column_types={department_name: pyarrow.binary(), sales_name: pyarrow.int64()},
                include_columns=[department_name, sales_name], null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )

    @staticmethod
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

    def _columnar_block(self, block: bytes | bytearray) -> bool:
        """Aggregates a block of plain rows with Arrow; False (nothing changed) if any row needs
        the exact path: a row of another width, an empty or padded-out name, a value that is
        not a plain whole number, or sums that could leave 64 bits."""
        department, sales, read_options, parse_options, convert_options = self._arrow_options
        if _may_hold_long_line(block, self._max_field_bytes) and \
                _longest_line(block) > self._max_field_bytes:
            return False  # the exact path measures rows exactly and refuses the long one
        try:
            table = pyarrow.csv.read_csv(pyarrow.BufferReader(pyarrow.py_buffer(block)),
                                         read_options=read_options,
                                         parse_options=parse_options,
                                         convert_options=convert_options)
        except pyarrow.ArrowInvalid:
            return False
        rows = table.num_rows
        if rows:
            low, high = pyarrow.compute.min_max(table.column(sales)).values()
            bound = max(abs(low.as_py()), abs(high.as_py())) * rows
            if self._columnar_bound + bound > INT64_MAX:
                return False  # Arrow's sums wrap around; Python's integers do not
            grouped = None
            if self._rows_per_block:
                # So many departments that a block hardly groups: keep its rows, and group
                # many blocks' rows at once (fewer, larger hash passes).
                partial = pyarrow.table({"k": table.column(department),
                                         "v": table.column(sales)})
            else:
                grouped = table.group_by(department, use_threads=False).aggregate(
                    [(sales, "sum")])
                partial = pyarrow.table({"k": grouped.column(department),
                                         "v": grouped.column(f"{sales}_sum")})
                self._rows_per_block = (rows >= ROWS_TO_JUDGE_GROUPING
                                        and partial.num_rows > rows // 2)
            empty, padded = _name_edges(partial.column("k"))
            if empty:
                return False  # an empty name: the exact path rejects its rows by line
            if padded:
                names = pyarrow.compute.replace_substring_regex(partial.column("k"), _PADDING, "")
                if pyarrow.compute.min(pyarrow.compute.binary_length(names)).as_py() == 0:
                    return False
                partial = _group(pyarrow.table({"k": names, "v": partial.column("v")}))
            if grouped is not None:
                self._columnar_departments = max(self._columnar_departments, partial.num_rows)
            self._partials.append(partial)
            self._partial_rows += partial.num_rows
            self._columnar_bound += bound
            if self._partial_rows > max(4 * self._columnar_departments, _PARTIAL_ROWS):
                self._consolidate()
        self._rows_processed += rows
        self._line_base += rows
        return True

    # -- rows ----------------------------------------------------------------------------------

    def _exact_block(self, data: bytes, final: bool) -> None:
        """Aggregates row by row with the csv module; keeps an unfinished row as pending."""
        lines = list(io.StringIO(data.decode("latin-1"), newline=""))
        if not final and lines:
            # A last line with no end, or ending in CR (an LF may follow), is not whole yet.
            last = lines[-1]
            if not last.endswith(_LINE_END) or last.endswith("\r"):
                self._pending = lines.pop().encode("latin-1")
        self._read_rows(lines, final)
        if len(self._pending) > self._max_field_bytes:  # a quoted field that goes on and on
            raise self._row_too_long()

    def _read_rows(self, lines: list[str], final: bool) -> None:
        count = len(lines)
        position = 0

        def source() -> Iterator[str]:
            nonlocal position
            while position < count:
                position += 1
                yield lines[position - 1]

        reader = csv.reader(source(), delimiter=self._delimiter, strict=True)
        columns = self._columns
        department_index, sales_index, needed = columns.department, columns.sales, columns.needed
        totals = self._totals
        base = self._line_base + 1
        processed = 0
        while True:
            row_start = position
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                message = str(exc)
                if position >= count and not final and "field larger" not in message:
                    # The row goes on in the next block (a quoted line break).
                    self._pending = "".join(lines[row_start:]).encode("latin-1") + self._pending
                    count = row_start
                    break
                self._reject(base + row_start, self._quoting_reason(message),
                             lines[row_start:position])
                continue
            # Cheap test first (one line, terminator included), exact length only when close.
            if len(lines[row_start]) > self._max_field_bytes or position - row_start > 1:
                if _record_length(lines[row_start:position]) > self._max_field_bytes:
                    raise self._row_too_long()
            if len(row) < needed:
                if row and any(cell.strip(_WS) for cell in row):
                    self._reject(base + row_start,
                                 f"The row has {len(row)} field{'s' if len(row) != 1 else ''}; "
                                 f"expected at least {needed}.", lines[row_start:position])
                continue
            department = row[department_index].strip(_WS)
            raw = row[sales_index]
            if raw.isdigit() and raw.isascii():
                value = int(raw)
            else:
                match = _NUMBER.fullmatch(raw)
                if match is None or not department:
                    if not any(cell.strip(_WS) for cell in row):
                        continue  # ",,"-style empty row
                    self._reject(base + row_start, self._row_reason(department, raw),
                                 lines[row_start:position])
                    continue
                value = int(match.group(1))
            if not department:
                self._reject(base + row_start, self._row_reason(department, raw),
                             lines[row_start:position])
                continue
            if not INT64_MIN <= value <= INT64_MAX:
                self._reject(base + row_start,
                             f"{REQUIRED_SALES} {raw.strip(_WS)} does not fit in 64 bits.",
                             lines[row_start:position])
                continue
            if department in totals:
                totals[department] += value
            else:
                if len(totals) >= self._max_departments:
                    raise self._too_many_departments()
                totals[department] = value
            processed += 1
        self._rows_processed += processed
        self._line_base += count

    @staticmethod
    def _row_reason(department: str, raw: str) -> str:
        if not department:
            return f"{REQUIRED_DEPARTMENT} is empty."
        shown = raw.strip(_WS)
        if not shown:
            return f"{REQUIRED_SALES} is empty; expected a whole number."
        if len(shown) > 40:
            shown = shown[:40] + "..."
        return f"{REQUIRED_SALES} \"{shown}\" is not a whole number."

    @staticmethod
    def _quoting_reason(message: str) -> str:
        if "field larger" in message:
            return (f"A field is longer than {csv.field_size_limit():,} characters; "
                    "is a quote left open?")
        if "unexpected end of data" in message:
            return "A quoted field is never closed."
        if "expected after" in message:
            return ("A quoted field has text after its closing quote; expected the delimiter "
                    "or the end of the line.")
        return f"The quoting is malformed ({message})."

    def _reject(self, line: int, reason: str, raw_lines: list[str]) -> None:
        self._rows_rejected += 1
        if len(self._samples) < MAX_SAMPLES:
            self._samples.append((line, reason))
        if self._rejected_out is None:
            return
        if self._rejected_writer is None:
            self._rejected_text = io.TextIOWrapper(self._rejected_out, encoding="latin-1",
                                                   newline="")
            self._rejected_writer = csv.writer(self._rejected_text, lineterminator="\n")
            self._rejected_writer.writerow(("Line", "Reason", "Raw Row"))
        raw = "".join(raw_lines).rstrip("\r\n")
        self._rejected_writer.writerow((line, reason, raw))
