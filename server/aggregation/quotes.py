"""Where the csv module's reading of a block turns into or out of quoted fields, by numpy."""

from __future__ import annotations

import numpy

QUOTE, LF, CR = ord('"'), ord("\n"), ord("\r")
# Quotes are looked for this many bytes at a time, so that the allocator reuses the
# temporaries: a whole block's (8 MB of positions for a block of quoted fields) had their pages
# faulted in afresh block after block, about a quarter of the time of a file with every field
# quoted.
_SEGMENT = 1 << 20
# Quote counts are kept at every step of this many bytes (a divisor of _SEGMENT): the quotes
# before any position are then a count at a step plus a count of the bytes since.
COUNT_STEP = 1 << 16


def quote_counts(view: numpy.ndarray, delimiter: int) -> numpy.ndarray | None:
    """If every quote in view is a turn (it opens a field, closes one, or is half of a doubled
    quote), the number of quotes before each COUNT_STEP; else None."""
    counts, total, size = [], 0, len(view)
    for start in range(0, size, _SEGMENT):
        end = min(start + _SEGMENT, size)
        quotes = numpy.flatnonzero(view[start:end] == QUOTE)
        counts.append(total + quotes.searchsorted(numpy.arange(0, end - start, COUNT_STEP)))
        if len(quotes):
            low = max(start - 1, 0)  # with the byte before the segment, and the one after
            quotes += start - low
            if not _well_placed(view[low:end + 1], quotes, delimiter, inside=total % 2 == 1):
                return None
        total += len(quotes)
    return numpy.concatenate(counts + [numpy.array([total])])


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


def _well_placed(view: numpy.ndarray, quotes: numpy.ndarray, delimiter: int,
                 inside: bool) -> bool:
    """True if, counting from inside or outside a quoted field, each quote opens a field,
    closes one, or is half of a doubled quote."""
    # Taking turns, quotes open and close fields. An opening quote must start the bytes or
    # follow a delimiter, a line end or a quote (then the closing quote just before it, making
    # a doubled quote); a closing one must be followed by one of those, or end the bytes
    # (where, before the end of the file, what follows is not known yet). take() clips the
    # byte before a quote at the start, or after one at the end, to the quote itself, which
    # passes: both edges are field edges.
    opening, closing = (quotes[1::2], quotes[0::2]) if inside else (quotes[0::2], quotes[1::2])
    before = numpy.take(view, opening - 1, mode="clip")
    after = numpy.take(view, closing + 1, mode="clip")
    return bool(_may_border_quote(before, delimiter).all()
                and _may_border_quote(after, delimiter).all())


def _may_border_quote(chars: numpy.ndarray, delimiter: int) -> numpy.ndarray:
    """Per byte: a delimiter, a line end or a quote (compares: faster than a table look-up)."""
    return (chars == delimiter) | (chars == LF) | (chars == CR) | (chars == QUOTE)
