"""A job's totals in output order, held as two Arrow arrays.

A file may have millions of departments. Sorting them, writing the output CSV and storing them
are each one pass of Arrow compute or numpy here (and encoding the reply, in
server/job_replies.py), instead of a Python loop over millions of tuples (measured: about 10 s
of Python for a million departments).
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy
import pyarrow
import pyarrow.compute as pc

from reports.save import FORMULA_START

_NAME_END = "\x00"  # names cannot hold NUL: a file with NUL bytes is refused as binary
# A name that looks like a formula gets a leading quote (reports/save.py says why), and a name
# that needs RFC 4180 quoting is quoted (a lone CR included: csv.writer with an LF terminator
# leaves it bare, and readers split the row there).
_FORMULA = FORMULA_START
_NEEDS_QUOTES = '[,"\r\n]'


class Departments:
    """Names (string) and totals (int64), row i being one department, in output order."""

    __slots__ = ("names", "totals", "_packed")

    def __init__(self, names: pyarrow.Array, totals: pyarrow.Array) -> None:
        self.names = names
        self.totals = totals
        self._packed: tuple[bytes, bytes] | None = None

    @classmethod
    def empty(cls) -> "Departments":
        return cls(pyarrow.array([], pyarrow.string()), pyarrow.array([], pyarrow.int64()))

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, int]]) -> "Departments":
        """As given, in the given order."""
        pairs = list(pairs)
        return cls(pyarrow.array([name for name, _ in pairs], pyarrow.string()),
                   pyarrow.array([total for _, total in pairs], pyarrow.int64()))

    @classmethod
    def in_output_order(cls, names: pyarrow.Array, totals: pyarrow.Array) -> "Departments":
        """Sorted by name case-insensitively (Unicode lowercase), ties by exact name."""
        names, totals = _array(names), _array(totals)
        if len(names) == 0:
            return cls(names, totals)
        # (ASCII names folded byte by byte: the same, and many times faster on long names.)
        ascii = pc.all(pc.string_is_ascii(names)).as_py()
        folded = pc.cast(pc.ascii_lower(names) if ascii else pc.utf8_lower(names),
                         pyarrow.binary())
        order, tied = byte_order(folded, with_ties=True)
        if len(tied):
            # Names equal but for case are ordered by exact name: those few again, on the key
            # `folded NUL name` (names hold no NUL, so a shorter folded name still sorts first).
            members = pyarrow.array(order[tied])
            keys = pc.binary_join_element_wise(pc.take(folded, members),
                                               pc.cast(pc.take(names, members), pyarrow.binary()),
                                               _NAME_END.encode())
            order[tied] = order[tied][byte_order(keys)]
        del folded  # before the copies below, at a job's peak of memory
        order = pyarrow.array(order)
        return cls(pc.take(names, order), pc.take(totals, order))

    def __len__(self) -> int:
        return len(self.names)

    def slice(self, start: int, count: int) -> "Departments":
        """Departments start to start + count (fewer at the end), in the same order."""
        return Departments(self.names.slice(start, count), self.totals.slice(start, count))

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return zip(self.names.to_pylist(), self.totals.to_pylist())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Departments):
            return self.names.equals(other.names) and self.totals.equals(other.totals)
        if isinstance(other, list):
            return list(self) == [tuple(item) for item in other]
        return NotImplemented

    def __repr__(self) -> str:
        shown = list(zip(self.names[:5].to_pylist(), self.totals[:5].to_pylist()))
        more = f" and {len(self) - 5:,} more" if len(self) > 5 else ""
        return f"Departments({shown}{more})"

    def csv_rows(self) -> bytes:
        """`name,total` lines for the output file, UTF-8: formula names get a leading quote,
        names with a delimiter, quote or line break are quoted."""
        if not len(self):
            return b""
        cells = self.names
        characters = concatenated(cells)  # one scan of all names decides what is needed
        if any(start in characters for start in (b"=", b"+", b"-", b"@", b"\t", b"\r", b"'")):
            cells = pc.if_else(pc.match_substring_regex(cells, _FORMULA),
                               pc.binary_join_element_wise("'", cells, ""), cells)
        if any(special in characters for special in (b",", b'"', b"\r", b"\n")):
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(cells, '"', '""'),
                                                 '"', "")
            cells = pc.if_else(pc.match_substring_regex(cells, _NEEDS_QUOTES), quoted, cells)
        return concatenated(pc.binary_join_element_wise(
            cells, ",", pc.cast(self.totals, pyarrow.string()), "\n", ""))

    def pack(self) -> tuple[bytes, bytes]:
        """Two compact blobs for storage: the names each ended by NUL, and the totals as
        int64s, each compressed (a million departments: about 25 MB raw, and SQLite writes
        every byte twice). Made once: a job packs its totals while it writes the output file,
        and the history stores what was packed."""
        if self._packed is None:
            if not len(self):
                self._packed = b"", b""
            else:
                totals = self.totals.to_numpy(zero_copy_only=False).tobytes()
                self._packed = _compressed(self._ended_names()), _compressed([totals])
        return self._packed

    def _ended_names(self) -> Iterator[bytes]:
        """The names each ended by NUL, a slice at a time: all at once, the joined names were
        two transient copies of every name at a job's peak of memory."""
        names = pc.cast(self.names, pyarrow.binary())
        for start in range(0, len(names), _PACKED_AT_ONCE):
            yield concatenated(pc.binary_join_element_wise(
                names.slice(start, _PACKED_AT_ONCE), b"", _NAME_END.encode()))

    @classmethod
    def unpack(cls, names: bytes, totals: bytes, compressed: bool = True) -> "Departments":
        """The inverse of pack(); compressed=False for blobs stored before compression. Raises
        ValueError for blobs pack() did not make (damaged)."""
        try:
            if compressed:
                names, totals = _decompressed(names), _decompressed(totals)
        except (OSError, pyarrow.ArrowException, ValueError) as exc:
            raise ValueError(f"damaged departments: {exc}") from None
        if not totals:
            return cls.empty()
        count = len(totals) // 8
        parts = pc.split_pattern(pyarrow.scalar(names, pyarrow.binary()), _NAME_END).values
        # pack() ends every name with NUL: one part more than names, the last one empty.
        if len(totals) % 8 or len(parts) != count + 1 or parts[count].as_py() != b"":
            raise ValueError("damaged departments: names and totals do not match")
        try:
            names = pc.cast(parts[:count], pyarrow.string())
        except pyarrow.ArrowInvalid:
            raise ValueError("damaged departments: a name is not UTF-8") from None
        return cls(names,
                   pyarrow.Array.from_buffers(pyarrow.int64(), count,
                                              [None, pyarrow.py_buffer(totals)]))


# Stored blobs: the raw length (8 bytes, little-endian), then zstd (one frame or several).
_CODEC = pyarrow.Codec("zstd", compression_level=1)
_PACKED_AT_ONCE = 1 << 16  # names compressed at a time


def _compressed(parts: Iterable[bytes]) -> bytes:
    """The parts as one stored blob, each compressed as a frame of its own (zstd reads frames
    one after another as one); b"" if they hold nothing."""
    size, frames = 0, []
    for part in parts:
        size += len(part)
        frames.append(_CODEC.compress(part, asbytes=True))
    return size.to_bytes(8, "little") + b"".join(frames) if size else b""


def _decompressed(blob: bytes) -> bytes:
    if not blob:
        return b""
    size = int.from_bytes(blob[:8], "little")
    if size > 1 << 32:  # more than any job's departments: a damaged size, not an allocation
        raise ValueError("an impossible size")
    return _CODEC.decompress(memoryview(blob)[8:], size, asbytes=True)


def value_offsets(values: pyarrow.Array) -> numpy.ndarray:
    """Where each value of a string or binary array starts in its data, and where the last
    ends (int32, one more than there are values), without a copy."""
    return numpy.frombuffer(values.buffers()[1], numpy.int32, len(values) + 1, 4 * values.offset)


def value_lengths(values: pyarrow.Array) -> numpy.ndarray:
    """Byte lengths of a string or binary array's values (int64)."""
    return numpy.diff(value_offsets(values)).astype(numpy.int64)


# Of a big-endian 64-bit word, the first k bytes: FIRST_BYTES[k].
FIRST_BYTES = numpy.array([0] + [((1 << 8 * k) - 1) << 8 * (8 - k) for k in range(1, 9)],
                           numpy.uint64)


def byte_order(keys: pyarrow.Array, with_ties: bool = False):
    """Indices that sort binary keys holding no NUL byte in byte order (equal keys in any
    order); with_ties=True also returns the places in that order that hold a key equal to
    another one (ascending).

    Sorting a million strings with Arrow or numpy takes about a second here; this sorts 64-bit
    integers instead: the next 8 bytes of each key, after the prefix all keys share, and then,
    only for keys still tied, the 8 bytes after those, and so on. Most keys part within the
    first round or two.
    """
    keys = _array(keys)
    count = len(keys)
    equal: list[numpy.ndarray] = []  # places of keys found equal to another, by round
    order = numpy.arange(count)
    if count >= 2:
        _sort_rounds(keys, order, equal)
    if not with_ties:
        return order
    return order, numpy.sort(numpy.concatenate(equal)) if equal else numpy.zeros(0, numpy.intp)


def _sort_rounds(keys: pyarrow.Array, order: numpy.ndarray, equal: list[numpy.ndarray]) -> None:
    """byte_order()'s rounds, sorting order in place."""
    # int32 throughout (Arrow's offsets are): a million keys' arrays of positions are the
    # bulk of the memory a sort needs.
    offsets = value_offsets(keys)
    starts = offsets[:-1]
    lengths = numpy.diff(offsets)
    position = _shared_prefix_length(keys)
    tied = None  # the places in order whose keys are still tied
    groups = None  # and their tie groups, ascending
    while True:
        members = order if tied is None else order[tied]
        # (In the first round order is 0, 1, 2...: no need to gather.)
        member_lengths = lengths if tied is None else lengths[members]
        member_starts = starts if tied is None else starts[members]
        known = numpy.clip(member_lengths - position, 0, 8).astype(numpy.uint8)
        word = words_at(keys, member_starts + numpy.minimum(position, member_lengths))
        word &= FIRST_BYTES[known]
        if tied is None:
            sorting = numpy.argsort(word, kind="stable")
            order[:] = members = members[sorting]
        else:
            sorting = numpy.lexsort((word, groups))
            order[tied] = members = members[sorting]
            groups = groups[sorting]
        runs = _runs(word[sorting], groups)
        position += 8
        shared = numpy.bincount(runs)[runs] > 1
        # Tied on a word in which the keys end: equal keys (equal words end keys together,
        # as keys hold no NUL).
        ended = shared & (known[sorting] < 8)
        if ended.any():
            equal.append(numpy.flatnonzero(ended) if tied is None else tied[ended])
        still = shared & ~ended
        if not still.any():
            return
        tied = numpy.flatnonzero(still) if tied is None else tied[still]
        groups = runs[still]


def words_at(keys: pyarrow.Array, positions: numpy.ndarray) -> numpy.ndarray:
    """The 8 bytes at each position of the keys' data as one big-endian integer, zero past the
    end of the data."""
    data = keys.buffers()[2]
    size = len(data) if data is not None else 0
    words = numpy.zeros(len(positions), numpy.uint64)
    if not size:
        return words
    view = numpy.frombuffer(data, numpy.uint8)
    # A view of overlapping words, read in place but for the last 8 bytes: a copy of a whole
    # block's data per call cost more than the rest (fresh pages, faulted in each time).
    inside = numpy.ndarray((max(size - 7, 0),), ">u8", view, strides=(1,))
    tail = numpy.zeros(16, numpy.uint8)
    tail[:min(size, 8)] = view[max(size - 8, 0):]
    tail_words = numpy.ndarray((9,), ">u8", tail, strides=(1,))
    near_end = positions > size - 8
    if near_end.any():
        words[near_end] = tail_words[positions[near_end] - max(size - 8, 0)]
        far = ~near_end
        words[far] = inside[positions[far]]
    else:
        words[:] = inside[positions]
    return words


def _shared_prefix_length(keys: pyarrow.Array) -> int:
    """How many leading bytes every key shares (those of the smallest and largest key)."""
    low, high = (value.as_py() for value in pc.min_max(keys).values())
    return next((i for i, (a, b) in enumerate(zip(low, high)) if a != b),
                min(len(low), len(high)))


def _runs(word: numpy.ndarray, groups: numpy.ndarray | None) -> numpy.ndarray:
    """For sorted words (within sorted tie groups), a run number per word: equal words of one
    group share it."""
    starts_run = numpy.empty(len(word), bool)
    starts_run[0] = True
    numpy.not_equal(word[1:], word[:-1], out=starts_run[1:])
    if groups is not None:
        starts_run[1:] |= groups[1:] != groups[:-1]
    return numpy.cumsum(starts_run)


def _array(values) -> pyarrow.Array:
    return values.combine_chunks() if isinstance(values, pyarrow.ChunkedArray) else values


def concatenated(values: pyarrow.Array) -> bytes:
    """All of a string or binary array's values back to back."""
    values = _array(values)
    if values.type not in (pyarrow.binary(), pyarrow.string()):
        raise TypeError(f"expected string or binary values, not {values.type}")
    offsets = value_offsets(values)
    return bytes(memoryview(values.buffers()[2])[offsets[0]:offsets[-1]])
