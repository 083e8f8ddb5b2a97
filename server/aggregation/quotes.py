"""Where the csv module's reading of a block turns into or out of quoted fields, by numpy."""

from __future__ import annotations

import numpy

from server.aggregation.bits import Bits

QUOTE, LF, CR = ord('"'), ord("\n"), ord("\r")
# Quote positions are found this many bytes at a time, so that the allocator reuses the
# temporaries: a whole block's (8 MB of positions for a block of quoted fields) had their pages
# faulted in afresh block after block, about a quarter of the time of a file with every field
# quoted.
_SEGMENT = 1 << 20


class Parity:
    """Which bytes of a block stand after an odd number of quotes, when every quote is a turn
    (it opens a field, closes one, or is half of a doubled quote): a bit per byte, so that a
    block of quoted fields costs a few numpy passes over its bytes and none over its quotes
    (positions of every quote took three times as long)."""

    def __init__(self, odd: Bits, line_feeds: Bits, returns: bool) -> None:
        self._odd = odd  # bit i: an odd number of quotes in bytes 0..i
        self._line_feeds = line_feeds
        self._returns = returns

    def covers(self, data: bytes | bytearray) -> bool:
        """Whether LFs alone end data's lines, and these bits are data's (not a longer
        block's, of which data is the head)."""
        return not self._returns and self._odd.size == len(data)

    @classmethod
    def scan(cls, view: numpy.ndarray, delimiter: int, returns: bool) -> Parity | None:
        """The parity of view's quotes, or None if a quote in it is not a turn. returns: whether
        view holds a CR."""
        quotes, line_feeds, *others = Bits.equal(
            view, (QUOTE, LF, delimiter, CR) if returns else (QUOTE, LF, delimiter))
        border = quotes | line_feeds
        for bits in others:  # the delimiter, and CR where there is one
            border = border | bits
        odd = quotes.prefix_parity()
        # Taking turns, quotes open and close fields. An opening quote must start the bytes or
        # follow a delimiter, a line end or a quote (then the closing quote just before it,
        # making a doubled quote); a closing one must be followed by one of those, or end the
        # bytes (where, before the end of the file, what follows is not known yet).
        opening, closing = quotes & odd, quotes.and_not(odd)
        if (opening.and_not(border.shifted_up(first=True)).any()
                or closing.and_not(border.shifted_down(last=True)).any()):
            return None
        return cls(odd, line_feeds, returns)

    def odd_before(self, position: int) -> bool:
        """Whether an odd number of quotes stands before position."""
        return position > 0 and self._odd.bit(position - 1)

    def line_feeds(self) -> int:
        """How many LFs the bytes hold."""
        return self._line_feeds.count()

    def record_ends(self) -> tuple[Bits, Bits]:
        """(the LFs outside quoted fields, every LF), when LFs alone end lines."""
        return self._line_feeds.and_not(self._odd), self._line_feeds

    def line_feeds_in_quotes(self) -> int:
        """How many LFs stand inside quoted fields."""
        return (self._line_feeds & self._odd).count()


def positions_of(view: numpy.ndarray, byte: int) -> numpy.ndarray:
    """Where byte stands in view, ascending (found a segment at a time, as above)."""
    parts = []
    for start in range(0, len(view), _SEGMENT):
        found = numpy.flatnonzero(view[start:start + _SEGMENT] == byte)
        found += start
        parts.append(found)
    return parts[0] if len(parts) == 1 else numpy.concatenate(parts)


def turns(view: numpy.ndarray, delimiter: int) -> numpy.ndarray | None:
    """Where the csv module goes into or out of a quoted field, read run by run of adjacent
    quotes; None if it would refuse a run (text after a closing quote)."""
    quotes = positions_of(view, QUOTE)
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


def _may_border_quote(chars: numpy.ndarray, delimiter: int) -> numpy.ndarray:
    """Per byte: a delimiter, a line end or a quote (compares: faster than a table look-up)."""
    return (chars == delimiter) | (chars == LF) | (chars == CR) | (chars == QUOTE)
