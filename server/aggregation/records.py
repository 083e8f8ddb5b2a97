"""Where a block's records start and end: after line ends outside quoted fields."""

from __future__ import annotations

import numpy

from server.aggregation.bits import Bits
from server.aggregation.quotes import CR, LF, QUOTE, Parity, positions_of, turns

_NONE = numpy.zeros(0, numpy.int64)


def physical_lines(data: bytes | bytearray) -> int:
    """Lines in data as the exact path counts them: LF, CR LF or a lone CR ends one."""
    # numpy counts several times faster than bytes.count where line ends abound.
    view = numpy.frombuffer(data, numpy.uint8)
    lines = numpy.count_nonzero(view == LF)
    if b"\r" in data:
        returns = view == CR
        crlf = numpy.count_nonzero(returns[:-1] & (view[1:] == LF))
        lines += numpy.count_nonzero(returns) - crlf
    if data and data[-1] not in (LF, CR):
        lines += 1
    return int(lines)


class Layout:
    """Bytes that start at a record's start, and where the csv module's reading of them turns
    into or out of a quoted field: a line end ends a record when an even number of turns
    stands before it.

    Mostly, every quote is a turn (it opens a field, closes one, or is half of a doubled
    quote); then a bit per byte says whether an odd number of quotes stands before it, and
    turns are found by searching the bytes.
    Where not, the turns follow the csv module's rules (a quote inside an unquoted field, as
    in `32" TV`, is a character) and are kept as positions. Bytes the csv module would refuse
    (text after a closing quote) have no layout: the exact path reads them.
    """

    def __init__(self, data: bytes | bytearray, quoted: bool,
                 positions: numpy.ndarray | None = None,
                 parity: Parity | None = None) -> None:
        self.data = data
        self.quoted = quoted  # whether data holds any quote character at all
        self._positions = positions  # of the turns, when not every quote is one
        self._parity = parity  # when every quote is a turn; of these bytes or more

    @classmethod
    def scan(cls, data: bytes | bytearray, delimiter: int, final: bool) -> Layout | None:
        """The layout of data, or None if the csv module would refuse a quote in it (or, at
        the end of the file, find a quoted field left open)."""
        if b'"' not in data:
            return cls(data, False, positions=_NONE)
        view = numpy.frombuffer(data, numpy.uint8)
        parity = Parity.scan(view, delimiter, returns=b"\r" in data)
        if parity is not None:
            layout = cls(data, True, parity=parity)
        else:
            positions = turns(view, delimiter)
            if positions is None:
                return None
            layout = cls(data, True, positions=positions)
        if final and layout._odd_before(len(data)):
            return None
        return layout

    def whole_records_end(self, final: bool) -> int:
        """Where the last whole record ends: after the last LF outside quotes (0 if none)."""
        if final:
            return len(self.data)  # scan() saw every quoted field closed
        end = self.data.rfind(b"\n")
        while end >= 0 and self._odd_before(end):
            end = self.data.rfind(b"\n", 0, self._turn_before(end))  # before its opening
        return end + 1

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

    def lines(self) -> int:
        """Physical lines, as the exact path counts them."""
        parity = self._parity_of_data()
        if parity is not None:
            return parity.line_feeds() + (self.data[-1] != LF)
        return physical_lines(self.data)

    def line_ends_in_quotes(self) -> int:
        """How many line ends stand inside quoted fields."""
        parity = self._parity_of_data()
        if parity is not None:
            return parity.line_feeds_in_quotes()
        data, positions = self.data, self.positions()
        if len(positions) > len(data) >> 10:  # many quoted fields: one pass over the bytes
            line_ends = _line_ends(data)
            outside = _outside(line_ends, positions)
            return 0 if outside is None else len(line_ends) - len(outside)
        count, returns = 0, b"\r" in data
        for start, end in zip(positions[0::2].tolist(), positions[1::2].tolist()):
            count += data.count(b"\n", start, end)
            if returns:
                count += data.count(b"\r", start, end) - data.count(b"\r\n", start, end)
        return count

    def piece(self, start: int, end: int) -> Layout:
        """The layout of data[start:end], both being record boundaries."""
        if start == 0 and self._parity is not None:  # it holds for a head as it is
            return Layout(self.data[:end], self.quoted, parity=self._parity)
        positions = self.positions()
        low, high = positions.searchsorted([start, end])
        data = self.data[start:end]
        return Layout(data, self.quoted and b'"' in data, positions=positions[low:high] - start)

    def rows(self, indexes: numpy.ndarray, count: int) -> list[tuple[int, bytes]] | None:
        """The records at indexes, as (physical line within data, counted from 0; the
        record's bytes); None if data does not hold count records."""
        parity = self._parity_of_data()
        if b"\r" in self.data or (self.quoted and parity is None):
            records = self.records()
            if records.count != count:
                return None
            return [records.row(index) for index in indexes.tolist()]
        # LFs alone end lines: found by bits, not by the position of every LF.
        if parity is not None:
            ends, line_feeds = parity.record_ends()
        else:
            ends = line_feeds = Bits.equal(numpy.frombuffer(self.data, numpy.uint8), (LF,))[0]
        closed = ends.count()
        if closed + (self.data[-1] != LF) != count:
            return None
        last = len(self.data) - 1
        stops = numpy.full(len(indexes), last)
        inside = indexes < closed
        stops[inside] = ends.select(indexes[inside])
        starts = numpy.zeros(len(indexes), numpy.int64)
        later = indexes > 0
        starts[later] = ends.select(indexes[later] - 1) + 1
        lines = line_feeds.rank(starts)
        data = self.data
        return [(line, bytes(data[start:stop + 1])) for line, start, stop
                in zip(lines.tolist(), starts.tolist(), stops.tolist())]

    def records(self) -> Records:
        """Every record's bytes and first physical line (found with a pass over the bytes)."""
        line_ends = _line_ends(self.data)
        return Records(self.data, line_ends, _outside(line_ends, self.positions()))

    def positions(self) -> numpy.ndarray:
        """Where the turns stand, ascending (found with a pass over the bytes if need be)."""
        if self._positions is None:
            self._positions = positions_of(numpy.frombuffer(self.data, numpy.uint8), QUOTE)
        return self._positions

    def _parity_of_data(self) -> Parity | None:
        """The parity, if it is this data's own (not a longer block's) and LFs alone end its
        lines."""
        return self._parity if self._parity is not None and self._parity.covers(self.data) \
            else None

    def _odd_before(self, position: int) -> bool:
        """Whether position stands inside a quoted field (after an odd number of turns)."""
        if self._positions is not None:
            return bool(self._positions.searchsorted(position) % 2)
        return self._parity.odd_before(position)

    def _turn_before(self, position: int) -> int:
        if self._positions is not None:
            return int(self._positions[self._positions.searchsorted(position) - 1])
        return self.data.rfind(b'"', 0, position)

    def _turn_after(self, position: int) -> int:
        """The first turn at or after position, or -1."""
        if self._positions is not None:
            index = int(self._positions.searchsorted(position))
            return int(self._positions[index]) if index < len(self._positions) else -1
        return self.data.find(b'"', position)

    def _record_end(self, start: int, stop: int) -> int:
        """The first LF in data[start:stop] outside quoted fields, or -1."""
        end = self.data.find(b"\n", start, stop)
        while end >= 0 and self._odd_before(end):
            closing = self._turn_after(end)
            if closing < 0:
                return -1
            end = self.data.find(b"\n", closing + 1, stop)
        return end


class Records:
    """The records of a block: each ends at a line end outside quoted fields (the last perhaps
    at the end of the bytes), and starts on the line after its predecessor's end."""

    def __init__(self, data: bytes | bytearray, line_ends: numpy.ndarray,
                 ends_at: numpy.ndarray | None) -> None:
        self._data = data
        # Which line ends end records, by index among line ends (None: all of them).
        self._ends_at = ends_at
        self._ends = line_ends if ends_at is None else line_ends[ends_at]
        self._open_end = bool(data) and bool(not len(self._ends) or self._ends[-1] + 1 < len(data))

    @property
    def count(self) -> int:
        """How many records there are."""
        return len(self._ends) + self._open_end

    def longest(self) -> int:
        """An upper bound of the longest record's length (its line end counted in)."""
        starts = numpy.concatenate(([-1], self._ends, [len(self._data) - 1] * self._open_end))
        return int(numpy.diff(starts).max(initial=0))

    def row(self, index: int) -> tuple[int, bytes]:
        """(physical line within the block, counted from 0; the record's bytes)."""
        start = int(self._ends[index - 1]) + 1 if index else 0
        end = int(self._ends[index]) + 1 if index < len(self._ends) else len(self._data)
        if self._ends_at is not None:
            index = int(self._ends_at[index - 1]) + 1 if index else 0
        return index, bytes(self._data[start:end])


def _line_ends(data: bytes | bytearray) -> numpy.ndarray:
    """Where each physical line ends: its LF, or its CR when no LF follows."""
    view = numpy.frombuffer(data, numpy.uint8)
    line_ends = positions_of(view, LF)
    if b"\r" in data:
        returns = positions_of(view, CR)
        follower = view[numpy.minimum(returns + 1, len(view) - 1)]
        lone = returns[(returns + 1 == len(view)) | (follower != LF)]
        line_ends = numpy.union1d(line_ends, lone)
    return line_ends


def _outside(line_ends: numpy.ndarray, positions: numpy.ndarray) -> numpy.ndarray | None:
    """The indexes of the line ends outside quoted fields, given where the turns stand (None:
    all of them)."""
    if not len(positions):
        return None
    if len(positions) >= len(line_ends):
        return numpy.flatnonzero(positions.searchsorted(line_ends) % 2 == 0)
    # Few quoted fields (the usual case): mark the line ends each one spans.
    bounds = line_ends.searchsorted(positions)
    if len(bounds) % 2:
        bounds = numpy.append(bounds, len(line_ends))
    into = numpy.bincount(bounds[0::2], minlength=len(line_ends) + 1)
    out_of = numpy.bincount(bounds[1::2], minlength=len(line_ends) + 1)
    return numpy.flatnonzero(numpy.cumsum(into - out_of)[:-1] == 0)
