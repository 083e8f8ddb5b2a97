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
import re
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

REQUIRED_DEPARTMENT = "Department Name"
REQUIRED_SALES = "Number of Sales"
DELIMITERS = (",", ";", "\t", "|")
MAX_SAMPLES = 100
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DEFAULT_BLOCK_SIZE = 1 << 20
# A header line longer than this with no line break is not a CSV header.
MAX_HEADER_BYTES = 1 << 20
# White space trimmed around names and numbers: ASCII only, so that trimming means the same
# before and after the file's encoding is known.
_WS = " \t\r\n\v\f"
_NUMBER = re.compile(r"[ \t\r\n\v\f]*([+-]?[0-9]+)(?:\.0*)?[ \t\r\n\v\f]*")
_LINE_END = ("\n", "\r")
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

    totals: list[tuple[str, int]]
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
    """Sums `Number of Sales` per `Department Name` over a CSV fed as bytes in any chunking."""

    def __init__(
        self,
        *,
        max_departments: int = 5_000_000,
        rejected_out: BinaryIO | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
    ) -> None:
        """rejected_out, when given, receives every rejected row as CSV `Line,Reason,Raw Row`
        in the file's own encoding (see Result.encoding; transcode it with decode_text)."""
        self._max_departments = max_departments
        self._block_size = block_size
        self._rejected_out = rejected_out
        self._rejected_writer = None
        self._head = b""  # first bytes, until the encoding is known
        self._encoding: str | None = None
        self._utf16 = None
        self._utf8_check = codecs.getincrementaldecoder("utf-8")("strict")
        self._valid_utf8 = True
        self._buffer = bytearray()  # bytes not yet split into lines (UTF-8 or 1252)
        self._pending = ""  # Latin-1 view of an unfinished row, carried to the next block
        self._bytes_seen = 0  # bytes after any BOM, in the stream that is parsed
        self._line_base = 0  # physical lines before the pending text
        self._delimiter: str | None = None
        self._columns: _Columns | None = None
        self._totals: dict[str, int] = {}
        self._rows_processed = 0
        self._rows_rejected = 0
        self._samples: list[tuple[int, str]] = []
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
        """Distinct departments so far."""
        return len(self._totals)

    def feed(self, data: bytes) -> None:
        """Takes the next bytes of the file; whole rows are aggregated as blocks fill."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
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

    def finish(self) -> Result:
        """Aggregates what is left and returns the totals in output order.

        Raises InputError for a file that cannot be processed as a whole, LimitExceeded past a
        limit.
        """
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._encoding is None:
            data, self._head = self._detect_encoding(self._head), b""
            self._take(data)
        if self._utf16 is not None:
            self._take(self._from_utf16(b"", final=True))
        elif self._valid_utf8:
            try:
                self._utf8_check.decode(b"", final=True)
            except UnicodeDecodeError:
                self._valid_utf8 = False
        self._parse(final=True)
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
        totals = []
        for key, total in self._totals.items():
            name = self.decode_text(key)
            if not INT64_MIN <= total <= INT64_MAX:
                raise InputError(f"The total for department \"{name}\" is {total}, which is too "
                                 "large to store (it does not fit in 64 bits).")
            totals.append((name, total))
        totals.sort(key=lambda item: (item[0].casefold(), item[0]))
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
        if self._valid_utf8 and self._utf16 is None:
            try:
                self._utf8_check.decode(data)
            except UnicodeDecodeError:
                self._valid_utf8 = False
        self._bytes_seen += len(data)
        self._buffer += data
        if len(self._buffer) >= self._block_size:
            self._parse(final=False)

    # -- rows ----------------------------------------------------------------------------------

    def _parse(self, final: bool) -> None:
        """Aggregates every whole row in pending + buffer; keeps an unfinished one as pending."""
        text = self._pending + self._buffer.decode("latin-1")
        self._buffer.clear()
        self._pending = ""
        lines = list(io.StringIO(text, newline=""))
        if not final and lines:
            # A last line with no end, or ending in CR (an LF may follow), is not whole yet.
            last = lines[-1]
            if not last.endswith(_LINE_END) or last.endswith("\r"):
                self._pending = lines.pop()
        if self._columns is None:
            start = self._read_header(lines, final)
            if self._columns is None:
                return
        else:
            start = 0
        self._read_rows(lines, start, final)

    def _read_header(self, lines: list[str], final: bool) -> int:
        """Finds the header among lines; returns the index of the first line after it."""
        for index, line in enumerate(lines):
            if line.strip(_WS):
                break
        else:
            self._line_base += len(lines)
            if len(self._pending) > MAX_HEADER_BYTES:
                raise InputError("The first line of the file is longer than 1 MiB with no line "
                                 "break, so it is not a CSV header row.")
            return len(lines)
        line = lines[index]
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
            raise InputError(f"The header row (line {self._line_base + index + 1}) has no "
                             f"{columns} {plural}. Columns found: {found}.") from None
        self._columns = _Columns(department, sales)
        return index + 1

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

    def _read_rows(self, lines: list[str], start: int, final: bool) -> None:
        count = len(lines)
        position = start

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
                    self._pending = "".join(lines[row_start:]) + self._pending
                    count = row_start
                    break
                self._reject(base + row_start, self._quoting_reason(message),
                             lines[row_start:position])
                continue
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
                    raise LimitExceeded(
                        f"The file has more than {self._max_departments:,} different "
                        "departments, the most this server accepts.")
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
