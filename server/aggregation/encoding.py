"""The file's encoding: byte-order marks, UTF-16 transcoding, UTF-8 validity, Windows-1252."""

from __future__ import annotations

import codecs
from typing import Iterator

import pyarrow

from server.aggregation.errors import InputError

ENCODING_UTF8 = "UTF-8"
ENCODING_UTF16 = "UTF-16"
ENCODING_WINDOWS_1252 = "Windows-1252"
# Bytes looked at before deciding the encoding, so that the decision and the messages about
# binary files do not depend on how the upload was chunked.
SNIFF_BYTES = 512
# The incremental decoder is fed at most this much at once, so that it never makes a large text.
_UTF8_SLICE = 1 << 20


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


def decode_guess(latin1_text: str) -> str:
    """Decodes a Latin-1 view as UTF-8 if it can be, else as Windows-1252 (for the header)."""
    raw = latin1_text.encode("latin-1")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return decode_windows_1252(raw)


def decode_text(latin1_text: str, encoding: str) -> str:
    """Turns a Latin-1 view of the file's bytes into text in the file's encoding."""
    if latin1_text.isascii():
        return latin1_text
    raw = latin1_text.encode("latin-1")
    if encoding == ENCODING_WINDOWS_1252:
        return decode_windows_1252(raw)
    return raw.decode("utf-8")


def binary_message(data: bytes, offset: int) -> str:
    """Says what a file with a NUL byte at offset seems to be; data is its start, if known."""
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
    return (f"This file holds data that is not text (from character {offset + 1:,} on), so it "
            "is not a CSV file. If a program made it, save or export it as CSV.")


class Transcoder:
    """Reads the byte-order mark from the first bytes and hands on bytes in which the CSV syntax
    is ASCII: UTF-16 turned into UTF-8, anything else as it is."""

    def __init__(self) -> None:
        self.encoding: str | None = None  # UTF-8 (until proven otherwise) or UTF-16
        self._head = b""  # the first bytes, until the encoding is known
        self._utf16: codecs.IncrementalDecoder | None = None

    @property
    def utf16(self) -> bool:
        """True once the file is known to be UTF-16."""
        return self._utf16 is not None

    def take(self, data: bytes) -> bytes:
        """The next bytes of the file, turned into bytes to parse (none while still sniffing)."""
        if self.encoding is None:
            self._head += data
            if len(self._head) < SNIFF_BYTES:
                return b""
            return self._decide()
        if self._utf16 is not None:
            return self._from_utf16(data, final=False)
        return data

    def finish(self) -> Iterator[bytes]:
        """The bytes held back, in order: the sniffed head, then the end of a UTF-16 text."""
        if self.encoding is None:
            yield self._decide()
        if self._utf16 is not None:
            yield self._from_utf16(b"", final=True)

    def _decide(self) -> bytes:
        head, self._head = self._head, b""
        if head.startswith(b"\xef\xbb\xbf"):
            self.encoding = ENCODING_UTF8
            return head[3:]
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            self.encoding = ENCODING_UTF16
            self._utf16 = codecs.getincrementaldecoder("utf-16")("strict")
            return self._from_utf16(head, final=False)
        self.encoding = ENCODING_UTF8
        return head

    def _from_utf16(self, data: bytes, final: bool) -> bytes:
        try:
            text = self._utf16.decode(data, final=final)
        except UnicodeDecodeError as exc:
            raise InputError("The file starts with a UTF-16 byte-order mark but is not valid "
                             f"UTF-16 ({exc.reason}).") from None
        return text.encode("utf-8")


class Utf8Validity:
    """Whether the bytes so far can still be UTF-8, checked block by block as they stream by.

    The lines wholly inside a block are checked by Arrow (no interpreter lock, no text made);
    the bytes before its first line end and after its last go through an incremental decoder,
    which carries a character cut at a block edge over to the next block.
    """

    def __init__(self) -> None:
        self.valid = True
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def check(self, block: bytes | bytearray) -> None:
        """Checks the next block of the stream (once invalid, nothing more is looked at)."""
        if self.valid:
            self.valid = self._continues(block)

    def finish(self) -> bool:
        """True if the whole stream was UTF-8 (no character left cut off at its end)."""
        if self.valid:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.valid = False
        return self.valid

    def _continues(self, block: bytes | bytearray) -> bool:
        if block.isascii():  # most files: only a character cut at the last edge can be wrong
            try:
                self._decoder.decode(block[:1])
            except UnicodeDecodeError:
                return False
            return True
        first, last = block.find(b"\n") + 1, block.rfind(b"\n") + 1
        view = memoryview(block)
        try:
            self._decoder.decode(view[:first])
            if last > first:
                body = pyarrow.Array.from_buffers(
                    pyarrow.binary(), 1,
                    [None, pyarrow.array([first, last], pyarrow.int32()).buffers()[1],
                     pyarrow.py_buffer(block)])
                body.cast(pyarrow.string())  # raises ArrowInvalid unless valid UTF-8
            for start in range(max(first, last), len(block), _UTF8_SLICE):
                self._decoder.decode(view[start:min(start + _UTF8_SLICE, len(block))])
        except (UnicodeDecodeError, pyarrow.ArrowInvalid):
            return False
        finally:
            view.release()
        return True
