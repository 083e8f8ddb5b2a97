"""A job's totals in output order, held as two Arrow arrays.

A file may have millions of departments. Sorting them, writing the output CSV, storing them and
encoding the reply are each one pass of Arrow compute here, in C++, instead of a Python loop
over millions of tuples (measured: about 10 s of Python for a million departments).
"""

from __future__ import annotations

from array import array
from typing import Iterable, Iterator

import pyarrow
import pyarrow.compute as pc

_EMPTY = pyarrow.scalar(b"", pyarrow.binary())
_NAME_END = "\x00"  # names cannot hold NUL: a file with NUL bytes is refused as binary
# A name a spreadsheet would run as a formula, and one that needs RFC 4180 quoting (a lone CR
# included: csv.writer with an LF terminator leaves it bare, and readers split the row there).
_FORMULA = r"^[=+\-@\t\r]"
_NEEDS_QUOTES = '[,"\r\n]'


class Departments:
    """Names (string) and totals (int64), row i being one department, in output order."""

    __slots__ = ("names", "totals")

    def __init__(self, names: pyarrow.Array, totals: pyarrow.Array) -> None:
        self.names = names
        self.totals = totals

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
        order = pc.sort_indices(
            pyarrow.table({"folded": pc.utf8_lower(names), "name": names}),
            sort_keys=[("folded", "ascending"), ("name", "ascending")])
        return cls(pc.take(names, order), pc.take(totals, order))

    def __len__(self) -> int:
        return len(self.names)

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
        characters = _concatenated(cells)  # one scan of all names decides what is needed
        if any(start in characters for start in (b"=", b"+", b"-", b"@", b"\t", b"\r")):
            cells = pc.if_else(pc.match_substring_regex(cells, _FORMULA),
                               pc.binary_join_element_wise("'", cells, ""), cells)
        if any(special in characters for special in (b",", b'"', b"\r", b"\n")):
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(cells, '"', '""'),
                                                 '"', "")
            cells = pc.if_else(pc.match_substring_regex(cells, _NEEDS_QUOTES), quoted, cells)
        return _concatenated(pc.binary_join_element_wise(
            cells, ",", pc.cast(self.totals, pyarrow.string()), "\n", ""))

    def wire(self) -> bytes:
        """Job.departments (field 5) in protobuf wire format, byte for byte as the protobuf
        library writes it: per department, tag 0x2A, a length, then `department` (tag 0x0A)
        unless empty and `total_sales` (tag 0x10, an int64 as a 64-bit varint) unless zero."""
        count = len(self)
        if not count:
            return b""
        units = pyarrow.py_buffer(array("i", range(count + 1)))
        names = pc.cast(self.names, pyarrow.binary())
        lengths = pc.cast(pc.binary_length(names), pyarrow.uint64())
        totals = pc.cast(self.totals, pyarrow.uint64(), safe=False)
        nonzero = pc.not_equal(totals, _U64_ZERO)
        named = pc.not_equal(lengths, _U64_ZERO)
        # body = [0x0A varint(len) name] + [0x10 varint(total)], each part only when set
        body_length = pc.add(
            pc.if_else(named, pc.add(pc.add(_varint_size(lengths), lengths), _U64_ONE),
                       _U64_ZERO),
            pc.if_else(nonzero, pc.add(_varint_size(totals), _U64_ONE), _U64_ZERO))
        parts = [_constant(b"\x2a", units, count), *_varint_parts(body_length, units),
                 _present(b"\x0a", named), *_varint_parts(lengths, units, named), names,
                 _present(b"\x10", nonzero), *_varint_parts(totals, units, nonzero)]
        return _concatenated(pc.binary_join_element_wise(*parts, b""))

    def pack(self) -> tuple[bytes, bytes]:
        """Two compact blobs for storage: the names each ended by NUL, the totals as int64s."""
        if not len(self):
            return b"", b""
        names = _concatenated(pc.binary_join_element_wise(
            pc.cast(self.names, pyarrow.binary()), b"", _NAME_END.encode()))
        totals = array("q", self.totals.to_pylist()) if self.totals.offset else None
        return names, (totals.tobytes() if totals is not None else
                       bytes(memoryview(self.totals.buffers()[1])[:8 * len(self)]))

    @classmethod
    def unpack(cls, names: bytes, totals: bytes) -> "Departments":
        """The inverse of pack()."""
        if not totals:
            return cls.empty()
        count = len(totals) // 8
        parts = pc.split_pattern(pyarrow.scalar(names, pyarrow.binary()), _NAME_END).values
        return cls(pc.cast(parts[:count], pyarrow.string()),
                   pyarrow.Array.from_buffers(pyarrow.int64(), count,
                                              [None, pyarrow.py_buffer(totals)]))


def _array(values) -> pyarrow.Array:
    return values.combine_chunks() if isinstance(values, pyarrow.ChunkedArray) else values


def _concatenated(values: pyarrow.Array) -> bytes:
    """All of a string or binary array's values back to back."""
    values = _array(values)
    if values.type not in (pyarrow.binary(), pyarrow.string()):
        raise TypeError(f"expected string or binary values, not {values.type}")
    _, offsets, data = values.buffers()
    positions = memoryview(offsets).cast("i")  # int32 offsets
    start, end = positions[values.offset], positions[values.offset + len(values)]
    return bytes(memoryview(data)[start:end])


_U64_ZERO = pyarrow.scalar(0, pyarrow.uint64())
_U64_ONE = pyarrow.scalar(1, pyarrow.uint64())
_LOW_BITS = pyarrow.scalar(0x7F, pyarrow.uint64())
_CONTINUATION = pyarrow.scalar(0x80, pyarrow.uint64())
_SEVEN = pyarrow.scalar(7, pyarrow.uint64())


def _constant(value: bytes, units: pyarrow.Buffer, count: int) -> pyarrow.Array:
    """The same one byte in every row."""
    return pyarrow.Array.from_buffers(pyarrow.binary(), count,
                                      [None, units, pyarrow.py_buffer(value * count)])


def _present(value: bytes, mask: pyarrow.Array) -> pyarrow.Array:
    """One byte where mask is true, nothing elsewhere."""
    return _bytes_where(mask, pyarrow.py_buffer(value * pc.sum(mask).as_py()))


def _bytes_where(mask: pyarrow.Array, data: pyarrow.Buffer) -> pyarrow.Array:
    """A binary array holding the next byte of data in each row where mask is true, and an
    empty value elsewhere: offsets are the running count of true rows."""
    ends = pc.cumulative_sum(pc.cast(mask, pyarrow.int32()))
    offsets = pyarrow.concat_arrays([pyarrow.array([0], pyarrow.int32()), _array(ends)])
    return pyarrow.Array.from_buffers(pyarrow.binary(), len(mask),
                                      [None, offsets.buffers()[1], data])


def _varint_size(values: pyarrow.Array) -> pyarrow.Array:
    """How many bytes each uint64 takes as a varint."""
    size = pc.cast(pc.greater_equal(values, _U64_ZERO), pyarrow.uint64())  # 1 everywhere
    for shift in range(7, 64, 7):
        size = pc.add(size, pc.cast(pc.greater_equal(
            values, pyarrow.scalar(1 << shift, pyarrow.uint64())), pyarrow.uint64()))
    return size


def _varint_parts(values: pyarrow.Array, units: pyarrow.Buffer,
                  mask: pyarrow.Array | None = None) -> list[pyarrow.Array]:
    """Each uint64 as a protobuf varint, one binary column per byte position (empty where the
    varint is shorter, or where mask is false)."""
    remaining = values
    present = mask
    parts = []
    for _ in range(10):
        more = pc.greater(remaining, _LOW_BITS)
        low = pc.bit_wise_and(remaining, _LOW_BITS)
        byte = _array(pc.cast(pc.if_else(more, pc.bit_wise_or(low, _CONTINUATION), low),
                              pyarrow.uint8()))
        if present is None:
            parts.append(pyarrow.Array.from_buffers(pyarrow.binary(), len(byte),
                                                    [None, units, byte.buffers()[1]]))
        else:
            parts.append(_bytes_where(present, _array(pc.filter(byte, present)).buffers()[1]))
        present = more if present is None else pc.and_(present, more)
        if not pc.any(present).as_py():
            break
        remaining = pc.shift_right(remaining, _SEVEN)
    return parts
