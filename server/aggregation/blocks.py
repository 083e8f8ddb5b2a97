"""Cuts the byte stream into blocks of whole rows; refuses NUL bytes and endless lines early."""

from __future__ import annotations

from server.aggregation.encoding import binary_message
from server.aggregation.errors import InputError, row_too_long


class BlockCutter:
    """Collects bytes until a block is full and hands it on, cut after its last LF."""

    def __init__(self, block_size: int, max_field_bytes: int) -> None:
        self._block_size = block_size
        self._max_field_bytes = max_field_bytes
        self._buffer = bytearray()  # bytes taken since the last block was handed on
        self.bytes_seen = 0  # in the stream that is parsed: after any BOM, UTF-16 made UTF-8
        self._since_line_end = 0  # bytes taken since the last CR or LF
        self._seen_line_end = False

    def add(self, data: bytes) -> bytearray | None:
        """Takes the next bytes; returns a block once the buffer reaches the block size."""
        nul = data.find(b"\x00")
        if nul >= 0:
            first = data if self.bytes_seen == 0 else b""
            raise InputError(binary_message(first, self.bytes_seen + nul))
        self.bytes_seen += len(data)
        last_end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last_end < 0:
            self._since_line_end += len(data)
        else:
            self._since_line_end = len(data) - last_end - 1
            self._seen_line_end = True
        # Before the first line end, the header's own check says it better.
        if self._since_line_end > self._max_field_bytes and self._seen_line_end:
            raise row_too_long(self._max_field_bytes)
        self._buffer += data
        if len(self._buffer) < self._block_size:
            return None
        # Hand the buffer itself on, cut after its last line end: no copy of the block.
        block = self._buffer
        cut = block.rfind(b"\n") + 1
        self._buffer = block[cut:] if cut else bytearray()
        if cut:
            del block[cut:]
        return block

    def rest(self) -> bytearray:
        """Everything not yet handed on, for the last block."""
        block, self._buffer = self._buffer, bytearray()
        return block
