"""The exact path: rows one by one with the csv module, every rule, every rejection by its line."""

from __future__ import annotations

import csv
import io
import re
from typing import BinaryIO, Iterator

from server.aggregation.errors import row_too_long, too_many_departments
from server.aggregation.header import (REQUIRED_DEPARTMENT, REQUIRED_SALES, WS, Header,
                                       allow_csv_fields)
from server.aggregation.state import INT64_MAX, INT64_MIN, ParseState

MAX_SAMPLES = 100
_NUMBER = re.compile(r"[ \t\r\n\v\f]*([+-]?[0-9]+)(?:\.0*)?[ \t\r\n\v\f]*")
# A number written with thousands separators, as spreadsheets show them: 1,200 / 1.200 /
# 1 200 / 1'200 (a point may also be a decimal point: "1.250" is not a whole number either).
_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}(?:([,.' ])[0-9]{3})(?:\1[0-9]{3})*")
# What varies in one kind of reason: quoted values, numbers.
_VARIABLE = re.compile(r'"[^"]*"|[0-9][0-9,.]*')
# The first group of a number written with thousands separators.
_LEADING_GROUP = re.compile(r"[ \t]*[+-]?[0-9]{1,3}")
# 3.000: a decimal 3, or 3000 with a point between thousands (numbers.py)?
_AMBIGUOUS = re.compile(r"[ \t\r\n\v\f]*[+-]?[0-9]{1,3}\.000[ \t\r\n\v\f]*")
_LINE_END = ("\n", "\r")
_NEVER_CLOSED = "A quoted field is never closed."
_TEXT_AFTER_QUOTE = ("A quoted field has text after its closing quote; expected the delimiter "
                     "or the end of the line.")


class RejectedRows:
    """Writes each rejected row as CSV `Line,Reason,Raw Row`, in the file's own encoding."""

    def __init__(self, out: BinaryIO | None) -> None:
        self._out = out
        self._text: io.TextIOWrapper | None = None
        self._writer = None

    def write(self, line: int, reason: str, raw_lines: list[str]) -> None:
        """Adds one row; raw_lines are its physical lines in the Latin-1 view."""
        if self._out is None:
            return
        if self._writer is None:
            # Latin-1 writes the view back as the very bytes that were read.
            self._text = io.TextIOWrapper(self._out, encoding="latin-1", newline="")
            self._writer = csv.writer(self._text, lineterminator="\n")
            self._writer.writerow(("Line", "Reason", "Raw Row"))
        self._writer.writerow((line, reason, "".join(raw_lines).rstrip("\r\n")))

    def close(self) -> None:
        """Flushes what was written and hands the stream back to its owner, open."""
        if self._writer is not None:
            self._writer = None
            self._text.flush()
            self._text.detach()


class ExactPath:
    """Aggregates any rows, quoted or odd, into the state's totals; rejects bad rows by line."""

    def __init__(self, header: Header, state: ParseState, rejected: RejectedRows, *,
                 max_departments: int, max_field_bytes: int) -> None:
        self._header = header
        self._state = state
        self._rejected = rejected
        self._max_departments = max_departments
        self._max_field_bytes = max_field_bytes

    def aggregate(self, data: bytes | bytearray, final: bool) -> None:
        """Aggregates the rows in data; keeps an unfinished row as the state's pending bytes."""
        lines = list(io.StringIO(data.decode("latin-1"), newline=""))
        if not final and lines:
            # A last line with no end, or ending in CR (an LF may follow), is not whole yet.
            last = lines[-1]
            if not last.endswith(_LINE_END) or last.endswith("\r"):
                self._state.pending = lines.pop().encode("latin-1")
        first = self._state.line_base + 1
        self._state.line_base += self._read_rows(lines, final, range(first, first + len(lines)))
        if len(self._state.pending) > self._max_field_bytes:  # a quoted field that goes on
            raise row_too_long(self._max_field_bytes)

    def aggregate_records(self, records: list[tuple[int, bytes]]) -> None:
        """Aggregates whole records, each given with the physical line it starts on (one
        reader for them all: a reader a record took most of a bad row's time)."""
        lines: list[str] = []
        numbers: list[int] = []
        for line, raw in records:
            own = list(io.StringIO(raw.decode("latin-1"), newline=""))
            lines += own
            numbers += range(line, line + len(own))
        self._read_rows(lines, True, numbers)

    def _read_rows(self, lines: list[str], final: bool, numbers: range | list[int]) -> int:
        """Sums the rows of lines, line i being the file's line numbers[i]; returns how many
        lines were used (the rest are the state's pending bytes)."""
        cursor = _Lines(lines)
        # The csv module's field limit is process-wide: raised (never lowered) past ours, a field
        # it refuses belongs to a row too long anyway, and its error needs no reading of the
        # wording (see _quoting_reason). One more, as a quoted field's last line break counts
        # in the field but not in the row's length.
        allow_csv_fields(self._max_field_bytes + 1)
        reader = csv.reader(cursor, delimiter=self._header.delimiter, strict=True)
        processed, used = self._sum_rows(reader, cursor, final, numbers)
        self._state.rows_processed += processed
        return used

    def _sum_rows(self, reader: Iterator[list[str]], cursor: _Lines, final: bool,
                  numbers: range | list[int]) -> tuple[int, int]:
        """Sums rows until the reader stops; returns (rows summed, lines used)."""
        lines, header, totals = cursor.lines, self._header, self._state.totals
        department_index, sales_index, needed = header.department, header.sales, header.needed
        limit = self._max_field_bytes
        processed = 0
        while True:
            start = cursor.position
            try:
                row = next(reader)
            except StopIteration:
                return processed, len(lines)
            except csv.Error:
                if cursor.exhausted and not final:  # the row goes on in the next block
                    self._state.pending = "".join(lines[start:]).encode("latin-1") + \
                        self._state.pending
                    return processed, start
                reason = self._quoting_reason(lines[start:cursor.position], cursor.exhausted)
                self._reject(numbers[start], reason, lines[start:cursor.position])
                continue
            end = cursor.position
            # Cheap test first (one line, terminator included), exact length only when close.
            if len(lines[start]) > limit or end - start > 1:
                if _record_length(lines[start:end]) > limit:
                    raise row_too_long(limit)
            if len(row) < needed:
                if row and any(cell.strip(WS) for cell in row):
                    self._reject(numbers[start], _too_few_fields(len(row), needed),
                                 lines[start:end])
                continue
            department = row[department_index].strip(WS)
            raw = row[sales_index]
            if len(row) > header.columns:
                raw = _with_unquoted_thousands(row, sales_index, header)
            if department and raw.isdigit() and raw.isascii() and len(raw) < 19:
                value = int(raw)  # the common case, within 64 bits by its length
            else:
                value = _value_or_reason(row, department, raw)
                if not isinstance(value, int):
                    if value is not None:
                        self._reject(numbers[start], value, lines[start:end])
                    continue
            if department in totals:
                totals[department] += value
            else:
                if len(totals) >= self._max_departments:
                    raise too_many_departments(self._max_departments)
                totals[department] = value
            processed += 1

    def _quoting_reason(self, raw_lines: list[str], exhausted: bool) -> str:
        """Why the csv module refused a record, told by where it stopped, not by its wording."""
        if exhausted:  # it ran out of lines inside a quoted field
            return _NEVER_CLOSED
        # Either a field past the csv module's limit, or text after a closing quote in a row
        # too long anyway: refused as every row past the limit is.
        if _record_length(raw_lines) > self._max_field_bytes:
            raise row_too_long(self._max_field_bytes)
        return _TEXT_AFTER_QUOTE

    def _reject(self, line: int, reason: str, raw_lines: list[str]) -> None:
        state = self._state
        state.rows_rejected += 1
        if len(state.samples) < MAX_SAMPLES:
            state.samples.append((line, reason))
        # Reasons counted by their wording without the values it quotes or counts.
        kind = _VARIABLE.sub("#", reason)
        seen = state.reasons.get(kind)
        if seen is None:
            state.reasons[kind] = [1, line, reason]
        else:
            seen[0] += 1
        self._rejected.write(line, reason, raw_lines)


class _Lines:
    """The lines handed to a csv reader, and how far it has read them."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.position = 0  # lines handed out
        self.exhausted = False  # the reader asked for a line after the last one

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.position += 1
            yield line
        self.exhausted = True


def _record_length(lines: list[str]) -> int:
    """A record's length in bytes, without its final line end."""
    return sum(len(line) for line in lines) - len(lines[-1]) + len(lines[-1].rstrip("\r\n"))


def _with_unquoted_thousands(row: list[str], sales: int, header: Header) -> str:
    """The Number of Sales value as written when a thousands separator cut it into fields
    (`Garden,1,200`, unquoted): the fields a row has beyond the header are groups of three
    digits right after the value, so "1,200", which is rejected as such; else the field as it
    is (other extra fields are extra columns, ignored)."""
    raw = row[sales]
    extra = len(row) - header.columns
    groups = row[sales + 1:sales + 1 + extra]
    if header.delimiter == "," and len(groups) == extra and _LEADING_GROUP.fullmatch(raw) \
            and all(len(cell) == 3 and cell.isdigit() and cell.isascii() for cell in groups):
        return ",".join(row[sales:sales + 1 + extra])
    return raw


def _too_few_fields(count: int, needed: int) -> str:
    return f"The row has {count} field{'s' if count != 1 else ''}; expected at least {needed}."


def _value_or_reason(row: list[str], department: str, raw: str) -> int | str | None:
    """A row's value, or why it is rejected, or None for a row of empty fields (skipped)."""
    match = _NUMBER.fullmatch(raw)
    if match is None or not department or _AMBIGUOUS.fullmatch(raw):
        if not any(cell.strip(WS) for cell in row):
            return None  # a ",,"-style empty row
        return _row_reason(department, raw)
    digits = match.group(1)
    # Past 19 significant digits no value fits (and Python refuses to read 4,300 digits).
    if len(digits.lstrip("+-").lstrip("0")) > 19 or not INT64_MIN <= int(digits) <= INT64_MAX:
        return _too_large(raw)
    return int(digits)


def _too_large(raw: str) -> str:
    shown = raw.strip(WS)
    if len(shown) > 40:
        shown = f"{shown[:20]}...{shown[-8:]} ({len(shown):,} characters)"
    if shown.startswith("-"):
        return (f"{REQUIRED_SALES} {shown} is too small; the smallest total that can be "
                f"kept is {INT64_MIN:,}.")
    return (f"{REQUIRED_SALES} {shown} is too large; the largest total that can be kept is "
            f"{INT64_MAX:,}.")


def _row_reason(department: str, raw: str) -> str:
    if not department:
        return f"{REQUIRED_DEPARTMENT} is empty."
    shown = raw.strip(WS)
    if not shown:
        return f"{REQUIRED_SALES} is empty; expected a whole number."
    if _AMBIGUOUS.fullmatch(shown):
        whole = shown.split(".")[0]
        return (f"{REQUIRED_SALES} \"{shown}\" could be {whole} or {whole}000 (a point between "
                "thousands); write the number without a point.")
    if _THOUSANDS.fullmatch(shown):
        separator = shown[-4]
        plain = re.sub(r"[,.' ]", "", shown)
        return (f"{REQUIRED_SALES} \"{shown}\" is written with a thousands separator "
                f"(\"{separator}\"); write it without one: {plain}.")
    if len(shown) > 40:
        shown = shown[:40] + "..."
    return f"{REQUIRED_SALES} \"{shown}\" is not a whole number."
