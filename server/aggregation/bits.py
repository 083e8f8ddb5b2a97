"""A bit per byte of a block, packed 64 to a word, for whole-block questions answered by numpy
word by word instead of position by position."""

from __future__ import annotations

import numpy

_WORD = numpy.dtype("<u8")
_ONE, _TOP = numpy.uint64(1), numpy.uint64(63)
# Bytes compared at a time: a multiple of 64.
_SEGMENT = 1 << 18


class Bits:
    """Bit i of word i // 64 (counting from the lowest) stands for byte i; bits past the bytes
    are 0 unless a method says otherwise."""

    def __init__(self, words: numpy.ndarray, size: int) -> None:
        self.words = words
        self.size = size  # bytes the bits stand for
        self._through: numpy.ndarray | None = None  # set bits in words 0..i

    @classmethod
    def equal(cls, view: numpy.ndarray, values: tuple[int, ...]) -> list[Bits]:
        """For each value, the bits of the bytes of view equal to it."""
        # A segment at a time, so that the temporaries stay in the cache and the allocator
        # reuses them (a whole block's had their pages faulted in afresh, block after block).
        size = len(view)
        packed = [numpy.zeros(-(-size // 64) * 8, numpy.uint8) for _ in values]
        for start in range(0, size, _SEGMENT):
            segment = view[start:start + _SEGMENT]
            at = start // 8
            for value, bits in zip(values, packed):
                part = numpy.packbits(segment == value, bitorder="little")
                bits[at:at + len(part)] = part
        return [cls(bits.view(_WORD), size) for bits in packed]

    def __or__(self, other: Bits) -> Bits:
        return Bits(self.words | other.words, self.size)

    def __and__(self, other: Bits) -> Bits:
        return Bits(self.words & other.words, self.size)

    def and_not(self, other: Bits) -> Bits:
        return Bits(self.words & ~other.words, self.size)

    def any(self) -> bool:
        return bool(self.words.any())

    def count(self) -> int:
        return int(numpy.bitwise_count(self.words).sum(dtype=numpy.int64))

    def bit(self, index: int) -> bool:
        return bool(int(self.words[index >> 6]) >> (index & 63) & 1)

    def prefix_parity(self) -> Bits:
        """Bit i set when an odd number of bits 0..i is set."""
        words = self.words.copy()
        for shift in (1, 2, 4, 8, 16, 32):
            words ^= words << numpy.uint64(shift)
        # Each word's top bit is now its own parity; words after an odd total flip whole.
        carried = numpy.bitwise_xor.accumulate(words >> _TOP)
        words[1:] ^= 0 - carried[:-1]  # all ones after an odd total, wrapping around
        return Bits(words, self.size)

    def shifted_up(self, first: bool) -> Bits:
        """Bit i set when bit i - 1 is; bit 0 is first."""
        words = self.words << _ONE
        words[1:] |= self.words[:-1] >> _TOP
        if first and len(words):
            words[0] |= _ONE
        return Bits(words, self.size)

    def shifted_down(self, last: bool) -> Bits:
        """Bit i set when bit i + 1 is; the bit of the last byte is last."""
        words = self.words >> _ONE
        words[:-1] |= self.words[1:] << _TOP
        if last and self.size:
            end = self.size - 1
            words[end >> 6] |= _ONE << numpy.uint64(end & 63)
        return Bits(words, self.size)

    def select(self, ranks: numpy.ndarray) -> numpy.ndarray:
        """Where the set bits of these ranks stand (rank 0: the first); each below count()."""
        through = self._set_through()
        word = through.searchsorted(ranks, "right")
        words = self.words[word]
        within = ranks - (through[word] - numpy.bitwise_count(words))
        bits = numpy.unpackbits(words.view(numpy.uint8).reshape(-1, 8), axis=1,
                                bitorder="little")
        return word * 64 + (numpy.cumsum(bits, axis=1) > within[:, None]).argmax(axis=1)

    def rank(self, positions: numpy.ndarray) -> numpy.ndarray:
        """How many set bits stand before each position (each below size)."""
        word = positions >> 6
        words = self.words[word]
        below = words & ((_ONE << (positions & 63).astype(numpy.uint64)) - _ONE)
        return (self._set_through()[word] - numpy.bitwise_count(words)
                + numpy.bitwise_count(below))

    def _set_through(self) -> numpy.ndarray:
        if self._through is None:
            self._through = numpy.cumsum(numpy.bitwise_count(self.words), dtype=numpy.int64)
        return self._through
