"""Where a block's records start and end, told by RFC 4180 quote parity and found with numpy."""

from __future__ import annotations

import numpy

_QUOTE, _LF, _CR = ord('"'), ord("\n"), ord("\r")
_NO_QUOTES = numpy.zeros(0, numpy.int64)


def physical_lines(data: bytes | bytearray) -> int:
    """Lines in data as the exact path counts them: LF, CR LF or a lone CR ends one."""
    # numpy counts several times faster than bytes.count where line ends abound.
    view = numpy.frombuffer(data, numpy.uint8)
    lines = numpy.count_nonzero(view == _LF)
    if b"\r" in data:
        returns = view == _CR
        lines += numpy.count_nonzero(returns) - numpy.count_nonzero(returns[:-1] & (view[1:] == _LF))
    if data and data[-1] not in (_LF, _CR):
        lines += 1
    return int(lines)


class Layout:
    """Bytes that start at a record's start, and where the csv module's reading of them goes
    into or out of a quoted field: a line end ends a record when an even number of those
    turns stands before it.

    Mostly every quote is such a turn (it opens a field, closes one, or is half of a doubled
    quote), which scan() checks first; where not, it follows the csv module's rules (a quote
    inside an unquoted field, as in `32" TV`, is a character). Bytes it would refuse (text
    after a closing quote) have no layout: the exact path reads them.
    """

    def __init__(self, data: bytes | bytearray, turns: numpy.ndarray, quoted: bool) -> None:
        self.data = data
        self.quotes = turns  # ascending positions of the quotes where a quoted field starts or ends
        self.quoted = quoted  # whether data holds any quote character at all

    @classmethod
    def scan(cls, data: bytes | bytearray, delimiter: int, final: bool) -> Layout | None:
        """The layout of data, or None if the csv module would refuse a quote in it (or, at
        the end of the file, find a quoted field left open)."""
        if b'"' not in data:
            return cls(data, _NO_QUOTES, False)
        view = numpy.frombuffer(data, numpy.uint8)
        quotes = numpy.flatnonzero(view == _QUOTE)
        if not _well_placed(view, quotes, delimiter):
            quotes = _turns(view, quotes, delimiter)
            if quotes is None:
                return None
        if final and len(quotes) % 2:
            return None
        return cls(data, quotes, True)

    def whole_records_end(self, final: bool) -> int:
        """Where the last whole record ends: after the last LF outside quotes (0 if none)."""
        if final:
            return len(self.data)  # scan() saw every quoted field closed
        data, quotes = self.data, self.quotes
        end = data.rfind(b"\n")
        while end >= 0:
            before = int(quotes.searchsorted(end))
            if before % 2 == 0:
                return end + 1
            end = data.rfind(b"\n", 0, int(quotes[before - 1]))  # before its opening quote
        return 0

    def record_end_after(self, position: int) -> int:
        """Where the first record that ends with an LF at or after position ends, or len(data)."""
        end = self._record_end(position, len(self.data))
        return end + 1 if end >= 0 else len(self.data)

    def may_hold_long_record(self, limit: int) -> bool:
        """False when no record can be longer than limit: a longer one would cover a whole
        aligned window of limit/2 bytes with no record end in it, and every window has one."""
        window = max(1, limit // 2)
        return any(self._record_end(start, start + window) < 0
                   for start in range(0, len(self.data) - window + 1, window))

    def line_ends_in_quotes(self) -> int:
        """How many line ends stand inside quoted fields."""
        data, turns = self.data, self.quotes
        if len(turns) > len(data) >> 10:  # many quoted fields: one pass over the bytes
            line_ends = _line_ends(data)
            return len(line_ends) - len(_outside(line_ends, turns))
        count, returns = 0, b"\r" in data
        for start, end in zip(turns[0::2].tolist(), turns[1::2].tolist()):
            count += data.count(b"\n", start, end)
            if returns:
                count += data.count(b"\r", start, end) - data.count(b"\r\n", start, end)
        return count

    def _record_end(self, start: int, stop: int) -> int:
        """The first LF in data[start:stop] outside quoted fields, or -1."""
        data, turns = self.data, self.quotes
        end = data.find(b"\n", start, stop)
        while end >= 0:
            before = int(turns.searchsorted(end))
            if before % 2 == 0:
                return end
            if before == len(turns):
                break
            end = data.find(b"\n", int(turns[before]) + 1, stop)  # after its closing quote
        return -1

    def piece(self, start: int, end: int) -> Layout:
        """The layout of data[start:end], both being record boundaries."""
        low, high = self.quotes.searchsorted([start, end])
        data = self.data[start:end]
        return Layout(data, self.quotes[low:high] - start, self.quoted and b'"' in data)

    def records(self) -> Records:
        """Every record's bytes and first physical line (found with a pass over the bytes)."""
        line_ends = _line_ends(self.data)
        # Which line ends end records, by their index among line ends: a record then starts on
        # the line after its predecessor's end.
        ends_at = _outside(line_ends, self.quotes)
        starts = numpy.concatenate(([0], line_ends[ends_at] + 1))
        lines_before = numpy.concatenate(([0], ends_at + 1))
        if starts[-1] != len(self.data):  # the last record of the file, with no line end
            starts = numpy.append(starts, len(self.data))
        return Records(self.data, starts, lines_before[:len(starts) - 1])


class Records:
    """The records of a block: record i is data[starts[i]:starts[i + 1]] and starts on the
    block's physical line lines_before[i] (counted from 0)."""

    def __init__(self, data: bytes | bytearray, starts: numpy.ndarray,
                 lines_before: numpy.ndarray) -> None:
        self._data = data
        self._starts = starts
        self._lines_before = lines_before

    @property
    def count(self) -> int:
        """How many records there are."""
        return len(self._starts) - 1

    def longest(self) -> int:
        """An upper bound of the longest record's length (its line end counted in)."""
        return int(numpy.diff(self._starts).max(initial=0))

    def row(self, index: int) -> tuple[int, bytes]:
        """(physical line within the block, counted from 0; the record's bytes)."""
        start, end = int(self._starts[index]), int(self._starts[index + 1])
        return int(self._lines_before[index]), bytes(self._data[start:end])


def _line_ends(data: bytes | bytearray) -> numpy.ndarray:
    """Where each physical line ends: its LF, or its CR when no LF follows."""
    view = numpy.frombuffer(data, numpy.uint8)
    line_ends = numpy.flatnonzero(view == _LF)
    if b"\r" in data:
        returns = numpy.flatnonzero(view == _CR)
        follower = view[numpy.minimum(returns + 1, len(view) - 1)]
        lone = returns[(returns + 1 == len(view)) | (follower != _LF)]
        line_ends = numpy.union1d(line_ends, lone)
    return line_ends


def _outside(line_ends: numpy.ndarray, turns: numpy.ndarray) -> numpy.ndarray:
    """The indexes of the line ends outside quoted fields."""
    if not len(turns):
        return numpy.arange(len(line_ends))
    if len(turns) >= len(line_ends):
        return numpy.flatnonzero(turns.searchsorted(line_ends) % 2 == 0)
    # Few quoted fields (the usual case): mark the line ends each one spans.
    bounds = line_ends.searchsorted(turns)
    if len(bounds) % 2:
        bounds = numpy.append(bounds, len(line_ends))
    into = numpy.bincount(bounds[0::2], minlength=len(line_ends) + 1)
    out_of = numpy.bincount(bounds[1::2], minlength=len(line_ends) + 1)
    return numpy.flatnonzero(numpy.cumsum(into - out_of)[:-1] == 0)


def _well_placed(view: numpy.ndarray, quotes: numpy.ndarray, delimiter: int) -> bool:
    """True if every quote opens a field, closes one, or is half of a doubled quote."""
    # Quote k opens a field when k is even, closes one when k is odd. An opening quote must
    # start the bytes or follow a delimiter, a line end or a quote (then the closing quote just
    # before it, making a doubled quote); a closing one must be followed by one of those, or
    # end the bytes (where, before the end of the file, what follows is not known yet).
    # take() clips the byte before a quote at the start, or after one at the end, to the quote
    # itself, which passes: both edges are field edges.
    opening, closing = quotes[0::2], quotes[1::2]
    before = numpy.take(view, opening - 1, mode="clip")
    after = numpy.take(view, closing + 1, mode="clip")
    return bool(_may_border_quote(before, delimiter).all()
                and _may_border_quote(after, delimiter).all())


def _may_border_quote(chars: numpy.ndarray, delimiter: int) -> numpy.ndarray:
    """Per byte: a delimiter, a line end or a quote (compares: faster than a table look-up)."""
    return (chars == delimiter) | (chars == _LF) | (chars == _CR) | (chars == _QUOTE)


def _turns(view: numpy.ndarray, quotes: numpy.ndarray, delimiter: int) -> numpy.ndarray | None:
    """Where the csv module goes into or out of a quoted field, read run by run of adjacent
    quotes; None if it would refuse a run (text after a closing quote)."""
    first_of_run = numpy.ones(len(quotes), bool)
    first_of_run[1:] = numpy.diff(quotes) != 1
    first = quotes[first_of_run]
    last = quotes[numpy.append(first_of_run[1:], True)]
    odd = (last - first) % 2 == 0
    # take() clips at the edges to a quote, which passes: both edges are field edges.
    at_field_start = _may_border_quote(numpy.take(view, first - 1, mode="clip"), delimiter)
    field_ends = _may_border_quote(numpy.take(view, last + 1, mode="clip"), delimiter)
    # Outside a quoted field, a run at a field's start turns in if odd; one inside an unquoted
    # field is characters. Inside, pairs are doubled quotes and an odd run turns out; so an odd
    # run inside an unquoted field leaves the reading outside whatever it was: a reset.
    flips = numpy.cumsum(at_field_start & odd)
    runs = numpy.arange(len(first))
    last_reset = numpy.maximum.accumulate(numpy.where(~at_field_start & odd, runs, -1))
    flips_before = numpy.concatenate(([0], flips[:-1]))
    reset_before = numpy.concatenate(([-1], last_reset[:-1]))
    flips_at_reset = numpy.where(reset_before >= 0, flips[numpy.maximum(reset_before, 0)], 0)
    inside = (flips_before - flips_at_reset) % 2 == 1
    # A closing quote must end its field: so must the last quote of an even run that opened
    # at a field's start (`""x` is refused), and of an odd run inside a quoted field.
    closes = numpy.where(inside, odd, at_field_start & ~odd)
    if (closes & ~field_ends).any():
        return None
    turned = numpy.where(inside, odd, at_field_start & odd)
    return first[turned]
